//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestComposeUpBeforeAgentTmpfs: a compose file declares the live mount
// (docs/delivery.md), but `docker-compose up` ran before the agent had its
// tmpfs, so Docker bind-mounted an on-disk directory the tmpfs then hid.
// The path matches, yet the container can never see a file the agent
// writes: the agent must notice (it compares what the container sees with
// the tmpfs, not path strings) and converge it by one swap, after which
// the app reads the value.
func TestComposeUpBeforeAgentTmpfs(t *testing.T) {
	const filePath = composeFilePath
	h, ctx, p, a, v1 := startComposeFileAgent(t, "compose-late")
	// Take the agent and its tmpfs away, as on a host where compose
	// started first.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	for unix.Unmount(a.DeliveryDir, unix.MNT_DETACH) == nil {
	}
	name := p.containerName("web", 1)
	live := filepath.Join(a.DeliveryDir, name, "live", "run__dso-e2e")
	p.write(t, live+":"+filepath.Dir(filePath)+":ro")
	p.up(t, ctx)
	oldID := p.webID(t, ctx)
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("docker did not create the on-disk %s for the bind: %v", live, err)
	}

	from := a.LogLen()
	a.Start() // mounts a fresh tmpfs over the delivery dir
	_, line, err := a.WaitLog(from, func(l framework.LogLine) bool {
		return l.Str("container") == name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
	}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if line.Msg() != "rotation complete" || line.Str("in_place") == "true" {
		t.Fatalf("first delivery: %s (in_place %q, reason %q); want one swap, since the container cannot see the live dir",
			line.Msg(), line.Str("in_place"), line.Str("reason"))
	}
	newID := p.webID(t, ctx)
	if newID == oldID {
		t.Fatal("the compose service still runs the container that cannot see the live dir")
	}
	if got, err := h.ExecGET(ctx, newID, "http://127.0.0.1:8080/file?path="+filePath); err != nil || got != sha(v1) {
		t.Fatalf("/file after the swap = %q, %v; want the value's hash", got, err)
	}
	if got := runContainers(t, ctx, h); len(got) != 1 {
		t.Errorf("the run has containers %v, want only %s", keys(got), name)
	}
	assertNoPlaintext(t, a, v1)
	p.down(t, ctx)
}

// TestComposeMismatchedLiveMount: the compose file declares a live mount
// under the wrong container name (Compose v2's spelling on v1, a typo, a
// --scale replica). It is not the live dir, so the container is converged
// by one swap, and that swap must not fail on the bind the compose file
// put at the secret directory ("Duplicate mount point").
func TestComposeMismatchedLiveMount(t *testing.T) {
	const binding, filePath = "compose-mismatch", composeFilePath
	h, ctx, p, a, v1 := startComposeFileAgent(t, binding)
	name := p.containerName("web", 1)
	wrong := filepath.Join(a.DeliveryDir, name+"-typo", "live", "run__dso-e2e")
	p.write(t, wrong+":"+filepath.Dir(filePath)+":ro")
	from := a.LogLen()
	p.up(t, ctx) // the running agent may swap it at once: ids come from history
	_, line, err := a.WaitLog(from, func(l framework.LogLine) bool {
		return l.Str("container") == name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
	}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if line.Msg() != "rotation complete" || line.Str("in_place") == "true" {
		t.Fatalf("first delivery: %s (in_place %q, reason %q); want one successful swap", line.Msg(), line.Str("in_place"), line.Str("reason"))
	}
	newID := p.webID(t, ctx)
	recs := history(t, a, binding)
	if len(recs) != 1 || recs[0].Result != "succeeded" || recs[0].OldID == recs[0].NewID || recs[0].NewID != newID {
		t.Fatalf("history %+v; want one succeeded swap to the container compose now lists (%.12s)", recs, newID)
	}
	if got, err := h.ExecGET(ctx, newID, "http://127.0.0.1:8080/file?path="+filePath); err != nil || got != sha(v1) {
		t.Fatalf("/file after the swap = %q, %v; want the value's hash", got, err)
	}
	p.down(t, ctx)
}

// composeFilePath is where the file-only bindings of these tests deliver.
const composeFilePath = "/run/dso-e2e/token"

// startComposeFileAgent makes a compose project (not up yet) and an agent
// with one file-only binding (strategy auto) of a fresh value to the
// project's web service.
func startComposeFileAgent(t *testing.T, binding string) (*framework.Harness, context.Context, *composeProject, *framework.Agent, string) {
	t.Helper()
	h := framework.New(t)
	ctx := newCtx(t, 5*time.Minute)
	v1 := randomValue(t)
	p := newComposeProject(t, h)
	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/file": v1},
		Bindings: []string{bindingYAML(binding, p.selector(), `- remoteRef: {key: app/file}
  file: {path: `+composeFilePath+`, mode: "0444"}`, "strategy: auto")},
	})
	return h, ctx, p, a, v1
}
