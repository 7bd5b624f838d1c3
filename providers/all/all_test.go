package all

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/local"
)

func TestRegistryHasEveryProvider(t *testing.T) {
	got := Registry().Names()
	want := []string{"aws", "azure", "env", "file", "local", "vault"}
	if !slices.Equal(got, want) {
		t.Errorf("Registry().Names() = %v, want %v", got, want)
	}
	// Fresh registries: registering into one does not affect the next, and
	// a second Registry call does not panic on duplicates.
	if err := Registry().Register(fakeProvider{"gcp"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := Registry().Get("gcp"); ok {
		t.Error("registries share state")
	}
}

type fakeProvider struct{ name string }

func (f fakeProvider) Name() string { return f.name }
func (fakeProvider) NewClient(context.Context, *v1alpha1.SecretStore) (providers.Client, error) {
	return nil, nil
}

// Values the cases put in the environment, in files or on the wire. None of
// them may appear in any error text.
const (
	vaultToken   = "hvs.WRONG-token-value-7f3a9c"
	awsKeyID     = "AKIAMARKERKEYID00042"
	awsSecretKey = "awsSecretMarker/9xQ+secretpart"
	fileMarker   = "FILE-SECRET-MARKER-"
	localValue   = "local-value-marker-5d1e"
	envValue     = "env-value-marker-0b77"
	azureSecret  = "azure-client-secret-marker-c0ffee"
)

func store(name string, spec v1alpha1.SecretStoreSpec) *v1alpha1.SecretStore {
	return &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestCrossProviderErrors is the providers issue's acceptance table: each
// misconfiguration or failure gives one error of the right kind, naming the
// store and what to fix, quickly, and never containing a value or token.
func TestCrossProviderErrors(t *testing.T) {
	// Vault that refuses every token, as a real one does a wrong token.
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
	}))
	defer forbidden.Close()

	dir := t.TempDir()
	big := fileMarker + strings.Repeat("x", providers.MaxValueSize)
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok"), []byte(fileMarker+"small"), 0o600); err != nil {
		t.Fatal(err)
	}
	localPath := filepath.Join(t.TempDir(), "vault.enc")
	ls, err := local.Init(localPath, "", false)
	if err != nil {
		t.Fatalf("local.Init: %v", err)
	}
	if _, err := ls.Set("db", []byte(localValue)); err != nil {
		t.Fatal(err)
	}

	t.Setenv("DSO_TEST_VAULT_TOKEN", vaultToken)
	t.Setenv("DSO_TEST_AWS_KEY_ID", awsKeyID)
	t.Setenv("DSO_TEST_AWS_SECRET", awsSecretKey)
	t.Setenv("DSO_TEST_AZURE_SECRET", azureSecret)
	t.Setenv("DSO_TEST_PASSWD", envValue) // what an env store would serve for ../etc/passwd if it did not refuse
	// Keep the AWS SDK off the host's own credentials and config.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Unsetenv("DSO_TEST_UNSET_VAR")

	tokenFrom := func(env string) *v1alpha1.ValueSource { return &v1alpha1.ValueSource{FromEnv: env} }
	awsStatic := &v1alpha1.AWSStaticAuth{
		AccessKeyID:     v1alpha1.ValueSource{FromEnv: "DSO_TEST_AWS_KEY_ID"},
		SecretAccessKey: v1alpha1.ValueSource{FromEnv: "DSO_TEST_AWS_SECRET"},
	}
	azureAuth := func(env string) v1alpha1.AzureAuth {
		return v1alpha1.AzureAuth{ClientSecret: &v1alpha1.AzureClientSecretAuth{
			TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "00000000-0000-0000-0000-000000000002",
			ClientSecret: v1alpha1.ValueSource{FromEnv: env},
		}}
	}
	only := func(names ...string) *providers.Registry {
		full := Registry()
		r := providers.NewRegistry()
		for _, n := range names {
			p, _ := full.Get(n)
			r.MustRegister(p)
		}
		return r
	}

	tests := []struct {
		name     string
		reg      *providers.Registry // nil: Registry()
		store    *v1alpha1.SecretStore
		key      string
		wantKind providers.Kind
		// fix holds phrases that tell the operator what to change.
		fix []string
	}{
		{
			name:     "no provider in spec",
			store:    store("nothing", v1alpha1.SecretStoreSpec{}),
			wantKind: providers.KindInvalidConfig,
			fix:      []string{"set one of local, vault, aws, azure, file, env"},
		},
		{
			name:     "provider not in this build",
			reg:      only("local", "file"),
			store:    store("vault-prod", v1alpha1.SecretStoreSpec{Vault: &v1alpha1.VaultProvider{Address: "http://127.0.0.1:1", Auth: v1alpha1.VaultAuth{Token: tokenFrom("DSO_TEST_VAULT_TOKEN")}}}),
			wantKind: providers.KindInvalidConfig,
			fix:      []string{`provider "vault" is not available`},
		},
		{
			name:     "vault token fromEnv unset",
			store:    store("vault-prod", v1alpha1.SecretStoreSpec{Vault: &v1alpha1.VaultProvider{Address: "http://127.0.0.1:1", Auth: v1alpha1.VaultAuth{Token: tokenFrom("DSO_TEST_UNSET_VAR")}}}),
			wantKind: providers.KindInvalidConfig,
			fix:      []string{"spec.vault.auth.token", "DSO_TEST_UNSET_VAR", "not set"},
		},
		{
			name: "aws static fromEnv unset",
			store: store("aws-prod", v1alpha1.SecretStoreSpec{AWS: &v1alpha1.AWSProvider{Region: "eu-west-1", Auth: v1alpha1.AWSAuth{Static: &v1alpha1.AWSStaticAuth{
				AccessKeyID:     v1alpha1.ValueSource{FromEnv: "DSO_TEST_AWS_KEY_ID"},
				SecretAccessKey: v1alpha1.ValueSource{FromEnv: "DSO_TEST_UNSET_VAR"},
			}}}}),
			wantKind: providers.KindInvalidConfig,
			fix:      []string{"spec.aws.auth.static.secretAccessKey", "DSO_TEST_UNSET_VAR"},
		},
		{
			name:     "azure client secret fromEnv unset",
			store:    store("azure-prod", v1alpha1.SecretStoreSpec{Azure: &v1alpha1.AzureProvider{VaultURL: "https://127.0.0.1:1/", Auth: azureAuth("DSO_TEST_UNSET_VAR")}}),
			wantKind: providers.KindInvalidConfig,
			fix:      []string{"spec.azure.auth.clientSecret", "DSO_TEST_UNSET_VAR"},
		},
		{
			name:     "vault wrong token",
			store:    store("vault-prod", v1alpha1.SecretStoreSpec{Vault: &v1alpha1.VaultProvider{Address: forbidden.URL, Auth: v1alpha1.VaultAuth{Token: tokenFrom("DSO_TEST_VAULT_TOKEN")}}}),
			key:      "shop/db",
			wantKind: providers.KindPermissionDenied,
			fix:      []string{"shop/db"},
		},
		{
			name:     "vault unreachable",
			store:    store("vault-prod", v1alpha1.SecretStoreSpec{Vault: &v1alpha1.VaultProvider{Address: "http://" + closedAddr(t), Auth: v1alpha1.VaultAuth{Token: tokenFrom("DSO_TEST_VAULT_TOKEN")}}}),
			key:      "shop/db",
			wantKind: providers.KindUnavailable,
			fix:      []string{"shop/db"},
		},
		{
			name:     "aws endpoint unreachable",
			store:    store("aws-prod", v1alpha1.SecretStoreSpec{AWS: &v1alpha1.AWSProvider{Region: "eu-west-1", Endpoint: "http://" + closedAddr(t), Auth: v1alpha1.AWSAuth{Static: awsStatic}}}),
			key:      "shop/db",
			wantKind: providers.KindUnavailable,
			fix:      []string{"shop/db"},
		},
		{
			name:     "file value over 1 MiB",
			store:    store("files", v1alpha1.SecretStoreSpec{File: &v1alpha1.FileProvider{Dir: dir}}),
			key:      "big",
			wantKind: providers.KindInvalidRef,
			fix:      []string{"1 MiB"},
		},
	}
	// Traversal is refused by every provider before any I/O.
	for _, st := range []*v1alpha1.SecretStore{
		store("files", v1alpha1.SecretStoreSpec{File: &v1alpha1.FileProvider{Dir: dir}}),
		store("local-dev", v1alpha1.SecretStoreSpec{Local: &v1alpha1.LocalProvider{Path: localPath}}),
		store("env-dev", v1alpha1.SecretStoreSpec{Env: &v1alpha1.EnvProvider{Prefix: "DSO_TEST_"}}),
		store("vault-prod", v1alpha1.SecretStoreSpec{Vault: &v1alpha1.VaultProvider{Address: forbidden.URL, Auth: v1alpha1.VaultAuth{Token: tokenFrom("DSO_TEST_VAULT_TOKEN")}}}),
		store("aws-prod", v1alpha1.SecretStoreSpec{AWS: &v1alpha1.AWSProvider{Region: "eu-west-1", Endpoint: "http://" + closedAddr(t), Auth: v1alpha1.AWSAuth{Static: awsStatic}}}),
		store("azure-prod", v1alpha1.SecretStoreSpec{Azure: &v1alpha1.AzureProvider{VaultURL: "https://" + closedAddr(t) + "/", Auth: azureAuth("DSO_TEST_AZURE_SECRET")}}),
	} {
		name, _ := providers.ProviderName(st)
		tests = append(tests, struct {
			name     string
			reg      *providers.Registry
			store    *v1alpha1.SecretStore
			key      string
			wantKind providers.Kind
			fix      []string
		}{name: "traversal " + name, store: st, key: "../etc/passwd", wantKind: providers.KindInvalidRef, fix: []string{`".."`}})
	}

	secrets := []string{vaultToken, awsKeyID, awsSecretKey, fileMarker, localValue, envValue, azureSecret}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := tt.reg
			if reg == nil {
				reg = Registry()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			err := fetch(ctx, reg, tt.store, tt.key)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v: a failing store must fail fast under a short context", took)
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Logf("%s", msg)
			if got := providers.KindOf(err); got != tt.wantKind {
				t.Errorf("kind = %v, want %v", got, tt.wantKind)
			}
			// One error: the store is named exactly once, not once per
			// wrapping layer.
			if n := strings.Count(msg, `store "`+tt.store.Name+`"`); n != 1 {
				t.Errorf("store %q named %d times in %q", tt.store.Name, n, msg)
			}
			for _, f := range tt.fix {
				if !strings.Contains(msg, f) {
					t.Errorf("error %q does not say %q", msg, f)
				}
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error contains a secret value or token (%.8s…): %q", s, msg)
				}
			}
		})
	}
}

