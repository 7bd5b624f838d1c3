// Package env is the "env" secret provider: each key is an environment
// variable of the agent process. It exists for development and for the
// twelve-factor case where a supervisor already injects secrets into the
// agent's environment; it is not a place to keep production secrets, since
// a process environment is readable by anyone who can read /proc/<pid>/environ
// as the same user.
//
// Key mapping: the key is upper-cased, '/', '-' and '.' become '_', and
// spec.env.prefix is prepended verbatim: with prefix "DSO_", key
// "shop/db-password" reads DSO_SHOP_DB_PASSWORD. A variable that is not set
// is KindNotFound; a variable set to the empty string is an empty value.
//
// The environment has no versions; Version is the first 16 hex digits of the
// value's SHA-256, as for the file provider, so change detection works the
// same way for every store. A pinned ref.Version must equal it.
package env

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// Name is the provider name, the SecretStore spec field "env".
const Name = "env"

// Provider builds env clients. Register it with providers.Registry.
type Provider struct{}

// Name implements providers.Provider.
func (Provider) Name() string { return Name }

// NewClient returns a client reading variables with spec.env.prefix.
func (Provider) NewClient(_ context.Context, store *v1alpha1.SecretStore) (providers.Client, error) {
	if store == nil || store.Spec.Env == nil {
		name := ""
		if store != nil {
			name = store.Name
		}
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.env is not set")
	}
	return New(store.Name, store.Spec.Env.Prefix), nil
}

// Client reads secrets from the process environment.
type Client struct {
	store  string
	prefix string
	// lookup is os.LookupEnv; tests replace it to avoid touching the real
	// environment.
	lookup func(string) (string, bool)
}

// New returns a client for store that prepends prefix to every variable name.
func New(store, prefix string) *Client {
	return &Client{store: store, prefix: prefix, lookup: os.LookupEnv}
}

var keyReplacer = strings.NewReplacer("/", "_", "-", "_", ".", "_")

// VarName is the environment variable that holds key.
func (c *Client) VarName(key string) string {
	return c.prefix + keyReplacer.Replace(strings.ToUpper(key))
}

// Get reads the variable for ref.Key.
func (c *Client) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	if err := providers.ValidateRef(c.store, ref); err != nil {
		return providers.Secret{}, err
	}
	if err := ctx.Err(); err != nil {
		return providers.Secret{}, providers.Wrap(providers.KindUnavailable, c.store, ref.Key, err, "request cancelled")
	}
	name := c.VarName(ref.Key)
	if strings.ContainsRune(name, '=') {
		return providers.Secret{}, providers.Errorf(providers.KindInvalidRef, c.store, ref.Key, "key maps to variable name %q, which contains '='", name)
	}
	v, ok := c.lookup(name)
	if !ok {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, c.store, ref.Key, "environment variable %s is not set in the agent's environment", name)
	}
	raw := []byte(v)
	sum := sha256.Sum256(raw)
	version := hex.EncodeToString(sum[:8])
	if ref.Version != "" && ref.Version != version {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, c.store, ref.Key, "version %q is not the current value of %s (it is %q): env stores keep only the current value", ref.Version, name, version)
	}
	return providers.Finish(c.store, ref, raw, version)
}

// Validate always succeeds: the environment is always there.
func (c *Client) Validate(context.Context) error { return nil }

// Close does nothing.
func (c *Client) Close() error { return nil }
