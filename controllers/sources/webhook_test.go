package sources

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

const testToken = "s3cr3t-webhook-token-value"

type refreshLog struct {
	mu    sync.Mutex
	calls []string
}

func (r *refreshLog) refresh(store, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, store+"/"+key)
	return store == "vault"
}

func TestWebhookHandler(t *testing.T) {
	big := `{"store":"vault","key":"` + strings.Repeat("k", 5000) + `"}`
	tests := []struct {
		name, method, target, auth, body string
		chunked                          bool // hide the length so the limit must be enforced while reading
		want                             int
		wantCall                         string
	}{
		{name: "json body accepted", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken,
			body: `{"store":"vault","key":"db/password"}`, want: 202, wantCall: "vault/db/password"},
		{name: "query params accepted", method: "POST", target: "/v1/refresh?store=vault&key=api", auth: "Bearer " + testToken,
			want: 202, wantCall: "vault/api"},
		{name: "query params win over a foreign payload", method: "POST", target: "/v1/refresh?store=vault&key=api",
			auth: "bearer " + testToken, body: `<xml/>`, want: 202, wantCall: "vault/api"},
		{name: "body fills what the query lacks", method: "POST", target: "/v1/refresh?store=vault", auth: "Bearer " + testToken,
			body: `{"key":"tls","extra":1}`, want: 202, wantCall: "vault/tls"},
		{name: "missing token", method: "POST", target: "/v1/refresh", body: `{"store":"vault","key":"a"}`, want: 401},
		{name: "wrong token", method: "POST", target: "/v1/refresh", auth: "Bearer nope", body: `{"store":"vault","key":"a"}`, want: 401},
		{name: "token prefix only", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken[:5], body: `{"store":"vault","key":"a"}`, want: 401},
		{name: "basic auth is not a bearer token", method: "POST", target: "/v1/refresh", auth: "Basic " + testToken, body: `{"store":"vault","key":"a"}`, want: 401},
		{name: "unauthenticated unknown store still 401", method: "POST", target: "/v1/refresh?store=nope&key=a", want: 401},
		{name: "missing key", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken, body: `{"store":"vault"}`, want: 400},
		{name: "empty request", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken, want: 400},
		{name: "malformed json", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken, body: `{"store":`, want: 400},
		{name: "unknown store", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken,
			body: `{"store":"aws-prod","key":"a"}`, want: 404, wantCall: "aws-prod/a"},
		{name: "body over 4 KiB with length", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken, body: big, want: 413},
		{name: "body over 4 KiB chunked", method: "POST", target: "/v1/refresh", auth: "Bearer " + testToken, body: big, chunked: true, want: 413},
		{name: "GET not allowed", method: "GET", target: "/v1/refresh?store=vault&key=a", auth: "Bearer " + testToken, want: 405},
		{name: "other path", method: "POST", target: "/v1/other", auth: "Bearer " + testToken, want: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			var logMu sync.Mutex
			log := funcr.New(func(p, a string) { logMu.Lock(); defer logMu.Unlock(); logs.WriteString(p + a + "\n") }, funcr.Options{Verbosity: 10})
			rl := &refreshLog{}
			h, err := NewWebhookHandler(testToken, rl.refresh, log)
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(tc.body)) // not a *strings.Reader: length unknown
			}
			req := httptest.NewRequest(tc.method, tc.target, body)
			if tc.chunked {
				req.ContentLength = -1
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
			}
			rl.mu.Lock()
			calls := strings.Join(rl.calls, ",")
			rl.mu.Unlock()
			if calls != tc.wantCall {
				t.Fatalf("refresh calls = %q, want %q", calls, tc.wantCall)
			}
			if tc.want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			logMu.Lock()
			defer logMu.Unlock()
			for _, secret := range []string{testToken, testToken[:5], "nope"} {
				if strings.Contains(logs.String(), secret) || strings.Contains(rec.Body.String(), secret) {
					t.Fatalf("token %q leaked into logs or response: logs=%q body=%q", secret, logs.String(), rec.Body.String())
				}
			}
		})
	}
}

func TestNewWebhookHandlerRefusesEmptyToken(t *testing.T) {
	for _, tok := range []string{"", "  "} {
		if _, err := NewWebhookHandler(tok, func(string, string) bool { return true }, funcr.New(func(string, string) {}, funcr.Options{})); err == nil {
			t.Errorf("token %q accepted, want an error", tok)
		}
	}
}

func TestServeOnLoopbackAndStopGracefully(t *testing.T) {
	rl := &refreshLog{}
	h, err := NewWebhookHandler(testToken, rl.refresh, funcr.New(func(string, string) {}, funcr.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h) }()

	req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/v1/refresh", ln.Addr()), strings.NewReader(`{"store":"vault","key":"db"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want 202", resp.StatusCode)
	}

	// The address is taken now: ListenAndServe must say so.
	if err := ListenAndServe(context.Background(), ln.Addr().String(), h); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("ListenAndServe on a busy address = %v, want a listen error", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a graceful stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