// fetch runs what the agent runs for a store: build the client from the
// registry, then Get key (when there is one).
func fetch(ctx context.Context, reg *providers.Registry, st *v1alpha1.SecretStore, key string) error {
	c, err := reg.NewClient(ctx, st)
	if err != nil {
		return err
	}
	defer c.Close()
	if key == "" {
		return nil
	}
	_, err = c.Get(ctx, providers.Ref{Key: key})
	return err
}

// TestHealthyPaths: the same registry serves a value when nothing is wrong,
// so the error table above is not passing because every store is broken.
func TestHealthyPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok"), []byte("file-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	localPath := filepath.Join(t.TempDir(), "vault.enc")
	ls, err := local.Init(localPath, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Set("db", []byte("local-value")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DSO_TEST_DB", "env-value")
	tests := []struct {
		store *v1alpha1.SecretStore
		key   string
		want  string
	}{
		{store("files", v1alpha1.SecretStoreSpec{File: &v1alpha1.FileProvider{Dir: dir}}), "ok", "file-value"},
		{store("local-dev", v1alpha1.SecretStoreSpec{Local: &v1alpha1.LocalProvider{Path: localPath}}), "db", "local-value"},
		{store("env-dev", v1alpha1.SecretStoreSpec{Env: &v1alpha1.EnvProvider{Prefix: "DSO_TEST_"}}), "db", "env-value"},
	}
	for _, tt := range tests {
		c, err := Registry().NewClient(context.Background(), tt.store)
		if err != nil {
			t.Fatalf("%s: %v", tt.store.Name, err)
		}
		s, err := c.Get(context.Background(), providers.Ref{Key: tt.key})
		c.Close()
		if err != nil || string(s.Value) != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.store.Name, s.Value, err, tt.want)
		}
	}
}
