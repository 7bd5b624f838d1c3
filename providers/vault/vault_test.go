package vault

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

const tokenEnv = "DSO_TEST_VAULT_TOKEN"

// store builds a SecretStore named "vault-test" for addr with a token read
// from tokenEnv; mut adjusts it.
func store(addr string, mut func(*v1alpha1.VaultProvider)) *v1alpha1.SecretStore {
	v := &v1alpha1.VaultProvider{
		Address: addr,
		Auth:    v1alpha1.VaultAuth{Token: &v1alpha1.ValueSource{FromEnv: tokenEnv}},
	}
	if mut != nil {
		mut(v)
	}
	return &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Name: "vault-test"}, Spec: v1alpha1.SecretStoreSpec{Vault: v}}
}

func newTestClient(t testing.TB, st *v1alpha1.SecretStore) *Client {
	t.Helper()
	c, err := New().NewClient(context.Background(), st)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*Client)
}

func wantKind(t *testing.T, err error, kind providers.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %v error, got nil", kind)
	}
	if got := providers.KindOf(err); got != kind {
		t.Fatalf("want kind %v, got %v: %v", kind, got, err)
	}
}

func TestGetAgainstDevServer(t *testing.T) {
	needDev(t)
	t.Setenv(tokenEnv, dev.Token)
	v1 := putV2(t, "shop/db", map[string]any{"user": "app", "password": "first-pw"})
	v2 := putV2(t, "shop/db", map[string]any{"user": "app", "password": "second-pw", "port": 5432})
	vSingle := putV2(t, "shop/single", map[string]any{"token": "only-field"})
	// KV v1 stores numbers verbatim (KV v2 itself rounds them to float64),
	// so it shows that dso passes on exactly the digits Vault returns.
	putV1(t, "legacy/numbers", map[string]any{"id": json.Number("12345678901234567891"), "ratio": json.Number("1.50")})
	putV2(t, "shop/gone", map[string]any{"a": "b"})
	if _, err := root(t).Logical().Delete("secret/data/shop/gone"); err != nil { // soft-delete latest
		t.Fatal(err)
	}
	putV1(t, "legacy/api", map[string]any{"key": "v1-value"})

	kv2 := newTestClient(t, store(dev.Address, nil))
	kv1 := newTestClient(t, store(dev.Address, func(v *v1alpha1.VaultProvider) { v.Mount = "kv1"; v.KVVersion = 1 }))

	tests := []struct {
		name        string
		c           *Client
		ref         providers.Ref
		wantValue   string
		wantVersion string
		wantKind    providers.Kind // 0: success
		wantInErr   string
	}{
		{name: "v2 latest is the whole map as JSON", c: kv2, ref: providers.Ref{Key: "shop/db"},
			wantValue: `{"password":"second-pw","port":5432,"user":"app"}`, wantVersion: itoa(v2)},
		{name: "v2 pinned version", c: kv2, ref: providers.Ref{Key: "shop/db", Version: itoa(v1), Property: "password"},
			wantValue: "first-pw", wantVersion: itoa(v1)},
		{name: "v2 property", c: kv2, ref: providers.Ref{Key: "shop/db", Property: "password"},
			wantValue: "second-pw", wantVersion: itoa(v2)},
		{name: "v2 number property keeps JSON text", c: kv2, ref: providers.Ref{Key: "shop/db", Property: "port"},
			wantValue: "5432", wantVersion: itoa(v2)},
		{name: "single field without property is still JSON", c: kv2, ref: providers.Ref{Key: "shop/single"},
			wantValue: `{"token":"only-field"}`, wantVersion: itoa(vSingle)},
		{name: "numbers keep their digits", c: kv1, ref: providers.Ref{Key: "legacy/numbers"},
			wantValue: `{"id":12345678901234567891,"ratio":1.50}`},
		{name: "missing property", c: kv2, ref: providers.Ref{Key: "shop/db", Property: "nope"},
			wantKind: providers.KindNotFound, wantInErr: `field "nope"`},
		{name: "missing key", c: kv2, ref: providers.Ref{Key: "shop/missing"},
			wantKind: providers.KindNotFound, wantInErr: `key "shop/missing"`},
		{name: "version that does not exist", c: kv2, ref: providers.Ref{Key: "shop/db", Version: "99"},
			wantKind: providers.KindNotFound},
		{name: "deleted latest version", c: kv2, ref: providers.Ref{Key: "shop/gone"},
			wantKind: providers.KindNotFound, wantInErr: "deleted or destroyed"},
		{name: "version not a number", c: kv2, ref: providers.Ref{Key: "shop/db", Version: "latest"},
			wantKind: providers.KindInvalidRef},
		{name: "v1 mount", c: kv1, ref: providers.Ref{Key: "legacy/api"},
			wantValue: `{"key":"v1-value"}`},
		{name: "v1 property", c: kv1, ref: providers.Ref{Key: "legacy/api", Property: "key"},
			wantValue: "v1-value"},
		{name: "v1 missing key", c: kv1, ref: providers.Ref{Key: "legacy/none"},
			wantKind: providers.KindNotFound},
		{name: "v1 refuses a version", c: kv1, ref: providers.Ref{Key: "legacy/api", Version: "1"},
			wantKind: providers.KindInvalidRef, wantInErr: "KV version 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.c.Get(context.Background(), tc.ref)
			if tc.wantKind != 0 {
				wantKind(t, err, tc.wantKind)
				if !strings.Contains(err.Error(), tc.wantInErr) {
					t.Fatalf("error %q does not mention %q", err, tc.wantInErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Value) != tc.wantValue || s.Version != tc.wantVersion {
				t.Fatalf("got value %q version %q, want %q version %q", s.Value, s.Version, tc.wantValue, tc.wantVersion)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFieldsForDataFrom(t *testing.T) {
	needDev(t)
	t.Setenv(tokenEnv, dev.Token)
	putV2(t, "shop/fields", map[string]any{"a": "1", "b": "two"})
	s, err := newTestClient(t, store(dev.Address, nil)).Get(context.Background(), providers.Ref{Key: "shop/fields"})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Fields["a"]) != "1" || string(s.Fields["b"]) != "two" || len(s.Fields) != 2 {
		t.Fatalf("fields = %q", s.Fields)
	}
}

func TestTokenSources(t *testing.T) {
	needDev(t)
	putV2(t, "auth/check", map[string]any{"v": "ok"})
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte(dev.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad-token")
	if err := os.WriteFile(bad, []byte("hvs.not-a-real-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      string
		src      v1alpha1.ValueSource
		wantKind providers.Kind
	}{
		{name: "fromEnv", env: dev.Token, src: v1alpha1.ValueSource{FromEnv: tokenEnv}},
		{name: "fromFile with trailing newline", src: v1alpha1.ValueSource{FromFile: good}},
		{name: "wrong token is permission denied", src: v1alpha1.ValueSource{FromFile: bad}, wantKind: providers.KindPermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tokenEnv, tc.env)
			c := newTestClient(t, store(dev.Address, func(v *v1alpha1.VaultProvider) { v.Auth.Token = &tc.src }))
			s, err := c.Get(context.Background(), providers.Ref{Key: "auth/check", Property: "v"})
			verr := c.Validate(context.Background())
			if tc.wantKind != 0 {
				wantKind(t, err, tc.wantKind)
				wantKind(t, verr, tc.wantKind)
				return
			}
			if err != nil || string(s.Value) != "ok" {
				t.Fatalf("Get = %q, %v", s.Value, err)
			}
			if verr != nil {
				t.Fatalf("Validate: %v", verr)
			}
		})
	}
}

// A token file rewritten by an external agent (Vault Agent sink) is read
// again after a 403, so the new token is used without a restart.
func TestTokenFileReReadAfter403(t *testing.T) {
	needDev(t)
	putV2(t, "auth/reread", map[string]any{"v": "ok"})
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("hvs.stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, store(dev.Address, func(v *v1alpha1.VaultProvider) {
		v.Auth.Token = &v1alpha1.ValueSource{FromFile: f}
	}))
	_, err := c.Get(context.Background(), providers.Ref{Key: "auth/reread"})
	wantKind(t, err, providers.KindPermissionDenied)
	if err := os.WriteFile(f, []byte(dev.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), providers.Ref{Key: "auth/reread"}); err != nil {
		t.Fatalf("after rewriting the token file: %v", err)
	}
}

// setupAppRole creates a policy and a role and returns a role id and a
// fresh secret id.
func setupAppRole(t *testing.T, role string, roleOpts map[string]any) (roleID, secretID string) {
	t.Helper()
	r := root(t)
	if err := r.Sys().PutPolicy("dso-read", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	opts := map[string]any{"token_policies": "dso-read"}
	for k, v := range roleOpts {
		opts[k] = v
	}
	if _, err := r.Logical().Write("auth/approle/role/"+role, opts); err != nil {
		t.Fatal(err)
	}
	s, err := r.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID = s.Data["role_id"].(string)
	s, err = r.Logical().Write("auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return roleID, s.Data["secret_id"].(string)
}

func appRoleStore(t *testing.T, roleID, secretID string) *v1alpha1.SecretStore {
	dir := t.TempDir()
	rf, sf := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	if err := os.WriteFile(rf, []byte(roleID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sf, []byte(secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return store(dev.Address, func(v *v1alpha1.VaultProvider) {
		v.Auth = v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRole{
			RoleID:   v1alpha1.ValueSource{FromFile: rf},
			SecretID: v1alpha1.ValueSource{FromFile: sf},
		}}
	})
}

func TestAppRoleLoginAndReloginAfterRevoke(t *testing.T) {
	needDev(t)
	putV2(t, "approle/app", map[string]any{"v": "ok"})
	roleID, secretID := setupAppRole(t, "dso", nil)
	c := newTestClient(t, appRoleStore(t, roleID, secretID))

	get := func() error {
		_, err := c.Get(context.Background(), providers.Ref{Key: "approle/app", Property: "v"})
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("first Get: %v", err)
	}
	if c.Logins() != 1 {
		t.Fatalf("logins after first Get = %d, want 1", c.Logins())
	}
	if err := c.Validate(context.Background()); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	c.mu.RLock()
	tok := c.token
	c.mu.RUnlock()
	if _, err := root(t).Logical().Write("auth/token/revoke", map[string]any{"token": tok}); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Fatalf("Get after revoke: %v", err)
	}
	if c.Logins() != 2 || c.Reauths() != 1 {
		t.Fatalf("logins=%d reauths=%d after revoke, want 2 and 1 (one re-login on 403)", c.Logins(), c.Reauths())
	}

	// Policy does not allow kv1/: a 403 that a re-login cannot fix is
	// reported as permission denied after exactly one more login.
	c1 := newTestClient(t, appRoleStore(t, roleID, secretID))
	c1.s.mount, c1.s.kvVersion = "kv1", 1
	putV1(t, "forbidden", map[string]any{"v": "x"})
	_, err := c1.Get(context.Background(), providers.Ref{Key: "forbidden"})
	wantKind(t, err, providers.KindPermissionDenied)
	if c1.Logins() != 2 {
		t.Fatalf("logins = %d, want 2 (initial + one retry)", c1.Logins())
	}
}

func TestAppRoleBadSecretID(t *testing.T) {
	needDev(t)
	roleID, _ := setupAppRole(t, "dso-bad", nil)
	c := newTestClient(t, appRoleStore(t, roleID, "00000000-0000-0000-0000-000000000000"))
	_, err := c.Get(context.Background(), providers.Ref{Key: "approle/app"})
	wantKind(t, err, providers.KindPermissionDenied)
	if !strings.Contains(err.Error(), "roleID and secretID") {
		t.Fatalf("error does not say what to check: %v", err)
	}
	wantKind(t, c.Validate(context.Background()), providers.KindPermissionDenied)
}

// Renewal keeps a short-lived token alive without logins, and a token at
// its max TTL is replaced by a fresh login before it expires: in both cases
// no request ever sees a 403.
func TestAppRoleRenewal(t *testing.T) {
	needDev(t)
	putV2(t, "approle/renew", map[string]any{"v": "ok"})
	tests := []struct {
		name        string
		ttl, maxTTL string
		wait        time.Duration
		minRenewals int64
		minLogins   int64
		maxLogins   int64
	}{
		{name: "renews before expiry", ttl: "3s", maxTTL: "60s", wait: 5 * time.Second, minRenewals: 1, minLogins: 1, maxLogins: 1},
		{name: "logs in again at max TTL", ttl: "2s", maxTTL: "3s", wait: 5 * time.Second, minLogins: 2, maxLogins: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			roleID, secretID := setupAppRole(t, "renew-"+tc.ttl+"-"+tc.maxTTL, map[string]any{"token_ttl": tc.ttl, "token_max_ttl": tc.maxTTL})
			c := newTestClient(t, appRoleStore(t, roleID, secretID))
			deadline := time.Now().Add(tc.wait)
			for time.Now().Before(deadline) {
				if _, err := c.Get(context.Background(), providers.Ref{Key: "approle/renew"}); err != nil {
					t.Fatalf("Get: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if c.Renewals() < tc.minRenewals || c.Logins() < tc.minLogins || c.Logins() > tc.maxLogins {
				t.Fatalf("renewals=%d logins=%d, want renewals>=%d and %d<=logins<=%d", c.Renewals(), c.Logins(), tc.minRenewals, tc.minLogins, tc.maxLogins)
			}
			if n := c.Reauths(); n != 0 {
				t.Fatalf("%d requests met a 403 and needed a new token: the renewer did not keep the token valid", n)
			}
		})
	}
}

// The namespace header cannot be checked end to end on open-source Vault
// (namespaces are an Enterprise feature), so a reverse proxy in front of
// the real server records it and strips it before forwarding.
func TestNamespaceHeaderSent(t *testing.T) {
	needDev(t)
	t.Setenv(tokenEnv, dev.Token)
	putV2(t, "ns/app", map[string]any{"v": "ok"})
	target, _ := url.Parse(dev.Address)
	var mu sync.Mutex
	var seen []string
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the KV reads: the renewer's lookup-self runs concurrently.
		if strings.HasPrefix(r.URL.Path, "/v1/secret/") {
			mu.Lock()
			seen = append(seen, r.Header.Get("X-Vault-Namespace"))
			mu.Unlock()
		}
		r.Header.Del("X-Vault-Namespace")
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()

	c := newTestClient(t, store(srv.URL, func(v *v1alpha1.VaultProvider) { v.Namespace = "team-a/" }))
	if _, err := c.Get(context.Background(), providers.Ref{Key: "ns/app"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_NAMESPACE", "from-env") // must be ignored: the store decides
	c2 := newTestClient(t, store(srv.URL, nil))
	if _, err := c2.Get(context.Background(), providers.Ref{Key: "ns/app"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "team-a" || seen[1] != "" {
		t.Fatalf("X-Vault-Namespace headers seen = %q, want [team-a, \"\"]", seen)
	}
}

func TestUnavailable(t *testing.T) {
	t.Setenv(tokenEnv, "hvs.whatever")
	// A port that was free a moment ago: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	// A listener that accepts and never answers: only the deadline ends it.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			conn, err := hang.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	// 5xx and 429 from a server.
	status := func(code int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(s.Close)
		return s.URL
	}
	tests := []struct {
		name string
		addr string
	}{
		{"connection refused", refused},
		{"no answer before the deadline", "http://" + hang.Addr().String()},
		{"500", status(500)},
		{"503", status(503)},
		{"429", status(429)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, store(tc.addr, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Get(ctx, providers.Ref{Key: "x/y"})
			wantKind(t, err, providers.KindUnavailable)
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v, want within the 300ms deadline", d)
			}
			if !providers.Retryable(err) {
				t.Fatalf("unavailable must be retryable: %v", err)
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel2()
			wantKind(t, c.Validate(ctx2), providers.KindUnavailable)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv(tokenEnv, "hvs.x")
	os.Unsetenv("DSO_TEST_UNSET")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := func(src v1alpha1.ValueSource) func(*v1alpha1.VaultProvider) {
		return func(v *v1alpha1.VaultProvider) { v.Auth.Token = &src }
	}
	tests := []struct {
		name      string
		addr      string
		mut       func(*v1alpha1.VaultProvider)
		wantInErr string // empty: must succeed
	}{
		{name: "http to loopback is fine", addr: "http://127.0.0.1:8200"},
		{name: "http to localhost is fine", addr: "http://localhost:8200"},
		{name: "http to ::1 is fine", addr: "http://[::1]:8200"},
		{name: "https anywhere is fine", addr: "https://vault.example:8200"},
		{name: "http to a remote host is refused", addr: "http://vault.example:8200", wantInErr: "allowInsecureHTTP"},
		{name: "http to a remote IP is refused", addr: "http://10.0.0.5:8200", wantInErr: "allowInsecureHTTP"},
		{name: "http to a remote host with opt-in", addr: "http://vault.example:8200",
			mut: func(v *v1alpha1.VaultProvider) { v.AllowInsecureHTTP = true }},
		{name: "empty address", addr: "", wantInErr: "spec.vault.address is empty"},
		{name: "no scheme", addr: "vault.example:8200", wantInErr: "is not a URL like https://"},
		{name: "ftp scheme", addr: "ftp://vault.example", wantInErr: "scheme must be https or http"},
		{name: "user info", addr: "https://u:p@vault.example", wantInErr: "user info"},
		{name: "kvVersion 3", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) { v.KVVersion = 3 }, wantInErr: "use 1 or 2"},
		{name: "mount with ..", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) { v.Mount = "a/../sys" }, wantInErr: `mount "a/../sys"`},
		{name: "no auth", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) { v.Auth = v1alpha1.VaultAuth{} }, wantInErr: "set token or appRole"},
		{name: "both auths", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) {
			v.Auth.AppRole = &v1alpha1.VaultAppRole{}
		}, wantInErr: "both token and appRole"},
		{name: "unset env var", addr: "https://v", mut: tok(v1alpha1.ValueSource{FromEnv: "DSO_TEST_UNSET"}), wantInErr: "DSO_TEST_UNSET is not set"},
		{name: "missing token file", addr: "https://v", mut: tok(v1alpha1.ValueSource{FromFile: filepath.Join(dir, "nope")}), wantInErr: "cannot read the credential file"},
		{name: "empty token file", addr: "https://v", mut: tok(v1alpha1.ValueSource{FromFile: empty}), wantInErr: "is empty"},
		{name: "relative token file", addr: "https://v", mut: tok(v1alpha1.ValueSource{FromFile: "token"}), wantInErr: "not an absolute path"},
		{name: "both env and file", addr: "https://v", mut: tok(v1alpha1.ValueSource{FromEnv: tokenEnv, FromFile: empty}), wantInErr: "both fromEnv and fromFile"},
		{name: "neither env nor file", addr: "https://v", mut: tok(v1alpha1.ValueSource{}), wantInErr: "set fromEnv or fromFile"},
		{name: "approle secret id missing", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) {
			v.Auth = v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRole{RoleID: v1alpha1.ValueSource{FromEnv: tokenEnv}, SecretID: v1alpha1.ValueSource{FromEnv: "DSO_TEST_UNSET"}}}
		}, wantInErr: "appRole.secretID.fromEnv"},
		{name: "caFile missing", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) { v.CAFile = filepath.Join(dir, "none.pem") }, wantInErr: "caFile cannot be read"},
		{name: "caFile not PEM", addr: "https://v", mut: func(v *v1alpha1.VaultProvider) { v.CAFile = notPEM }, wantInErr: "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New().NewClient(context.Background(), store(tc.addr, tc.mut))
			if tc.wantInErr == "" {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				c.Close()
				return
			}
			wantKind(t, err, providers.KindInvalidConfig)
			if !strings.Contains(err.Error(), tc.wantInErr) || !strings.Contains(err.Error(), `store "vault-test"`) {
				t.Fatalf("error %q should name the store and contain %q", err, tc.wantInErr)
			}
		})
	}
}

// Bad references are refused before anything is sent.
func TestBadRefsSendNothing(t *testing.T) {
	t.Setenv(tokenEnv, "hvs.x")
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	c := newTestClient(t, store(srv.URL, nil))
	for _, key := range []string{"../sys/raw", "a/../../b", "/etc/passwd", "a\x00b", "", "a\nb"} {
		_, err := c.Get(context.Background(), providers.Ref{Key: key})
		wantKind(t, err, providers.KindInvalidRef)
	}
	_, err := c.Get(context.Background(), providers.Ref{Key: "ok", Version: "-1"})
	wantKind(t, err, providers.KindInvalidRef)
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the server, want 0", n)
	}
}

func TestOversizedValueRefused(t *testing.T) {
	needDev(t)
	t.Setenv(tokenEnv, dev.Token)
	big := strings.Repeat("x", providers.MaxValueSize+1)
	putV2(t, "big/value", map[string]any{"v": big})
	c := newTestClient(t, store(dev.Address, nil))
	for _, ref := range []providers.Ref{{Key: "big/value"}, {Key: "big/value", Property: "v"}} {
		_, err := c.Get(context.Background(), ref)
		wantKind(t, err, providers.KindInvalidRef)
		if !strings.Contains(err.Error(), "1 MiB") {
			t.Fatalf("error does not name the limit: %v", err)
		}
	}
}

// No error text may contain a secret value, a token or a secret id — not
// even when Vault puts them in its own error body.
func TestErrorsNeverContainSecrets(t *testing.T) {
	needDev(t)
	const value = "s3cr3t-VALUE-do-not-leak"
	const badToken = "hvs.TOKEN-do-not-leak"
	putV2(t, "leak/check", map[string]any{"password": value})
	putV2(t, "leak/big", map[string]any{"password": value + strings.Repeat("y", providers.MaxValueSize)})
	roleID, secretID := setupAppRole(t, "leak", nil)

	// A server that echoes the request's token and a value into its error
	// body, as a raw (non-JSON) body and as Vault's JSON errors.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/raw") {
			w.WriteHeader(500)
			w.Write([]byte("boom " + r.Header.Get("X-Vault-Token") + " " + value))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		w.Write([]byte(`{"errors":["bad ` + r.Header.Get("X-Vault-Token") + " " + value + `"]}`))
	}))
	defer echo.Close()

	var errs []error
	t.Setenv(tokenEnv, dev.Token)
	good := newTestClient(t, store(dev.Address, nil))
	for _, ref := range []providers.Ref{{Key: "leak/check", Property: "nope"}, {Key: "leak/big"}, {Key: "leak/check", Version: "7"}} {
		_, err := good.Get(context.Background(), ref)
		errs = append(errs, err)
	}

	t.Setenv(tokenEnv, badToken)
	wrong := newTestClient(t, store(dev.Address, nil))
	_, err := wrong.Get(context.Background(), providers.Ref{Key: "leak/check"})
	errs = append(errs, err, wrong.Validate(context.Background()))

	echoClient := newTestClient(t, store(echo.URL, nil))
	for _, k := range []string{"leak/raw", "leak/json"} {
		_, err := echoClient.Get(context.Background(), providers.Ref{Key: k})
		errs = append(errs, err)
	}

	badSecret := secretID[:len(secretID)-4] + "0000"
	ar := newTestClient(t, appRoleStore(t, roleID, badSecret))
	_, err = ar.Get(context.Background(), providers.Ref{Key: "leak/check"})
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Fatalf("case %d: expected an error", i)
		}
		msg := err.Error()
		for _, secret := range []string{value, badToken, dev.Token, secretID, badSecret, roleID} {
			if strings.Contains(msg, secret) {
				t.Fatalf("case %d: error text leaks a secret: %q", i, msg)
			}
		}
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Store != "vault-test" {
			t.Fatalf("case %d: not a providers.Error naming the store: %v", i, err)
		}
	}
}

