//go:build e2e

// Package e2e holds dso's black-box tests against a real Docker engine.
// They are behind the e2e build tag so that `go test ./...` needs no engine;
// `make test-e2e` runs them with DSO_STRICT=1, where a missing engine fails.
package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/dso-dev/dso/test/e2e/framework"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randomValue(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "v-" + hex.EncodeToString(b)
}

// mustGET fetches a path from a published loopback port and checks the status.
func mustGET(t *testing.T, ctx context.Context, addr, path string, wantCode int) string {
	t.Helper()
	code, body, err := framework.GET(ctx, addr, path)
	if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Fatalf("GET %s = %d (%q), want %d", path, code, body, wantCode)
	}
	return body
}

// TestTestappBecomesHealthy proves the test image does what later rotation
// tests rely on: Docker reports it healthy through its own HEALTHCHECK, it
// serves the hashes of the env var and the bind-mounted file it was given
// (and follows the file when it changes), and its failure switches really
// produce an unhealthy container and an exit code 3.
func TestTestappBecomesHealthy(t *testing.T) {
	h := framework.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	envValue, fileValue := randomValue(t), randomValue(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(file, []byte(fileValue), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory bind mount, not a file one: a file mount pins the inode,
	// so a rewrite by rename would never reach the container (DESIGN §5).
	c := h.Run(t, ctx, framework.ContainerSpec{
		Name:        "healthy",
		Env:         []string{"DSO_E2E_SECRET=" + envValue},
		Binds:       []string{dir + ":/run/dso-e2e:ro"},
		PublishHTTP: true,
	})
	start := time.Now()
	if err := h.WaitHealthy(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("healthy %v after start (HEALTHCHECK interval 1s)", time.Since(start).Round(time.Millisecond))

	if got := mustGET(t, ctx, c.HTTPAddr, "/env/DSO_E2E_SECRET", 200); got != sha(envValue) {
		t.Fatalf("/env hash = %s, want sha256 of the value set (%s)", got, sha(envValue))
	}
	mustGET(t, ctx, c.HTTPAddr, "/env/DSO_E2E_UNSET", 404)
	if got := mustGET(t, ctx, c.HTTPAddr, "/file?path=/run/dso-e2e/secret.txt", 200); got != sha(fileValue) {
		t.Fatalf("/file hash = %s, want sha256 of the file written (%s)", got, sha(fileValue))
	}
	mustGET(t, ctx, c.HTTPAddr, "/file?path=/run/dso-e2e/missing", 404)

	// Replace the file the way dso's delivery does (write aside, rename):
	// the container must see the new content on the next request.
	newValue := randomValue(t)
	tmp := filepath.Join(dir, ".secret.tmp")
	if err := os.WriteFile(tmp, []byte(newValue), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	if got := mustGET(t, ctx, c.HTTPAddr, "/file?path=/run/dso-e2e/secret.txt", 200); got != sha(newValue) {
		t.Fatalf("after the rename /file hash = %s, want %s", got, sha(newValue))
	}

	var v struct {
		Hostname string `json:"hostname"`
		PID      int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(mustGET(t, ctx, c.HTTPAddr, "/version", 200)), &v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ID, v.Hostname) || v.PID != 1 {
		t.Fatalf("/version = %+v, want the container's short id as hostname and pid 1", v)
	}

	// The in-container client, used for containers without published ports.
	if body, err := h.ExecGET(ctx, c.ID, "http://127.0.0.1:8080/healthz"); err != nil || body != "ok" {
		t.Fatalf("ExecGET healthz = %q, %v", body, err)
	}
	if _, err := h.ExecGET(ctx, c.ID, "http://127.0.0.1:8080/env/DSO_E2E_UNSET"); err == nil {
		t.Fatal("ExecGET of a 404 returned no error")
	}

	t.Run("switches", func(t *testing.T) {
		bad := randomValue(t)
		badFileDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(badFileDir, "cert"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			env   []string
			binds []string
			want  container.HealthStatus
		}{
			{name: "env has the bad hash", want: container.Unhealthy,
				env: []string{"PW=" + bad, "TESTAPP_UNHEALTHY_IF_ENV=PW:" + sha(bad)}},
			// The control case: same switch, other value, so the switch is
			// proven to compare rather than to fail unconditionally.
			{name: "env has a good value", want: container.Healthy,
				env: []string{"PW=" + randomValue(t), "TESTAPP_UNHEALTHY_IF_ENV=PW:" + sha(bad)}},
			{name: "file has the bad hash", want: container.Unhealthy,
				env:   []string{"TESTAPP_UNHEALTHY_IF_FILE=/run/dso-e2e/cert:" + sha(bad)},
				binds: []string{badFileDir + ":/run/dso-e2e:ro"}},
			{name: "always unhealthy", want: container.Unhealthy, env: []string{"TESTAPP_UNHEALTHY=1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				c := h.Run(t, ctx, framework.ContainerSpec{Name: "sw", Env: tt.env, Binds: tt.binds})
				if err := h.WaitHealth(ctx, c.ID, tt.want); err != nil {
					t.Fatal(err)
				}
				if tt.want == container.Unhealthy {
					if err := h.WaitHealthy(ctx, c.ID); err == nil || !strings.Contains(err.Error(), "unhealthy") {
						t.Fatalf("WaitHealthy on an unhealthy container = %v, want an unhealthy error", err)
					}
				}
			})
		}
	})

	t.Run("slow start", func(t *testing.T) {
		// 1500ms, not more: with the image's interval 1s and retries 2,
		// Docker declares a container unhealthy after ~2s of failing probes,
		// so a longer delay shows as starting -> unhealthy -> healthy.
		start := time.Now() // before create: the delay counts from process start
		c := h.Run(t, ctx, framework.ContainerSpec{Name: "slow", Env: []string{"TESTAPP_HEALTHY_AFTER=1500ms"}})
		if r, err := h.Exec(ctx, c.ID, "/testapp", "probe"); err != nil || r.ExitCode != 1 || !strings.Contains(r.Stderr, "starting") {
			t.Fatalf("probe right after start = %+v, %v; want exit 1 saying it is starting", r, err)
		}
		if err := h.WaitHealthy(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Fatalf("healthy after %v, before TESTAPP_HEALTHY_AFTER=1500ms", d)
		}
	})

	t.Run("exit on start", func(t *testing.T) {
		c := h.Run(t, ctx, framework.ContainerSpec{Name: "exit", Env: []string{"TESTAPP_EXIT_ON_START=1"}})
		code, err := h.WaitExit(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if code != 3 {
			t.Fatalf("exit code = %d, want 3", code)
		}
		if err := h.WaitHealthy(ctx, c.ID); err == nil || !strings.Contains(err.Error(), "exit code 3") {
			t.Fatalf("WaitHealthy on an exited container = %v, want an error naming exit code 3", err)
		}
	})
}

// TestCleanupRemovesOnlyItsRun proves a harness's cleanup removes its own
// containers and networks and nothing of another run.
func TestCleanupRemovesOnlyItsRun(t *testing.T) {
	other := framework.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bystander := other.Run(t, ctx, framework.ContainerSpec{Name: "bystander", Cmd: []string{"serve"}})

	var runID string
	t.Run("inner run", func(t *testing.T) {
		h := framework.New(t)
		runID = h.RunID
		net := h.Network(t, ctx, "net")
		h.Run(t, ctx, framework.ContainerSpec{Name: "a", Network: net, Aliases: []string{"web"}})
		h.Run(t, ctx, framework.ContainerSpec{Name: "b", NoStart: true})
	})

	f := filters.NewArgs(filters.Arg("label", framework.LabelRun+"="+runID))
	cs, err := other.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("%d containers of run %s survived its cleanup", len(cs), runID)
	}
	ns, err := other.Docker.NetworkList(ctx, networkListOptions(f))
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 0 {
		t.Fatalf("%d networks of run %s survived its cleanup", len(ns), runID)
	}
	if _, err := other.Docker.ContainerInspect(ctx, bystander.ID); err != nil {
		t.Fatalf("the other run's container was removed by this run's cleanup: %v", err)
	}
}
