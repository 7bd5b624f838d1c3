package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClientServerOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "dso.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v (%v), want 0660", st.Mode().Perm(), err)
	}
	mux := http.NewServeMux()
	var peer Peer
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		peer, _ = PeerFrom(r.Context())
		WriteJSON(w, 200, Status{Runtime: Runtime{Version: "v9", PID: 42}})
	})
	mux.HandleFunc("GET /v1/bindings/{name}", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, 404, "binding "+r.PathValue("name")+" not found")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, mux) }()
	defer func() { cancel(); <-done }()

	c := NewClient(sock)
	s, err := c.Status(context.Background())
	if err != nil || s.Runtime.Version != "v9" {
		t.Fatalf("status = %+v, %v", s, err)
	}
	if peer.PID != os.Getpid() || peer.UID != os.Getuid() {
		t.Errorf("peer = %+v, want this process", peer)
	}
	_, err = c.Binding(context.Background(), "nope")
	if !IsNotFound(err) || !strings.Contains(err.Error(), "binding nope not found") {
		t.Errorf("err = %v", err)
	}
	// A second agent on the same socket is refused.
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestAgentDown(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "missing.sock"))
	_, err := c.Status(context.Background())
	if !errors.Is(err, ErrAgentDown) || !strings.Contains(err.Error(), "docker dso system enable") {
		t.Fatalf("err = %v", err)
	}
	if err := c.Ping(context.Background(), time.Second); !errors.Is(err, ErrAgentDown) {
		t.Fatalf("ping err = %v", err)
	}
}

func TestAllowed(t *testing.T) {
	self := os.Getpid() // any pid whose /proc/PID/status we can read
	for _, tc := range []struct {
		name string
		p    Peer
		dso  int
		want bool
	}{
		{"root", Peer{UID: 0, PID: self}, -1, true},
		{"agent's own uid", Peer{UID: 1234, PID: self}, -1, true},
		{"stranger, no dso group", Peer{UID: 999, GID: 999, PID: self}, -1, false},
		{"stranger, primary group dso", Peer{UID: 999, GID: 4242, PID: self}, 4242, true},
		{"stranger, not in dso", Peer{UID: 999, GID: 999, PID: self}, 4242, false},
	} {
		if got := Allowed(tc.p, 1234, tc.dso); got != tc.want {
			t.Errorf("%s: Allowed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAuthorizeRejectsWithoutPeer(t *testing.T) {
	h := Authorize(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, (&http.Request{Method: "GET"}).WithContext(context.Background()))
	if rec.code != http.StatusForbidden || !strings.Contains(rec.body.String(), "add your user to the dso group") {
		t.Fatalf("code %d body %q", rec.code, rec.body.String())
	}
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(c int)           { r.code = c }