func TestEnvironmentDoesNotLeakIn(t *testing.T) {
	// VAULT_TOKEN in the agent's environment must not become the store's
	// token: an AppRole store must log in, a token store uses its source.
	needDev(t)
	t.Setenv("VAULT_TOKEN", dev.Token)
	t.Setenv(tokenEnv, "hvs.wrong")
	putV2(t, "env/check", map[string]any{"v": "ok"})
	c := newTestClient(t, store(dev.Address, nil))
	_, err := c.Get(context.Background(), providers.Ref{Key: "env/check"})
	wantKind(t, err, providers.KindPermissionDenied)
}

func BenchmarkGet(b *testing.B) {
	needDev(b)
	b.Setenv(tokenEnv, dev.Token)
	putV2(b, "bench/db", map[string]any{"user": "app", "password": "bench-pw"})
	c := newTestClient(b, store(dev.Address, nil))
	ctx := context.Background()
	ref := providers.Ref{Key: "bench/db", Property: "password"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Get(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
}

// TLS settings against the real server behind a TLS-terminating reverse
// proxy (the dev server itself speaks plain http on loopback).
func TestTLSOptions(t *testing.T) {
	needDev(t)
	t.Setenv(tokenEnv, dev.Token)
	putV2(t, "tls/app", map[string]any{"v": "ok"})
	target, _ := url.Parse(dev.Address)
	srv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mut      func(*v1alpha1.VaultProvider)
		wantKind providers.Kind
	}{
		{name: "caFile trusts the server", mut: func(v *v1alpha1.VaultProvider) { v.CAFile = caFile }},
		{name: "unknown CA is refused with a hint", mut: nil, wantKind: providers.KindInvalidConfig},
		{name: "insecureSkipVerify is an explicit opt-in", mut: func(v *v1alpha1.VaultProvider) { v.InsecureSkipVerify = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, store(srv.URL, tc.mut))
			_, err := c.Get(context.Background(), providers.Ref{Key: "tls/app"})
			if tc.wantKind != 0 {
				wantKind(t, err, tc.wantKind)
				if !strings.Contains(err.Error(), "spec.vault.caFile") {
					t.Fatalf("error does not say to set caFile: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
