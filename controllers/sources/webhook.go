package sources

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// RefreshPath is where the webhook listens.
const RefreshPath = "/v1/refresh"

// maxWebhookBody bounds a refresh request: it names a store and a key, a few
// hundred bytes at most; anything larger is refused unread.
const maxWebhookBody = 4 << 10

// RefreshFunc is called for an authenticated refresh request. It reports
// whether the store is known; when it is, it has already enqueued the key.
type RefreshFunc func(store, key string) (known bool)

// refreshRequest is the JSON body of POST /v1/refresh.
type refreshRequest struct {
	Store string `json:"store"`
	Key   string `json:"key"`
}

type webhook struct {
	tokenSum [sha256.Size]byte
	refresh  RefreshFunc
	log      logr.Logger
}

// NewWebhookHandler serves POST /v1/refresh: a secret store (or the CI job
// that wrote to it) says "store S, key K changed" and the key is fetched now
// instead of at its next poll — the guide's "use webhooks instead of
// polling". The request carries `Authorization: Bearer <token>`; store and
// key come as JSON {"store":..,"key":..} or as query parameters. Answers: 202
// accepted, 400 missing or malformed fields, 401 bad or missing token, 404
// unknown store, 405 wrong method, 413 body over 4 KiB. The token is never
// logged.
func NewWebhookHandler(token string, refresh RefreshFunc, log logr.Logger) (http.Handler, error) {
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("webhook token is empty: set a bearer token for the webhook (fromEnv or fromFile) or disable the webhook")
	}
	if refresh == nil {
		return nil, errors.New("webhook needs a refresh callback")
	}
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	mux := http.NewServeMux()
	h := &webhook{tokenSum: sha256.Sum256([]byte(token)), refresh: refresh, log: log.WithValues("source", "webhook")}
	mux.Handle(RefreshPath, h)
	return mux, nil
}

// authorized compares the bearer token in constant time. Both sides are
// hashed first so that the comparison also takes the same time whatever the
// length of the presented token.
func (h *webhook) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], h.tokenSum[:]) == 1
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	// Authenticate before reading anything, so an unauthenticated caller
	// learns nothing about stores.
	if !h.authorized(r) {
		h.log.Info("refresh refused: missing or wrong bearer token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dso"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if r.ContentLength > maxWebhookBody {
		httpError(w, http.StatusRequestEntityTooLarge, "request body over 4 KiB")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "request body over 4 KiB")
			return
		}
		httpError(w, http.StatusBadRequest, "cannot read the request body")
		return
	}
	q := r.URL.Query()
	req := refreshRequest{Store: q.Get("store"), Key: q.Get("key")}
	// Query parameters win; the body is parsed only for what they lack, so
	// a sender whose payload has its own shape can still use ?store=&key=.
	if (req.Store == "" || req.Key == "") && len(strings.TrimSpace(string(body))) > 0 {
		var b refreshRequest
		if err := json.Unmarshal(body, &b); err != nil {
			httpError(w, http.StatusBadRequest, `the body is not JSON of the form {"store":"...","key":"..."}`)
			return
		}
		if req.Store == "" {
			req.Store = b.Store
		}
		if req.Key == "" {
			req.Key = b.Key
		}
	}
	if req.Store == "" || req.Key == "" {
		httpError(w, http.StatusBadRequest, `name both "store" and "key" (JSON body or query parameters)`)
		return
	}
	if !h.refresh(req.Store, req.Key) {
		h.log.Info("refresh refused: unknown store", "store", req.Store)
		httpError(w, http.StatusNotFound, fmt.Sprintf("no SecretStore named %q", req.Store))
		return
	}
	h.log.Info("refresh requested by webhook", "store", req.Store, "key", req.Key)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"accepted"}`+"\n")
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}

// ListenAndServe serves h on addr until ctx ends, then shuts down
// gracefully (in-flight requests get 5s). It returns nil after a graceful
// stop and an error naming addr when it cannot listen.
func ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webhook: cannot listen on %s (is agent.watch.webhook's address free?): %w", addr, err)
	}
	return Serve(ctx, ln, h)
}

// Serve is ListenAndServe on an existing listener (tests use 127.0.0.1:0).
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("webhook server on %s stopped: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("webhook server on %s did not stop gracefully: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook server on %s: %w", ln.Addr(), err)
	}
	return nil
}
