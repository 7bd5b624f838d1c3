//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestAgentRecreateWithPublishedPort is acceptance 3, first half: a target
// that publishes a fixed 127.0.0.1 port is rotated by recreate (auto picks
// it: two containers cannot bind one host port), and after the rotation the
// same port answers with the new value.
func TestAgentRecreateWithPublishedPort(t *testing.T) {
	h := framework.New(t)
	ctx := newCtx(t, 3*time.Minute)
	app := h.RunID + "-recreate"
	v1, v2 := randomValue(t), randomValue(t)
	port := freeLoopbackPort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	orig := h.RunRaw(t, ctx, "pub",
		&container.Config{Labels: map[string]string{labelApp: app}, ExposedPorts: nat.PortSet{framework.TestappPort: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{framework.TestappPort: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}}},
		nil, false)

	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/token": v1},
		Bindings: []string{bindingYAML("recreate", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: auto")},
	})
	_, line, err := a.WaitLog(0, isRotation("rotation complete", orig.Name), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if line.Str("strategy") != "recreate" {
		t.Errorf("auto strategy on a published port resolved to %q, want recreate", line.Str("strategy"))
	}
	first := waitReplaced(t, ctx, h, orig.Name, orig.ID, 30*time.Second)
	if got := mustGET(t, ctx, addr, "/env/TOKEN", 200); got != sha(v1) {
		t.Fatalf("port %d serves %s after convergence, want the first value's hash", port, got)
	}

	from := a.LogLen()
	a.SetSecret("app/token", v2)
	if _, line, err = a.WaitLog(from, func(l framework.LogLine) bool {
		return l.Str("container") == orig.Name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
	}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if line.Msg() != "rotation complete" || line.Str("strategy") != "recreate" {
		t.Fatalf("second rotation: %s (strategy %s, reason %q)", line.Msg(), line.Str("strategy"), line.Str("reason"))
	}
	second := waitReplaced(t, ctx, h, orig.Name, first.ID, 30*time.Second)
	if got := mustGET(t, ctx, addr, "/env/TOKEN", 200); got != sha(v2) {
		t.Fatalf("port %d serves %s after the rotation, want the new value's hash", port, got)
	}
	if b := second.HostConfig.PortBindings[framework.TestappPort]; len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != strconv.Itoa(port) {
		t.Errorf("the recreated container binds %v, want exactly 127.0.0.1:%d", b, port)
	}
	if n := len(runContainers(t, ctx, h)); n != 1 {
		t.Errorf("the run has %d containers after the rotation, want 1", n)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestAgentFileOnlyStrategies is acceptance 3, second half: for bindings
// that deliver files only, a changed value is rewritten in place under the
// existing mount and the container is left alone (none), signalled
// (signal: the app's SIGHUP counter goes up and it re-read the file) or
// restarted (restart) — always the same container id.
func TestAgentFileOnlyStrategies(t *testing.T) {
	const path = "/run/dso-e2e/token"
	tests := []struct {
		strategy     string
		wantSighups  int  // added to the count before the change
		wantRestart  bool // StartedAt changes
		checkReloads bool // /sighup's file hash is the new value's
	}{
		{strategy: "none"},
		{strategy: "signal", wantSighups: 1, checkReloads: true},
		{strategy: "restart", wantRestart: true},
	}
	for _, tt := range tests {
		// Not parallel: agents share the host (see agent_helpers_test.go).
		t.Run(tt.strategy, func(t *testing.T) {
			h := framework.New(t)
			ctx := newCtx(t, 3*time.Minute)
			app := h.RunID + "-" + tt.strategy
			v1, v2 := randomValue(t), randomValue(t)
			orig := h.Run(t, ctx, framework.ContainerSpec{Name: tt.strategy, Labels: map[string]string{labelApp: app},
				Env: []string{"TESTAPP_WATCH_FILES=" + path}})
			a := framework.StartAgent(t, h, framework.AgentOptions{
				Secrets: map[string]string{"app/file": v1},
				Bindings: []string{bindingYAML("files", labelSelector(app), `- remoteRef: {key: app/file}
  file: {path: `+path+`, mode: "0444"}`, "strategy: "+tt.strategy)},
			})
			// The container dso did not create needs one swap to get the mount.
			if _, _, err := a.WaitLog(0, isRotation("rotation complete", orig.Name), time.Minute); err != nil {
				t.Fatal(err)
			}
			before := waitReplaced(t, ctx, h, orig.Name, orig.ID, 30*time.Second)
			if got, err := h.ExecGET(ctx, before.ID, "http://127.0.0.1:8080/file?path="+path); err != nil || got != sha(v1) {
				t.Fatalf("/file before the change = %q, %v; want the first value's hash", got, err)
			}
			sighupsBefore := sighups(t, ctx, h, before.ID)

			from := a.LogLen()
			a.SetSecret("app/file", v2)
			_, line, err := a.WaitLog(from, func(l framework.LogLine) bool {
				return l.Str("container") == orig.Name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
			}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if line.Msg() != "rotation complete" {
				t.Fatalf("in-place rotation failed: %s", line.Str("reason"))
			}
			after, err := inspectName(ctx, h, orig.Name)
			if err != nil {
				t.Fatal(err)
			}
			if after.ID != before.ID {
				t.Fatalf("strategy %s made a new container (%s -> %s); want the same one", tt.strategy, before.ID[:12], after.ID[:12])
			}
			if got, err := h.ExecGET(ctx, after.ID, "http://127.0.0.1:8080/file?path="+path); err != nil || got != sha(v2) {
				t.Fatalf("/file after the change = %q, %v; want the new value's hash", got, err)
			}
			if restarted := after.State.StartedAt != before.State.StartedAt; restarted != tt.wantRestart {
				t.Errorf("restarted = %v (StartedAt %s -> %s), want %v", restarted, before.State.StartedAt, after.State.StartedAt, tt.wantRestart)
			}
			if !tt.wantRestart {
				s := sighups(t, ctx, h, after.ID)
				if s.Count != sighupsBefore.Count+tt.wantSighups {
					t.Errorf("SIGHUP count %d -> %d, want +%d", sighupsBefore.Count, s.Count, tt.wantSighups)
				}
				if tt.checkReloads && s.Files[path] != sha(v2) {
					t.Errorf("after SIGHUP the app holds %q for %s, want the new value's hash", s.Files[path], path)
				}
			}
			if n := len(runContainers(t, ctx, h)); n != 1 {
				t.Errorf("the run has %d containers, want 1", n)
			}
			assertNoPlaintext(t, a, v1, v2)
		})
	}
}

type sighupInfo struct {
	Count int               `json:"count"`
	Files map[string]string `json:"files"`
}

func sighups(t *testing.T, ctx context.Context, h *framework.Harness, id string) sighupInfo {
	t.Helper()
	body, err := h.ExecGET(ctx, id, "http://127.0.0.1:8080/sighup")
	if err != nil {
		t.Fatalf("GET /sighup: %v", err)
	}
	var s sighupInfo
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("/sighup answered %q: %v", body, err)
	}
	return s
}
