// Package azure is the dso provider for Azure Key Vault secrets
// ("spec.azure" of a SecretStore). It exists to pick the Azure credential a
// store asks for, to keep the SDK's retries short (a throttled vault must
// fail fast into KindUnavailable and hand its Retry-After to dso's cache
// instead of sleeping inside the call), and to turn azcore's very verbose
// ResponseError, whose text embeds the request URL and the whole response
// body, into a short error that names the store, the key and the HTTP status.
//
// Keys are Key Vault secret names (letters, digits and '-'); ref.Version is
// a Key Vault version id (empty: the latest). Secret.Version is the version
// segment of the secret id Key Vault returned.
package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/internal/credsrc"
)

// Name is the provider name, the SecretStore spec field "azure".
const Name = "azure"

const (
	// maxRetries bounds the SDK's retries after the first try.
	maxRetries = 2
	// retryDelay is the SDK's base backoff between tries (doubled each try).
	retryDelay = 200 * time.Millisecond
	// maxRetryDelay is also the longest Retry-After the SDK may sleep for
	// inside one call. Key Vault throttles per vault in 10 s windows; a
	// longer Retry-After is returned at once in providers.Error.RetryAfter
	// so that dso's cache (serving the stale value) waits instead.
	maxRetryDelay = 2 * time.Second
	// tryTimeout bounds one HTTP try.
	tryTimeout = 15 * time.Second
)

// Provider builds Key Vault clients. Register it with
// registry.MustRegister(azure.Provider{}).
type Provider struct{}

// Name returns "azure".
func (Provider) Name() string { return Name }

// NewClient builds a client for store.Spec.Azure.
func (Provider) NewClient(ctx context.Context, store *v1alpha1.SecretStore) (providers.Client, error) {
	return newClient(ctx, store, options{})
}

// options are test seams, not part of the YAML schema: the tests drive the
// real azsecrets client against a TLS fake with a fake token credential.
type options struct {
	credential azcore.TokenCredential
	transport  policy.Transporter
	retryDelay time.Duration
	// disableChallengeResourceVerification lets the fake's challenge name a
	// resource (vault.azure.net) that is not the fake's own host.
	disableChallengeResourceVerification bool
}

// Client reads one Key Vault.
type Client struct {
	store string
	kv    *azsecrets.Client
}

var _ providers.Client = (*Client)(nil)

func newClient(_ context.Context, store *v1alpha1.SecretStore, o options) (*Client, error) {
	name := store.Name
	spec := store.Spec.Azure
	if spec == nil {
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.azure is not set")
	}
	u, err := url.Parse(spec.VaultURL)
	if spec.VaultURL == "" || err != nil || u.Host == "" {
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.azure.vaultURL %q is not a vault URL: write it as https://<vault-name>.vault.azure.net/", spec.VaultURL)
	}
	if u.Scheme != "https" {
		// Key Vault only speaks TLS, and the SDK refuses to send a token over http.
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.azure.vaultURL %q must start with https://", spec.VaultURL)
	}

	cred := o.credential
	if cred == nil {
		if cred, err = credential(name, spec.Auth); err != nil {
			return nil, err
		}
	}
	delay := retryDelay
	if o.retryDelay > 0 {
		delay = o.retryDelay
	}
	copts := &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Retry: policy.RetryOptions{
				MaxRetries:    maxRetries,
				RetryDelay:    delay,
				MaxRetryDelay: maxRetryDelay,
				TryTimeout:    tryTimeout,
			},
			Telemetry: policy.TelemetryOptions{ApplicationID: "dso"},
		},
		DisableChallengeResourceVerification: o.disableChallengeResourceVerification,
	}
	if o.transport != nil {
		copts.Transport = o.transport
	}
	kv, err := azsecrets.NewClient(spec.VaultURL, taggedCredential{cred}, copts)
	if err != nil {
		return nil, providers.Wrap(providers.KindInvalidConfig, name, "", err, "cannot build the Key Vault client: check spec.azure.vaultURL")
	}
	return &Client{store: name, kv: kv}, nil
}

// credential picks the Azure credential spec.azure.auth asks for.
func credential(store string, a v1alpha1.AzureAuth) (azcore.TokenCredential, error) {
	switch {
	case a.ClientSecret != nil && a.ManagedIdentity != nil:
		return nil, providers.Errorf(providers.KindInvalidConfig, store, "", "spec.azure.auth sets both clientSecret and managedIdentity: set at most one")
	case a.ClientSecret != nil:
		cs := a.ClientSecret
		if cs.TenantID == "" {
			return nil, providers.Errorf(providers.KindInvalidConfig, store, "", "spec.azure.auth.clientSecret.tenantID is empty: set the directory (tenant) id of the service principal")
		}
		if cs.ClientID == "" {
			return nil, providers.Errorf(providers.KindInvalidConfig, store, "", "spec.azure.auth.clientSecret.clientID is empty: set the application (client) id of the service principal")
		}
		secret, err := credsrc.ResolveString(store, "spec.azure.auth.clientSecret.clientSecret", cs.ClientSecret)
		if err != nil {
			return nil, err
		}
		c, err := azidentity.NewClientSecretCredential(cs.TenantID, cs.ClientID, secret, nil)
		if err != nil {
			// azidentity validates the tenant id format; its message names it.
			return nil, providers.Wrap(providers.KindInvalidConfig, store, "", err, "spec.azure.auth.clientSecret is not usable")
		}
		return c, nil
	case a.ManagedIdentity != nil:
		var mo *azidentity.ManagedIdentityCredentialOptions
		if id := a.ManagedIdentity.ClientID; id != "" {
			mo = &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(id)}
		}
		c, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, providers.Wrap(providers.KindInvalidConfig, store, "", err, "spec.azure.auth.managedIdentity is not usable on this host")
		}
		return c, nil
	default:
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, providers.Wrap(providers.KindInvalidConfig, store, "", err, "no default Azure credential: set spec.azure.auth.clientSecret or managedIdentity")
		}
		return c, nil
	}
}

