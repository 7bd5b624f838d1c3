// Package vault is dso's HashiCorp Vault provider: it reads KV secrets
// (version 2 by default, or version 1) with a token or an AppRole login.
//
// It exists as its own package so that the rest of dso only sees
// providers.Client and the typed errors of package providers; everything
// Vault-specific — KV paths, version pinning, token renewal, re-login after
// a 403, mapping HTTP statuses onto error kinds — stays here.
//
// Decisions worth knowing:
//   - A KV secret is a map. Without a property the value is the map encoded
//     as JSON (keys sorted, so equal maps give equal bytes and equal hashes),
//     even when the map has a single field: the shape of what a container
//     receives must not change when someone adds a field in Vault. Use
//     property to get one field's bare value.
//   - Errors never carry Vault's response text. Vault error bodies can echo
//     request data, and the raw body is used verbatim when it is not JSON,
//     so only the HTTP status and our own sentence are reported.
//   - The Vault client is built without reading VAULT_* environment
//     variables: a store is described completely by its SecretStore, so the
//     agent behaves the same whatever environment it was started in.
//   - The SDK's own retries are off. The secret cache owns retries, backoff
//     and the circuit breaker; hidden retries here would distort its latency
//     statistics and failure counts.
package vault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// Name is the provider's name and the SecretStore spec field it reads.
const Name = "vault"

// maxResponseBytes bounds what is read from Vault for one secret. The value
// limit (providers.MaxValueSize) applies to the decoded data; the envelope
// (metadata, JSON escaping) may be larger, but not without bound.
const maxResponseBytes = 4 * providers.MaxValueSize

// requestTimeout caps one HTTP request when the caller's ctx has no
// earlier deadline.
const requestTimeout = 30 * time.Second

// Provider builds Vault clients.
type Provider struct{}

// New returns the Vault provider.
func New() *Provider { return &Provider{} }

// Name implements providers.Provider.
func (*Provider) Name() string { return Name }

// NewClient implements providers.Provider. It checks the settings and reads
// the credentials' sources, but does not contact Vault: an agent that
// starts while Vault is down must still start, and the first Get or
// Validate reports the outage as unavailable.
//
// The renewer logs to the logr.Logger in ctx (logr.NewContext), if any.
func (*Provider) NewClient(ctx context.Context, store *v1alpha1.SecretStore) (providers.Client, error) {
	s, err := parseSettings(store)
	if err != nil {
		return nil, err
	}
	return newClient(s, logr.FromContextOrDiscard(ctx).WithName(Name).WithValues("store", s.store))
}

// Client is a connection to one Vault store. It is safe for concurrent use.
type Client struct {
	s   *settings
	api *vaultapi.Client

	// mu guards token and gen. gen increases with every new token, so a
	// request that got a 403 can tell whether someone else already logged in
	// again since it started.
	mu    sync.RWMutex
	token string
	gen   uint64
	// loginMu serialises logins so that N requests failing at once cause
	// one login, not N.
	loginMu sync.Mutex

	// Counters for tests, metrics and doctor.
	logins   atomic.Int64
	renewals atomic.Int64
	reauths  atomic.Int64 // requests repeated after a 403 with a new token

	// lease describes the current token (guarded by mu). The renewer runs
	// from the first AppRole login, or the first use of a token source's
	// token, until Close.
	lease       lease
	renewOnce   sync.Once
	renewWG     sync.WaitGroup
	renewNotify chan struct{}
	bg          context.Context // cancelled by Close
	stop        context.CancelFunc
	closeOnce   sync.Once

	retryBase time.Duration // renewRetry; tests shorten it
	// log is the logger NewClient found in its ctx (logr.FromContext), or
	// a discarding one. It gets names, statuses and TTLs, never a token.
	log logr.Logger
}

