package azure

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKV is an in-process fake of the Key Vault secrets REST protocol, served
// over TLS because the SDK refuses to send a token over http. A request
// without a bearer token gets the 401 challenge the real service sends, so
// the SDK's challenge policy runs for real.
type fakeKV struct {
	srv *httptest.Server

	mu         sync.Mutex
	versions   map[string][]fakeVersion // name -> versions, the last one is the latest
	challenges int                      // 401 challenges sent
	gets       int                      // authorised GET /secrets/... requests
	lists      int                      // authorised list requests
	tokens     map[string]bool          // bearer tokens seen
	forbidden  map[string]bool          // names answered 403
	// echo names answered 400 with a message that quotes the secret's
	// latest value, as a careless proxy or a future API might.
	echo map[string]bool
	// throttle answers the next N authorised requests with 429 (and
	// retryAfter, if set, as the Retry-After header).
	throttle   int
	retryAfter string
	// fail answers the next N authorised requests with 503.
	fail int
	// delay holds every authorised request this long (or until the client gives up).
	delay time.Duration
}

type fakeVersion struct {
	id      string
	value   string
	expires int64 // unix seconds, 0: none
}

func newFakeKV(t testing.TB) *fakeKV {
	f := &fakeKV{versions: map[string][]fakeVersion{}, tokens: map[string]bool{}, forbidden: map[string]bool{}, echo: map[string]bool{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKV) put(name, version, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[name] = append(f.versions[name], fakeVersion{id: version, value: value})
}

func (f *fakeKV) counts() (challenges, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.challenges, f.gets
}

func kvError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *fakeKV) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, 400, "MissingApiVersionParameter", "api-version is required")
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") {
		f.mu.Lock()
		f.challenges++
		f.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"`)
		kvError(w, 401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}

	f.mu.Lock()
	f.tokens[strings.TrimPrefix(auth, "Bearer ")] = true
	throttled := f.throttle > 0
	if throttled {
		f.throttle--
	}
	failing := !throttled && f.fail > 0
	if failing {
		f.fail--
	}
	ra, delay := f.retryAfter, f.delay
	path := strings.Trim(r.URL.Path, "/")
	if path == "secrets" {
		f.lists++
	} else {
		f.gets++
	}
	f.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if throttled {
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		kvError(w, 429, "Throttled", "Request was not processed because too many requests were received.")
		return
	}
	if failing {
		kvError(w, 503, "ServiceUnavailable", "try again")
		return
	}
	if r.Method != http.MethodGet {
		kvError(w, 405, "BadRequest", "only GET is served")
		return
	}

	parts := strings.Split(path, "/")
	if path == "secrets" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"value": []any{}, "nextLink": nil})
		return
	}
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "secrets" {
		kvError(w, 400, "BadParameter", "unexpected path")
		return
	}
	name, version := parts[1], ""
	if len(parts) == 3 {
		version = parts[2]
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forbidden[name] {
		kvError(w, 403, "Forbidden", "The user, group or application does not have secrets get permission on key vault.")
		return
	}
	vs := f.versions[name]
	if f.echo[name] && len(vs) > 0 {
		kvError(w, 400, "BadParameter", "cannot use value "+vs[len(vs)-1].value)
		return
	}
	var found *fakeVersion
	for i := range vs {
		if version == "" || vs[i].id == version {
			found = &vs[i] // without a version the last one wins: the latest
		}
	}
	if found == nil {
		kvError(w, 404, "SecretNotFound", "A secret with (name/id) "+name+" was not found in this key vault.")
		return
	}
	attrs := map[string]any{"enabled": true, "created": 1700000000, "updated": 1700000000, "recoveryLevel": "Recoverable+Purgeable"}
	if found.expires != 0 {
		attrs["exp"] = found.expires
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"value":      found.value,
		"id":         "https://" + r.Host + "/secrets/" + name + "/" + found.id,
		"attributes": attrs,
	})
}