// taggedCredential marks token acquisition failures so mapErr can report
// them as an authentication problem instead of a network one.
type taggedCredential struct{ azcore.TokenCredential }

func (t taggedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := t.TokenCredential.GetToken(ctx, o)
	if err != nil {
		return tok, &tokenError{err}
	}
	return tok, nil
}

// tokenError keeps only the first line of azidentity's error: the rest is
// a dump of the identity provider's response, useful in a debugger but not
// in a status line.
type tokenError struct{ err error }

func (e *tokenError) Error() string {
	msg, _, _ := strings.Cut(e.err.Error(), "\n")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return "cannot obtain an Azure token: " + msg
}
func (e *tokenError) Unwrap() error { return e.err }

var (
	// Key Vault secret names: 1-127 letters, digits and dashes.
	nameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	// Key Vault versions are 32 hex characters; accept any alphanumeric id
	// so that a future format does not need a dso release.
	versionRE = regexp.MustCompile(`^[0-9A-Za-z]{1,64}$`)
)

func (c *Client) checkRef(ref providers.Ref) error {
	if err := providers.ValidateRef(c.store, ref); err != nil {
		return err
	}
	if !nameRE.MatchString(ref.Key) {
		return providers.Errorf(providers.KindInvalidRef, c.store, ref.Key, "Key Vault secret names allow only letters, digits and '-' (at most 127): rename the key, e.g. shop-db instead of shop/db")
	}
	if ref.Version != "" && !versionRE.MatchString(ref.Version) {
		return providers.Errorf(providers.KindInvalidRef, c.store, ref.Key, "version %q is not a Key Vault version id (32 hex characters)", ref.Version)
	}
	return nil
}

// Get fetches the latest version of ref.Key, or ref.Version.
func (c *Client) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	if err := c.checkRef(ref); err != nil {
		return providers.Secret{}, err
	}
	resp, err := c.kv.GetSecret(ctx, ref.Key, ref.Version, nil)
	if err != nil {
		return providers.Secret{}, c.mapErr(ref.Key, err)
	}
	if resp.Value == nil {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, c.store, ref.Key, "Key Vault returned the secret without a value")
	}
	version := ref.Version
	if resp.ID != nil {
		version = resp.ID.Version()
	}
	s, err := providers.Finish(c.store, ref, []byte(*resp.Value), version)
	if err != nil {
		return providers.Secret{}, err
	}
	if a := resp.Attributes; a != nil && a.Expires != nil {
		s.Expires = *a.Expires
	}
	return s, nil
}

// Validate lists the first page of secret properties: it proves the vault
// answers, the token is accepted and the identity may list secrets (the
// "secrets/list" permission; Key Vault's RBAC roles that allow reading
// secrets include it).
func (c *Client) Validate(ctx context.Context) error {
	pager := c.kv.NewListSecretPropertiesPager(&azsecrets.ListSecretPropertiesOptions{})
	if _, err := pager.NextPage(ctx); err != nil {
		return c.mapErr("", err)
	}
	return nil
}

// Close releases nothing: the SDK client holds only idle connections.
func (c *Client) Close() error { return nil }

// HTTPError is the short form of an azcore.ResponseError that dso keeps:
// status and Key Vault error code, no URL and no response body.
type HTTPError struct {
	StatusCode int
	Code       string
}

func (e *HTTPError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("Key Vault answered HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("Key Vault answered HTTP %d %s", e.StatusCode, e.Code)
}

func (c *Client) mapErr(key string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return providers.Wrap(providers.KindUnavailable, c.store, key, err, "the request to Key Vault did not finish before the deadline")
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		he := &HTTPError{StatusCode: re.StatusCode, Code: re.ErrorCode}
		e := &providers.Error{Store: c.store, Key: key, Err: he}
		switch {
		case re.StatusCode == http.StatusNotFound:
			e.Kind, e.Msg = providers.KindNotFound, "Key Vault has no such secret (or no such version)"
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			e.Kind, e.Msg = providers.KindPermissionDenied, "the identity may not get this secret (or it is disabled): grant it the Key Vault Secrets User role or a get access policy"
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout || re.StatusCode >= 500:
			e.Kind, e.Msg = providers.KindUnavailable, "Key Vault is throttling or failing; dso will retry"
			if re.RawResponse != nil {
				e.RetryAfter = int64(retryAfter(re.RawResponse.Header, time.Now()))
			}
		default:
			e.Kind, e.Msg = providers.KindInvalidRef, "Key Vault refused the request"
		}
		return e
	}
	var te *tokenError
	if errors.As(err, &te) {
		return providers.Wrap(providers.KindPermissionDenied, c.store, key, te,
			"check spec.azure.auth (tenant, client id and secret, or the host's managed identity)")
	}
	return providers.Wrap(providers.KindUnavailable, c.store, key, err, "cannot reach Key Vault: check spec.azure.vaultURL and the network")
}

// retryAfter reads the throttling hint: retry-after-ms / x-ms-retry-after-ms
// (milliseconds), then Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(k); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
