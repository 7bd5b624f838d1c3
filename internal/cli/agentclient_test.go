package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/api"
)

// fixedNow is the clock of every operator-command golden file.
var fixedNow = time.Date(2025, 5, 12, 10, 0, 0, 0, time.UTC)

// fakeAgent is an api.Serve on a unix socket with handlers returning
// fixtures: it tests the CLI side of the agent contract. The real agent's
// answers are covered by the e2e tests.
type fakeAgent struct {
	mux    *http.ServeMux
	socket string
	// config is a config file whose agent.api.socket is the fake's socket.
	config string
	dir    string
}

// newFakeAgent writes a config pointing at a socket and, when serve is
// true, serves mux on it. Without serve the socket does not exist: that is
// "the agent is down".
func newFakeAgent(t *testing.T, serve bool) *fakeAgent {
	t.Helper()
	dir := isolate(t)
	prev := now
	now = func() time.Time { return fixedNow }
	t.Cleanup(func() { now = prev })
	// A unix socket path is limited to 108 bytes; t.TempDir() under a long
	// test name can exceed that, so the socket lives in a short directory.
	sockDir, err := os.MkdirTemp("", "dsocli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	fa := &fakeAgent{mux: http.NewServeMux(), socket: filepath.Join(sockDir, "dso.sock"), dir: dir}
	fa.config = filepath.Join(dir, "dso.yaml")
	cfg := fmt.Sprintf(`agent:
  api:
    socket: %s
  delivery:
    dir: %s
state:
  dir: %s
bindings:
  dirs: [%s]
`, fa.socket, filepath.Join(dir, "secrets"), filepath.Join(dir, "state"), filepath.Join(dir, "bindings.d"))
	if err := os.WriteFile(fa.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if !serve {
		return fa
	}
	ln, err := api.Listen(fa.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, fa.mux) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fake agent: %v", err)
		}
	})
	return fa
}

// handle registers a handler answering v as JSON.
func (fa *fakeAgent) handle(pattern string, v any) {
	fa.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) { api.WriteJSON(w, http.StatusOK, v) })
}

// run runs the command tree with --config pointing at the fake agent.
func (fa *fakeAgent) run(t *testing.T, args ...string) result {
	t.Helper()
	argv := append([]string{"dso", "--config", fa.config}, args...)
	return run(t, nil, "", argv...)
}

// Every command that needs the agent says so clearly when it is down, and
// exits 1.
func TestAgentDownEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"status"},
		{"status", "--json"},
		{"get", "stores"},
		{"get", "bindings"},
		{"get", "bindings", "api-db"},
		{"describe", "binding", "api-db"},
		{"delete", "binding", "api-db"},
		{"rotate", "api-db"},
		{"history"},
		{"history", "api-db", "-o", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			fa := newFakeAgent(t, false)
			r := fa.run(t, args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			want := "Error: " + api.ErrAgentDown.Error() + " (nothing answers on " + fa.socket + ")"
			if !strings.HasPrefix(r.err, want) || !strings.Contains(r.err, "docker dso system enable") {
				t.Errorf("stderr = %q, want it to start with %q and say how to start the agent", r.err, want)
			}
			if r.out != "" {
				t.Errorf("stdout = %q, want nothing", r.out)
			}
		})
	}
}
