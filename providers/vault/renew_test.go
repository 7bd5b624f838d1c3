package vault

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/testutil"
	"github.com/dso-dev/dso/providers"
)

// Renewal of tokens given by spec.vault.auth.token, against the real dev
// server. The deadlines are generous (the machines are shared and slow);
// the assertions are about behaviour: reads keep working past the original
// TTL, Vault itself reports the TTL extended, and what reached Vault.

// createToken makes a token with the dso-read policy (plus Vault's default
// policy, which grants lookup-self and renew-self) using the root token.
func createToken(t *testing.T, ttl string, renewable bool) string {
	t.Helper()
	r := root(t)
	if err := r.Sys().PutPolicy("dso-read", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	s, err := r.Auth().Token().Create(&vaultapi.TokenCreateRequest{
		Policies:       []string{"dso-read"},
		TTL:            ttl,
		ExplicitMaxTTL: "1h",
		Renewable:      &renewable,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// writeToken writes tok to a file and returns its path; rewriting the same
// path is what a Vault Agent sink does.
func writeToken(t *testing.T, path, tok string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "token")
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tokenInfo is what Vault says about tok, looked up with the root token.
type tokenInfo struct {
	valid       bool
	ttl         time.Duration
	expire      time.Time
	lastRenewal bool // Vault recorded a renewal
}

func lookup(t *testing.T, tok string) tokenInfo {
	t.Helper()
	s, err := root(t).Auth().Token().Lookup(tok)
	if err != nil || s == nil {
		return tokenInfo{} // expired or revoked
	}
	info := tokenInfo{valid: true}
	if n, ok := s.Data["ttl"].(json.Number); ok {
		sec, _ := n.Int64()
		info.ttl = time.Duration(sec) * time.Second
	}
	if e, ok := s.Data["expire_time"].(string); ok {
		info.expire, _ = time.Parse(time.RFC3339Nano, e)
	}
	_, info.lastRenewal = s.Data["last_renewal_time"]
	return info
}

// mustNotContain fails if any line holds one of secrets.
func mustNotContain(t *testing.T, l *testutil.LogSink, secrets ...string) {
	t.Helper()
	for _, line := range l.Matching("") {
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Fatalf("a log line contains a token: %q", line)
			}
		}
	}
}

// newLoggedClient is newTestClient with a logger in NewClient's context.
func newLoggedClient(t *testing.T, st *v1alpha1.SecretStore) (*Client, *testutil.LogSink) {
	t.Helper()
	logs := &testutil.LogSink{}
	c, err := New().NewClient(logr.NewContext(context.Background(), logs.Logger(1)), st)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*Client), logs
}

// recorder is a reverse proxy in front of the dev server that counts the
// token endpoints per token, and can answer 503 to the first renewals.
type recorder struct {
	srv *httptest.Server

	mu       sync.Mutex
	calls    map[string]int // "lookup-self <token>", "renew-self <token>"
	fail503  int            // renew-self calls still to refuse with 503
	refusals int
}

func newRecorder(t *testing.T, fail503 int) *recorder {
	t.Helper()
	needDev(t)
	target, _ := url.Parse(dev.Address)
	rp := httputil.NewSingleHostReverseProxy(target)
	r := &recorder{calls: map[string]int{}, fail503: fail503}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if ep, ok := strings.CutPrefix(req.URL.Path, "/v1/auth/token/"); ok {
			r.mu.Lock()
			r.calls[ep+" "+req.Header.Get("X-Vault-Token")]++
			refuse := ep == "renew-self" && r.fail503 > 0
			if refuse {
				r.fail503--
				r.refusals++
			}
			r.mu.Unlock()
			if refuse {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) count(endpoint, tok string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[endpoint+" "+tok]
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, 50*time.Millisecond, what, cond)
}

func tokenStore(addr, file string) *v1alpha1.SecretStore {
	return store(addr, func(v *v1alpha1.VaultProvider) {
		v.Auth.Token = &v1alpha1.ValueSource{FromFile: file}
	})
}

// readFor reads key every 200ms until d has passed; every read must work.
func readFor(t *testing.T, c *Client, key string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s, err := c.Get(context.Background(), providers.Ref{Key: key, Property: "v"})
		if err != nil || string(s.Value) != "ok" {
			t.Fatalf("Get = %q, %v: the token was not kept valid", s.Value, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A renewable token from a file, with a 6s TTL, keeps working for twice
// its TTL: dso renews it, and Vault reports it renewed and expiring later
// than it was created to. (6s leaves each renewal, due at 2/3 of the TTL,
// 2s of slack on a loaded CI machine.)
func TestTokenSourceRenewal(t *testing.T) {
	needDev(t)
	putV2(t, "renew/token", map[string]any{"v": "ok"})
	const ttl = 6 * time.Second
	tok := createToken(t, "6s", true)
	originalExpiry := time.Now().Add(ttl)
	rec := newRecorder(t, 0)
	c, logs := newLoggedClient(t, tokenStore(rec.srv.URL, writeToken(t, "", tok)))

	readFor(t, c, "renew/token", 2*ttl)

	info := lookup(t, tok)
	if !info.valid || info.ttl <= 0 || !info.lastRenewal || !info.expire.After(originalExpiry) {
		t.Fatalf("Vault says: %+v; want a valid token, renewed, expiring after its original expiry %v", info, originalExpiry)
	}
	if rec.count("lookup-self", tok) < 1 || rec.count("renew-self", tok) < 1 || c.Renewals() < 1 {
		t.Fatalf("lookup-self=%d renew-self=%d renewals=%d, want each >= 1", rec.count("lookup-self", tok), rec.count("renew-self", tok), c.Renewals())
	}
	if n := c.Reauths(); n != 0 {
		t.Fatalf("%d requests met a 403: the renewer did not keep the token valid", n)
	}
	if len(logs.Matching("Vault token renewed")) == 0 {
		t.Fatalf("no renewal was logged (at V(1))")
	}
	mustNotContain(t, logs, tok, dev.Token)
}

// Tokens that cannot be renewed are left alone: the renewer looks them up
// and never calls renew-self. A non-renewable token with a short TTL does
// expire (dso did not extend it); a root token (no TTL) stays as it is.
func TestTokenSourceNotRenewed(t *testing.T) {
	needDev(t)
	putV2(t, "renew/none", map[string]any{"v": "ok"})

	t.Run("non-renewable token expires untouched", func(t *testing.T) {
		tok := createToken(t, "3s", false)
		rec := newRecorder(t, 0)
		c, logs := newLoggedClient(t, tokenStore(rec.srv.URL, writeToken(t, "", tok)))
		if _, err := c.Get(context.Background(), providers.Ref{Key: "renew/none"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the renewer looked the token up", func() bool { return rec.count("lookup-self", tok) >= 1 })
		// Keep reading until the token's own TTL ends it.
		eventually(t, "the token expired", func() bool {
			_, err := c.Get(context.Background(), providers.Ref{Key: "renew/none"})
			return err != nil && providers.KindOf(err) == providers.KindPermissionDenied
		})
		if n := rec.count("renew-self", tok); n != 0 {
			t.Fatalf("renew-self was called %d times for a non-renewable token", n)
		}
		if c.Renewals() != 0 {
			t.Fatalf("renewals = %d, want 0", c.Renewals())
		}
		if len(logs.Matching("is not renewable")) != 1 {
			t.Fatalf("want one log line saying the token is not renewable, got %q", logs.Matching("renew"))
		}
		mustNotContain(t, logs, tok, dev.Token)
	})

	t.Run("root token has no TTL", func(t *testing.T) {
		before := lookup(t, dev.Token)
		rec := newRecorder(t, 0)
		c, logs := newLoggedClient(t, tokenStore(rec.srv.URL, writeToken(t, "", dev.Token)))
		if _, err := c.Get(context.Background(), providers.Ref{Key: "renew/none"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the renewer recorded the lookup", func() bool {
			c.mu.RLock()
			defer c.mu.RUnlock()
			return c.lease.gen == c.gen
		})
		// A renewer that mistook "no TTL" for "due now" would call at once.
		time.Sleep(time.Second)
		if n := rec.count("renew-self", dev.Token); n != 0 {
			t.Fatalf("renew-self was called %d times for a token without TTL", n)
		}
		if after := lookup(t, dev.Token); after != before || after.ttl != 0 {
			t.Fatalf("root token changed: before %+v, after %+v", before, after)
		}
		mustNotContain(t, logs, dev.Token)
	})
}

// When the token file is rewritten (the existing re-read after a 403), the
// renewer follows the new token and keeps it valid.
func TestTokenRenewerFollowsNewToken(t *testing.T) {
	needDev(t)
	putV2(t, "renew/follow", map[string]any{"v": "ok"})
	const ttl = 6 * time.Second
	first := createToken(t, "6s", true)
	rec := newRecorder(t, 0)
	file := writeToken(t, "", first)
	c, logs := newLoggedClient(t, tokenStore(rec.srv.URL, file))
	if _, err := c.Get(context.Background(), providers.Ref{Key: "renew/follow"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first token was renewed", func() bool { return rec.count("renew-self", first) >= 1 })

	// Vault Agent's part: a new token in the sink file, the old one revoked.
	second := createToken(t, "6s", true)
	originalExpiry := time.Now().Add(ttl)
	writeToken(t, file, second)
	if err := root(t).Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	readFor(t, c, "renew/follow", 2*ttl)

	if c.Reauths() != 1 {
		t.Fatalf("reauths = %d, want 1 (the 403 that made dso read the file again)", c.Reauths())
	}
	if rec.count("lookup-self", second) < 1 || rec.count("renew-self", second) < 1 {
		t.Fatalf("for the new token: lookup-self=%d renew-self=%d, want each >= 1", rec.count("lookup-self", second), rec.count("renew-self", second))
	}
	info := lookup(t, second)
	if !info.valid || !info.lastRenewal || !info.expire.After(originalExpiry) {
		t.Fatalf("Vault says about the new token: %+v; want it renewed past %v", info, originalExpiry)
	}
	mustNotContain(t, logs, first, second, dev.Token)
}

// A failed renewal is logged (without the token) and retried with a
// growing delay; the token survives its original TTL.
func TestTokenRenewalRetriedAfterFailure(t *testing.T) {
	needDev(t)
	putV2(t, "renew/retry", map[string]any{"v": "ok"})
	const ttl = 5 * time.Second
	tok := createToken(t, "5s", true)
	originalExpiry := time.Now().Add(ttl)
	rec := newRecorder(t, 2) // the first two renewals answer 503
	c, logs := newLoggedClient(t, tokenStore(rec.srv.URL, writeToken(t, "", tok)))
	c.retryBase = 100 * time.Millisecond // before the renewer starts

	if _, err := c.Get(context.Background(), providers.Ref{Key: "renew/retry"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a renewal succeeded after the refusals", func() bool {
		return c.Renewals() >= 1
	})
	readFor(t, c, "renew/retry", time.Until(originalExpiry)+time.Second)

	if n := rec.count("renew-self", tok); n < 3 {
		t.Fatalf("renew-self reached the proxy %d times, want >= 3 (2 refused, then renewed)", n)
	}
	failed := logs.Matching("renewal failed")
	if len(failed) != 2 || !strings.Contains(failed[0], `"attempt"=1`) || !strings.Contains(failed[1], `"attempt"=2`) ||
		!strings.Contains(failed[0], `"retryIn"="100ms"`) || !strings.Contains(failed[1], `"retryIn"="200ms"`) {
		t.Fatalf("failure log lines = %q, want attempts 1 and 2 with retries after 100ms and 200ms", failed)
	}
	if !strings.Contains(failed[0], "503") {
		t.Fatalf("failure log line does not say what failed: %q", failed[0])
	}
	if info := lookup(t, tok); !info.valid || !info.expire.After(originalExpiry) {
		t.Fatalf("Vault says: %+v; want the token valid past %v", info, originalExpiry)
	}
	mustNotContain(t, logs, tok, dev.Token)
}

func TestRetryDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 8 * time.Second, 6: time.Minute, 100: time.Minute} {
		if got := retryDelay(renewRetry, n); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

// renewers counts the goroutines running a renewLoop.
func renewers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "(*Client).renewLoop")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Close stops the renewer, whichever state it is in: waiting for a
// renewal, idle (a token without TTL), or an AppRole renewer.
func TestCloseStopsRenewer(t *testing.T) {
	needDev(t)
	putV2(t, "renew/close", map[string]any{"v": "ok"})
	roleID, secretID := setupAppRole(t, "close", map[string]any{"token_ttl": "1h"})
	tests := []struct {
		name  string
		store func(t *testing.T) *v1alpha1.SecretStore
	}{
		{"renewable token", func(t *testing.T) *v1alpha1.SecretStore {
			return tokenStore(dev.Address, writeToken(t, "", createToken(t, "1h", true)))
		}},
		{"root token (idle renewer)", func(t *testing.T) *v1alpha1.SecretStore {
			return tokenStore(dev.Address, writeToken(t, "", dev.Token))
		}},
		{"approle", func(t *testing.T) *v1alpha1.SecretStore { return appRoleStore(t, roleID, secretID) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := renewers()
			c, err := New().NewClient(context.Background(), tc.store(t))
			if err != nil {
				t.Fatal(err)
			}
			if n := renewers(); n != before {
				t.Fatalf("NewClient started %d renewers: it must not contact Vault", n-before)
			}
			if _, err := c.Get(context.Background(), providers.Ref{Key: "renew/close"}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the renewer runs", func() bool { return renewers() == before+1 })
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if n := renewers(); n != before {
				t.Fatalf("%d renewers after Close, want %d", n, before)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}
