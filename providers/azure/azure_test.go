package azure

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

const (
	storeName = "prod-kv"
	v1        = "0123456789abcdef0123456789abcdef"
	v2        = "fedcba9876543210fedcba9876543210"
)

// Values the fake holds; no error text may contain any of them.
var secretValues = []string{
	"old-first-version-value",
	`{"user":"app","password":"kv-json-field-value"}`,
	"kv-json-field-value",
	"client-secret-credential-value",
}

func assertNoValue(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range secretValues {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error text leaks a secret value: %q", err)
		}
	}
}

func store(url string) *v1alpha1.SecretStore {
	return &v1alpha1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: storeName},
		Spec:       v1alpha1.SecretStoreSpec{Azure: &v1alpha1.AzureProvider{VaultURL: url}},
	}
}

func seeded(t testing.TB) *fakeKV {
	f := newFakeKV(t)
	f.put("shop-db", v1, secretValues[0])
	f.put("shop-db", v2, secretValues[1])
	return f
}

// testClient builds the real azsecrets client against f, with the fake
// token credential and the server's TLS-trusting transport.
func testClient(t testing.TB, f *fakeKV, cred *fake.TokenCredential) *Client {
	t.Helper()
	if cred == nil {
		cred = &fake.TokenCredential{}
	}
	c, err := newClient(context.Background(), store(f.srv.URL), options{
		credential:                           cred,
		transport:                            f.srv.Client(),
		retryDelay:                           time.Millisecond,
		disableChallengeResourceVerification: true,
	})
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	return c
}