func newClient(s *settings, log logr.Logger) (*Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.insecureSkipVerify} //nolint:gosec // explicit opt-in, documented as testing only
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, providers.Wrap(providers.KindInvalidConfig, s.store, "", err, "spec.vault.caFile cannot be read")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, providers.Errorf(providers.KindInvalidConfig, s.store, "", "spec.vault.caFile %s holds no PEM certificate", s.caFile)
		}
		tlsCfg.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: requestTimeout,
		ForceAttemptHTTP2:     true,
	}
	cfg := &vaultapi.Config{
		Address: s.address,
		HttpClient: &http.Client{
			Transport: transport,
			// Vault's client handles redirects itself (standby nodes).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		MaxRetries: 0,
		Timeout:    requestTimeout,
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, providers.Wrap(providers.KindInvalidConfig, s.store, "", err, "building the Vault client")
	}
	// NewClient picks up VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS from
	// the environment; undo that so only the SecretStore counts.
	c.ClearToken()
	c.SetHeaders(http.Header{vaultapi.RequestHeaderName: []string{"true"}})
	if s.namespace != "" {
		c.SetNamespace(s.namespace)
	}

	cl := &Client{s: s, api: c, renewNotify: make(chan struct{}, 1), retryBase: renewRetry, log: log}
	if s.tokenSrc != nil {
		tok, err := resolveValue(s.store, "spec.vault.auth.token", *s.tokenSrc)
		if err != nil {
			return nil, err
		}
		cl.token, cl.gen = tok, 1
	} else {
		// Resolve now only to fail early on a missing variable or file; the
		// values are read again at every login so a rotated secret id is used.
		if _, err := resolveValue(s.store, "spec.vault.auth.appRole.roleID", s.appRole.roleID); err != nil {
			return nil, err
		}
		if _, err := resolveValue(s.store, "spec.vault.auth.appRole.secretID", s.appRole.secretID); err != nil {
			return nil, err
		}
	}
	// Created last so that no early return above leaves a context that
	// nothing will ever cancel; Close cancels it.
	cl.bg, cl.stop = context.WithCancel(context.Background()) //nolint:gosec // G118: Close calls cl.stop
	return cl, nil
}

// Get implements providers.Client.
func (c *Client) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	if err := providers.ValidateRef(c.s.store, ref); err != nil {
		return providers.Secret{}, err
	}
	params, err := c.versionParams(ref)
	if err != nil {
		return providers.Secret{}, err
	}
	body, err := c.do(ctx, ref.Key, http.MethodGet, "/v1/"+c.s.kvPath(ref.Key), params, nil)
	if err != nil {
		var nf *notFoundBody
		if errors.As(err, &nf) && c.s.kvVersion == 2 {
			// KV v2 answers 404 with the metadata of a deleted or destroyed
			// version: say so instead of "no secret".
			if _, _, derr := c.decodeKV(ref, nf.body); derr != nil && providers.KindOf(derr) == providers.KindNotFound {
				return providers.Secret{}, derr
			}
		}
		return providers.Secret{}, err
	}
	data, version, err := c.decodeKV(ref, body)
	clear(body) // the response held the plaintext; do not leave it to the GC
	if err != nil {
		return providers.Secret{}, err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return providers.Secret{}, providers.Wrap(providers.KindUnknown, c.s.store, ref.Key, err, "encoding the secret's fields as JSON")
	}
	s, err := providers.Finish(c.s.store, ref, raw, version)
	if ref.Property != "" || err != nil {
		clear(raw) // Finish copied the field out (or failed); raw is garbage now
	}
	return s, err
}

// unmarshalNumbers decodes JSON keeping numbers as json.Number, so a
// number in a secret is passed on with exactly the digits Vault stored
// (float64 would round 64-bit ids and change "1.0" to "1").
func unmarshalNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// versionParams turns ref.Version into the KV v2 "version" query.
func (c *Client) versionParams(ref providers.Ref) (url.Values, error) {
	if ref.Version == "" {
		return nil, nil
	}
	if c.s.kvVersion == 1 {
		return nil, providers.Errorf(providers.KindInvalidRef, c.s.store, ref.Key, "version %q requested but mount %q is KV version 1, which keeps no versions: remove version or use a KV v2 mount", ref.Version, c.s.mount)
	}
	n, err := strconv.Atoi(ref.Version)
	if err != nil || n < 1 {
		return nil, providers.Errorf(providers.KindInvalidRef, c.s.store, ref.Key, "version %q is not a KV v2 version number (1, 2, ...)", ref.Version)
	}
	return url.Values{"version": []string{strconv.Itoa(n)}}, nil
}

// kvResponse is the part of a KV read response dso uses.
type kvResponse struct {
	Data json.RawMessage `json:"data"`
}

type kv2Data struct {
	Data     map[string]any `json:"data"`
	Metadata struct {
		Version      int    `json:"version"`
		DeletionTime string `json:"deletion_time"`
		Destroyed    bool   `json:"destroyed"`
	} `json:"metadata"`
}