func TestGet(t *testing.T) {
	f := seeded(t)
	f.forbidden["shop-admin"] = true
	f.put("shop-echo", v1, secretValues[1])
	f.echo["shop-echo"] = true
	c := testClient(t, f, nil)

	tests := []struct {
		name        string
		ref         providers.Ref
		wantValue   string
		wantVersion string
		wantKind    providers.Kind // KindUnknown: success
		wantMsg     string
		wantGets    int
	}{
		{name: "latest", ref: providers.Ref{Key: "shop-db"}, wantValue: secretValues[1], wantVersion: v2, wantGets: 1},
		{name: "pinned version", ref: providers.Ref{Key: "shop-db", Version: v1}, wantValue: secretValues[0], wantVersion: v1, wantGets: 1},
		{name: "property", ref: providers.Ref{Key: "shop-db", Property: "password"}, wantValue: "kv-json-field-value", wantVersion: v2, wantGets: 1},
		{name: "missing property", ref: providers.Ref{Key: "shop-db", Property: "token"}, wantKind: providers.KindNotFound, wantMsg: `field "token" not in secret`, wantGets: 1},
		{name: "property of a non-JSON version", ref: providers.Ref{Key: "shop-db", Version: v1, Property: "password"}, wantKind: providers.KindNotFound, wantMsg: "not a JSON object", wantGets: 1},
		{name: "not found", ref: providers.Ref{Key: "shop-missing"}, wantKind: providers.KindNotFound, wantMsg: "HTTP 404 SecretNotFound", wantGets: 1},
		{name: "unknown version", ref: providers.Ref{Key: "shop-db", Version: "00000000000000000000000000000000"}, wantKind: providers.KindNotFound, wantGets: 1},
		{name: "forbidden", ref: providers.Ref{Key: "shop-admin"}, wantKind: providers.KindPermissionDenied, wantMsg: "HTTP 403 Forbidden", wantGets: 1},
		{name: "error body quoting the value is not passed on", ref: providers.Ref{Key: "shop-echo"}, wantKind: providers.KindInvalidRef, wantMsg: "HTTP 400 BadParameter", wantGets: 1},
		{name: "slash in name refused before any call", ref: providers.Ref{Key: "shop/db"}, wantKind: providers.KindInvalidRef, wantMsg: "letters, digits and '-'"},
		{name: "traversal refused before any call", ref: providers.Ref{Key: "../x"}, wantKind: providers.KindInvalidRef},
		{name: "bad version refused before any call", ref: providers.Ref{Key: "shop-db", Version: "../v"}, wantKind: providers.KindInvalidRef, wantMsg: "not a Key Vault version id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := f.counts()
			s, err := c.Get(context.Background(), tt.ref)
			if _, after := f.counts(); after-before != tt.wantGets {
				t.Errorf("authorised GETs = %d, want %d", after-before, tt.wantGets)
			}
			assertNoValue(t, err)
			if tt.wantKind != providers.KindUnknown {
				if err == nil {
					t.Fatalf("Get succeeded, want %v", tt.wantKind)
				}
				if k := providers.KindOf(err); k != tt.wantKind {
					t.Fatalf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
				}
				for _, want := range []string{tt.wantMsg, `store "prod-kv"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), f.srv.URL) {
					t.Errorf("error %q carries the raw azcore dump (URL or body)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(s.Value) != tt.wantValue || s.Version != tt.wantVersion {
				t.Errorf("Get = (%q, version %q), want (%q, %q)", s.Value, s.Version, tt.wantValue, tt.wantVersion)
			}
		})
	}
	if ch, _ := f.counts(); ch != 1 {
		t.Errorf("challenges = %d, want 1 (the SDK caches the challenge)", ch)
	}
	if !f.tokens["fake_token"] || len(f.tokens) != 1 {
		t.Errorf("bearer tokens seen = %v, want the fake credential's", f.tokens)
	}
}

func TestExpiry(t *testing.T) {
	f := newFakeKV(t)
	f.versions["tls-key"] = []fakeVersion{{id: v1, value: "k", expires: 1900000000}}
	c := testClient(t, f, nil)
	s, err := c.Get(context.Background(), providers.Ref{Key: "tls-key"})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1900000000, 0); !s.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", s.Expires, want)
	}
}

func TestThrottling(t *testing.T) {
	tests := []struct {
		name           string
		throttle       int
		retryAfter     string
		wantGets       int
		wantKind       providers.Kind // KindUnknown: success
		wantRetryAfter time.Duration
	}{
		// A Retry-After above maxRetryDelay is not slept on inside the
		// call: it comes back at once, for the cache to honour.
		{name: "long Retry-After surfaces without retrying", throttle: 10, retryAfter: "7", wantGets: 1, wantKind: providers.KindUnavailable, wantRetryAfter: 7 * time.Second},
		{name: "persistent 429 without Retry-After is bounded", throttle: 10, wantGets: maxRetries + 1, wantKind: providers.KindUnavailable},
		{name: "one 429 is retried", throttle: 1, retryAfter: "0", wantGets: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			c := testClient(t, f, nil)
			// Warm the challenge so the counts below are Get attempts only.
			if _, err := c.Get(context.Background(), providers.Ref{Key: "shop-db"}); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			f.throttle, f.retryAfter, f.gets = tt.throttle, tt.retryAfter, 0
			f.mu.Unlock()

			start := time.Now()
			_, err := c.Get(context.Background(), providers.Ref{Key: "shop-db"})
			if el := time.Since(start); el > time.Second {
				t.Errorf("Get took %v; the SDK slept inside the call", el)
			}
			if _, gets := f.counts(); gets != tt.wantGets {
				t.Errorf("attempts = %d, want %d", gets, tt.wantGets)
			}
			assertNoValue(t, err)
			if tt.wantKind == providers.KindUnknown {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				return
			}
			if k := providers.KindOf(err); k != tt.wantKind {
				t.Fatalf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) || time.Duration(pe.RetryAfter) != tt.wantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", time.Duration(pe.RetryAfter), tt.wantRetryAfter)
			}
			if !strings.Contains(err.Error(), "HTTP 429") {
				t.Errorf("error %q does not say HTTP 429", err)
			}
		})
	}
}

func TestServerErrorsAreUnavailableAndBounded(t *testing.T) {
	f := seeded(t)
	c := testClient(t, f, nil)
	f.fail = 100
	_, err := c.Get(context.Background(), providers.Ref{Key: "shop-db"})
	if k := providers.KindOf(err); k != providers.KindUnavailable {
		t.Fatalf("kind = %v, want unavailable (err: %v)", k, err)
	}
	// The first request is the challenge (not counted); then 1 try + retries.
	if _, gets := f.counts(); gets != maxRetries+1 {
		t.Errorf("attempts = %d, want %d", gets, maxRetries+1)
	}
}

func TestDeadline(t *testing.T) {
	f := seeded(t)
	c := testClient(t, f, nil)
	if _, err := c.Get(context.Background(), providers.Ref{Key: "shop-db"}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.delay = 10 * time.Second
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, providers.Ref{Key: "shop-db"})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Get returned after %v, want soon after the 100ms deadline", el)
	}
	if k := providers.KindOf(err); k != providers.KindUnavailable {
		t.Fatalf("kind = %v, want unavailable (err: %v)", k, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not wrap context.DeadlineExceeded", err)
	}
}

func TestTokenFailureIsPermissionDenied(t *testing.T) {
	f := seeded(t)
	cred := &fake.TokenCredential{}
	cred.SetError(errors.New("AADSTS7000215: Invalid client secret provided"))
	c := testClient(t, f, cred)
	_, err := c.Get(context.Background(), providers.Ref{Key: "shop-db"})
	if k := providers.KindOf(err); k != providers.KindPermissionDenied {
		t.Fatalf("kind = %v, want permission denied (err: %v)", k, err)
	}
	for _, want := range []string{"spec.azure.auth", "AADSTS7000215"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, gets := f.counts(); gets != 0 {
		t.Errorf("a request reached the vault without a token (%d)", gets)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeKV, cred *fake.TokenCredential)
		wantKind providers.Kind
	}{
		{name: "ok", setup: func(*fakeKV, *fake.TokenCredential) {}},
		{name: "bad credential", setup: func(_ *fakeKV, c *fake.TokenCredential) { c.SetError(errors.New("no token")) }, wantKind: providers.KindPermissionDenied},
		{name: "unreachable", setup: func(f *fakeKV, _ *fake.TokenCredential) { f.srv.Close() }, wantKind: providers.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			cred := &fake.TokenCredential{}
			c := testClient(t, f, cred)
			tt.setup(f, cred)
			err := c.Validate(context.Background())
			if tt.wantKind == providers.KindUnknown {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if f.lists != 1 {
					t.Errorf("list calls = %d, want 1", f.lists)
				}
				return
			}
			if k := providers.KindOf(err); k != tt.wantKind {
				t.Fatalf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
			}
		})
	}
}

func TestNewClientConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(secretValues[3]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodCS := func() *v1alpha1.AzureClientSecretAuth {
		return &v1alpha1.AzureClientSecretAuth{TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "app",
			ClientSecret: v1alpha1.ValueSource{FromFile: secretFile}}
	}
	tests := []struct {
		name    string
		mutate  func(p *v1alpha1.AzureProvider)
		wantMsg string // empty: NewClient succeeds
	}{
		{name: "client secret from file", mutate: func(p *v1alpha1.AzureProvider) { p.Auth.ClientSecret = goodCS() }},
		{name: "managed identity", mutate: func(p *v1alpha1.AzureProvider) {
			p.Auth.ManagedIdentity = &v1alpha1.AzureManagedIdentityAuth{ClientID: "11111111-1111-1111-1111-111111111111"}
		}},
		{name: "default credential", mutate: func(*v1alpha1.AzureProvider) {}},
		{name: "no url", mutate: func(p *v1alpha1.AzureProvider) { p.VaultURL = "" }, wantMsg: "spec.azure.vaultURL"},
		{name: "http url", mutate: func(p *v1alpha1.AzureProvider) { p.VaultURL = "http://kv.example.internal/" }, wantMsg: "must start with https://"},
		{name: "both auth kinds", mutate: func(p *v1alpha1.AzureProvider) {
			p.Auth.ClientSecret = goodCS()
			p.Auth.ManagedIdentity = &v1alpha1.AzureManagedIdentityAuth{}
		}, wantMsg: "both clientSecret and managedIdentity"},
		{name: "no tenant", mutate: func(p *v1alpha1.AzureProvider) {
			p.Auth.ClientSecret = goodCS()
			p.Auth.ClientSecret.TenantID = ""
		}, wantMsg: "spec.azure.auth.clientSecret.tenantID is empty"},
		{name: "no client id", mutate: func(p *v1alpha1.AzureProvider) {
			p.Auth.ClientSecret = goodCS()
			p.Auth.ClientSecret.ClientID = ""
		}, wantMsg: "spec.azure.auth.clientSecret.clientID is empty"},
		{name: "secret env missing", mutate: func(p *v1alpha1.AzureProvider) {
			p.Auth.ClientSecret = goodCS()
			p.Auth.ClientSecret.ClientSecret = v1alpha1.ValueSource{FromEnv: "DSO_TEST_AZ_NOT_SET"}
		}, wantMsg: "spec.azure.auth.clientSecret.clientSecret.fromEnv: environment variable DSO_TEST_AZ_NOT_SET is not set"},
		{name: "malformed tenant", mutate: func(p *v1alpha1.AzureProvider) {
			p.Auth.ClientSecret = goodCS()
			p.Auth.ClientSecret.TenantID = "bad tenant!"
		}, wantMsg: "spec.azure.auth.clientSecret is not usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := store("https://myvault.vault.azure.net/")
			tt.mutate(s.Spec.Azure)
			c, err := Provider{}.NewClient(context.Background(), s)
			assertNoValue(t, err)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				_ = c.Close()
				return
			}
			if err == nil {
				t.Fatal("NewClient succeeded, want an error")
			}
			if k := providers.KindOf(err); k != providers.KindInvalidConfig {
				t.Errorf("kind = %v, want invalid configuration", k)
			}
			for _, want := range []string{tt.wantMsg, `store "prod-kv"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"12"}}, 12 * time.Second},
		{"zero", http.Header{"Retry-After": {"0"}}, 0},
		{"http date", http.Header{"Retry-After": {now.Add(30 * time.Second).Format(http.TimeFormat)}}, 30 * time.Second},
		{"past date", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"ms header wins", http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}}, 1500 * time.Millisecond},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h, now); got != tt.want {
			t.Errorf("%s: retryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	f := seeded(b)
	c := testClient(b, f, nil)
	ctx := context.Background()
	ref := providers.Ref{Key: "shop-db", Property: "password"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
}