func (c *Client) decodeKV(ref providers.Ref, body []byte) (map[string]any, string, error) {
	var r kvResponse
	if err := json.Unmarshal(body, &r); err != nil {
		// json errors quote at most a type name and an offset, not content.
		return nil, "", providers.Wrap(providers.KindUnavailable, c.s.store, ref.Key, err, "Vault's answer is not the JSON of a KV read")
	}
	if c.s.kvVersion == 1 {
		var data map[string]any
		if len(r.Data) == 0 || string(r.Data) == "null" {
			return nil, "", providers.Errorf(providers.KindNotFound, c.s.store, ref.Key, "no secret at %s", c.s.kvPath(ref.Key))
		}
		if err := unmarshalNumbers(r.Data, &data); err != nil {
			return nil, "", providers.Wrap(providers.KindUnavailable, c.s.store, ref.Key, err, "Vault's answer is not the JSON of a KV v1 read")
		}
		return data, "", nil
	}
	var d kv2Data
	if len(r.Data) > 0 && string(r.Data) != "null" {
		if err := unmarshalNumbers(r.Data, &d); err != nil {
			return nil, "", providers.Wrap(providers.KindUnavailable, c.s.store, ref.Key, err, "Vault's answer is not the JSON of a KV v2 read (is spec.vault.kvVersion right?)")
		}
	}
	if d.Data == nil {
		what := "the latest version"
		if ref.Version != "" {
			what = "version " + ref.Version
		}
		if d.Metadata.Version == 0 {
			return nil, "", providers.Errorf(providers.KindNotFound, c.s.store, ref.Key, "no secret at %s", c.s.kvPath(ref.Key))
		}
		return nil, "", providers.Errorf(providers.KindNotFound, c.s.store, ref.Key, "%s (%d) has no data: it was deleted or destroyed; undelete it in Vault or pin another version", what, d.Metadata.Version)
	}
	return d.Data, strconv.Itoa(d.Metadata.Version), nil
}

// do sends one request with the current token. On a 403 it tries once to
// get a new token (AppRole login, or re-reading the token's file or
// variable) and repeats the request. It returns the body of a 2xx answer,
// or an error of package providers.
func (c *Client) do(ctx context.Context, key, method, path string, params url.Values, body any) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		token, gen, err := c.currentToken(ctx, key)
		if err != nil {
			return nil, err
		}
		status, respBody, err := c.send(ctx, key, method, path, params, body, token)
		if err != nil {
			return nil, err
		}
		switch {
		case status >= 200 && status < 300:
			return respBody, nil
		case status == http.StatusForbidden && attempt == 0:
			if c.refreshToken(ctx, key, gen) {
				c.reauths.Add(1)
				continue
			}
		case status == http.StatusNotFound && len(respBody) > 0:
			return nil, &notFoundBody{err: c.statusError(key, status, path), body: respBody}
		}
		return nil, c.statusError(key, status, path)
	}
}

// notFoundBody is a 404 error that keeps the body for the caller to look
// at; its text is only the wrapped providers.Error.
type notFoundBody struct {
	err  error
	body []byte
}

func (e *notFoundBody) Error() string { return e.err.Error() }
func (e *notFoundBody) Unwrap() error { return e.err }

// send performs one HTTP request and reads at most maxResponseBytes.
func (c *Client) send(ctx context.Context, key, method, path string, params url.Values, body any, token string) (int, []byte, error) {
	r := c.api.NewRequest(method, path)
	r.ClientToken = token
	if params != nil {
		r.Params = params
	}
	if body != nil {
		if err := r.SetJSONBody(body); err != nil {
			return 0, nil, providers.Wrap(providers.KindUnknown, c.s.store, key, err, "encoding the request")
		}
	}
	//nolint:staticcheck // RawRequestWithContext is the one call that gives us the status without parsing the body into an error.
	resp, err := c.api.RawRequestWithContext(ctx, r)
	if resp == nil {
		return 0, nil, c.transportError(ctx, key, err)
	}
	// The body is read to the end (or to the limit) below; a close error
	// after that cannot change the answer.
	defer func() { _ = resp.Body.Close() }()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if rerr != nil {
		return 0, nil, c.transportError(ctx, key, rerr)
	}
	if len(b) > maxResponseBytes {
		return 0, nil, providers.Errorf(providers.KindInvalidRef, c.s.store, key, "Vault's answer is over %d bytes; values over the 1 MiB limit are refused", maxResponseBytes)
	}
	// err (a *vaultapi.ResponseError for statuses >= 400) is dropped on
	// purpose: its text holds Vault's error strings, or the raw body.
	return resp.StatusCode, b, nil
}

// transportError maps a failure to get any HTTP answer at all.
func (c *Client) transportError(ctx context.Context, key string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return providers.Wrap(providers.KindUnavailable, c.s.store, key, ctxErr, "no answer from Vault at "+c.s.address+" before the deadline")
	}
	// A *url.Error names method and URL (address and KV path — no token, no
	// value); keep only its cause, which says refused, timeout, TLS, DNS...
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return providers.Wrap(providers.KindInvalidConfig, c.s.store, key, err, "Vault's TLS certificate at "+c.s.address+" is not trusted: set spec.vault.caFile to the CA bundle that signed it")
	}
	return providers.Wrap(providers.KindUnavailable, c.s.store, key, err, "cannot reach Vault at "+c.s.address)
}

// statusError maps a non-2xx status onto a kind with a sentence saying
// what to check.
func (c *Client) statusError(key string, status int, path string) error {
	var kind providers.Kind
	var msg string
	switch {
	case status == http.StatusNotFound:
		kind, msg = providers.KindNotFound, "no secret at "+path+" (check the key, spec.vault.mount and spec.vault.kvVersion)"
	case status == http.StatusForbidden:
		kind, msg = providers.KindPermissionDenied, "Vault answered 403 for "+path+": the token is invalid or expired, or its policy does not allow reading this path"
	case status == http.StatusUnauthorized:
		kind, msg = providers.KindPermissionDenied, "Vault answered 401 for "+path+": check spec.vault.auth"
	case status == http.StatusTooManyRequests:
		kind, msg = providers.KindUnavailable, "Vault is rate limiting dso (429): lower spec.rateLimit or raise Vault's quota"
	case status == http.StatusServiceUnavailable:
		kind, msg = providers.KindUnavailable, "Vault answered 503: it is sealed, in maintenance, or has no active node"
	case status >= 500:
		kind, msg = providers.KindUnavailable, fmt.Sprintf("Vault answered %d for %s", status, path)
	case status == http.StatusBadRequest:
		kind, msg = providers.KindInvalidRef, "Vault refused the request for "+path+" as malformed (400)"
	default:
		kind, msg = providers.KindUnknown, fmt.Sprintf("Vault answered %d for %s", status, path)
	}
	return providers.Errorf(kind, c.s.store, key, "%s", msg)
}

// Validate implements providers.Client: Vault must be reachable, initialised
// and unsealed, and the token (after a login, for AppRole) must be valid.
func (c *Client) Validate(ctx context.Context) error {
	// sys/health answers with a status code per state; these parameters make
	// every state 200 so the body says which one it is.
	params := url.Values{"standbyok": {"true"}, "perfstandbyok": {"true"}, "sealedcode": {"200"}, "uninitcode": {"200"}, "drsecondarycode": {"200"}}
	status, b, err := c.send(ctx, "", http.MethodGet, "/v1/sys/health", params, nil, "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return c.statusError("", status, "sys/health")
	}
	var h struct {
		Initialized bool   `json:"initialized"`
		Sealed      bool   `json:"sealed"`
		Version     string `json:"version"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return providers.Wrap(providers.KindUnavailable, c.s.store, "", err, "sys/health at "+c.s.address+" did not answer JSON: is this a Vault server?")
	}
	switch {
	case !h.Initialized:
		return providers.Errorf(providers.KindUnavailable, c.s.store, "", "Vault at %s is not initialised", c.s.address)
	case h.Sealed:
		return providers.Errorf(providers.KindUnavailable, c.s.store, "", "Vault at %s is sealed: unseal it", c.s.address)
	}
	if _, err := c.do(ctx, "", http.MethodGet, "/v1/auth/token/lookup-self", nil, nil); err != nil {
		return err
	}
	return nil
}

// Close implements providers.Client: it stops token renewal. Closing twice
// is harmless.
func (c *Client) Close() error {
	// Under mu, so that a renewer starting concurrently (startRenewer)
	// either is counted in renewWG before the Wait or sees the client closed.
	c.mu.Lock()
	c.closeOnce.Do(c.stop)
	c.mu.Unlock()
	c.renewWG.Wait()
	return nil
}

// Logins reports how many AppRole logins this client made.
func (c *Client) Logins() int64 { return c.logins.Load() }

// Reauths reports how many requests were repeated after a 403 because a
// new token was obtained (AppRole re-login, re-read token file).
func (c *Client) Reauths() int64 { return c.reauths.Load() }

// Renewals reports how many times this client renewed its token.
func (c *Client) Renewals() int64 { return c.renewals.Load() }

// compile-time checks
var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Client   = (*Client)(nil)
)
