//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// faultPoints are the crash points of the faultinject build, in swap order.
// For rolling, after-stop-old is the stop of the old container at cleanup;
// for recreate it is the stop before the candidate starts.
var faultPoints = []string{
	"after-create", "after-stop-old", "after-start", "after-health",
	"after-rename-old", "after-rename-candidate", "after-remove-old",
}

// TestAgentCrashMatrix is acceptance 6: for every crash point of rolling
// and of recreate, the agent (the faultinject build) is SIGKILLed there
// during a rotation, then started again without the fault. Afterwards there
// is exactly one container under the target's name, running and serving the
// NEW value, no leftover candidate, the target's anonymous volume is still
// the one mounted (and still exists), and a decoy named
// <target>_dso_backup_1 that dso did not create is untouched.
//
// The cases run one after the other, not in parallel: an agent's recovery
// is host-wide and would finish or revert the other cases' swaps (see
// agent_helpers_test.go).
func TestAgentCrashMatrix(t *testing.T) {
	faultBin := framework.BinFromEnv(t, "DSO_FAULT_BIN")
	start := time.Now()
	ran := 0
	for _, strategy := range []string{"rolling", "recreate"} {
		for _, point := range faultPoints {
			t.Run(strategy+"/"+point, func(t *testing.T) {
				ran++
				crashCase(t, faultBin, strategy, point)
			})
		}
	}
	t.Logf("crash matrix: %d cases in %s", ran, time.Since(start).Round(time.Millisecond))
}

func crashCase(t *testing.T, faultBin, strategy, point string) {
	volumes := framework.RemoveVolumesAtEnd(t) // before New: runs after the containers are gone
	h := framework.New(t)
	trackRunVolumes(t, h, volumes)
	ctx := newCtx(t, 3*time.Minute)
	app := h.RunID + "-crash"
	v1, v2 := randomValue(t), randomValue(t)

	// `docker run -v /data` (Config.Volumes): an anonymous volume the swap
	// must re-mount by name. The --mount form is TestAgentKeepsAnonymousVolumes'.
	cfg := &container.Config{Labels: map[string]string{labelApp: app}, Volumes: map[string]struct{}{"/data": {}}}
	hc := &container.HostConfig{}
	var addr string
	if strategy == "recreate" {
		port := strconv.Itoa(freeLoopbackPort(t))
		addr = net.JoinHostPort("127.0.0.1", port)
		cfg.ExposedPorts = nat.PortSet{framework.TestappPort: {}}
		hc.PortBindings = nat.PortMap{framework.TestappPort: {{HostIP: "127.0.0.1", HostPort: port}}}
	}
	orig := h.RunRaw(t, ctx, "web", cfg, hc, nil, false)
	info, err := h.Docker.ContainerInspect(ctx, orig.ID)
	if err != nil {
		t.Fatal(err)
	}
	vol := volumeAt(info, "/data")
	if vol == "" {
		t.Fatalf("the target has no anonymous volume at /data: %+v", info.Mounts)
	}
	*volumes = append(*volumes, vol) // removed at the end even if a swap orphaned it

	// The decoy looks like the older DSO's backup naming and carries the
	// run labels (so cleanup removes it), but no binding selects it.
	decoyName := orig.Name + "_dso_backup_1"
	decoy, err := h.Docker.ContainerCreate(ctx, &container.Config{Image: h.Image, Labels: h.Labels(nil)}, nil, nil, nil, decoyName)
	if err != nil {
		t.Fatalf("creating the decoy: %v", err)
	}
	if err := h.Docker.ContainerStart(ctx, decoy.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting the decoy: %v", err)
	}

	a := framework.StartAgent(t, h, framework.AgentOptions{
		Bin:     faultBin,
		Secrets: map[string]string{"app/token": v1},
		Bindings: []string{bindingYAML("crash", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: "+strategy)},
	})
	if _, _, err := a.WaitLog(0, isRotation("rotation complete", orig.Name), time.Minute); err != nil {
		t.Fatal(err)
	}
	waitReplaced(t, ctx, h, orig.Name, orig.ID, 30*time.Second)
	if err := a.Stop(); err != nil {
		t.Fatalf("stopping the agent: %v", err)
	}

	// The faulty run: change the secret, the agent kills itself at point.
	a.StartWithEnv([]string{"DSO_FAULT=" + point})
	crashFrom := a.LogLen()
	a.SetSecret("app/token", v2)
	ws, err := a.WaitExit(time.Minute)
	if err != nil {
		t.Fatalf("the agent did not die at %s: %v; log tail:\n%s", point, err, a.LogTail(20))
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the agent ended with %v, want SIGKILL from the fault hook at %s", ws, point)
	}
	if a.CountLog(crashFrom, func(l framework.LogLine) bool {
		return strings.HasPrefix(l.Msg(), "fault injection") && l.Str("point") == point
	}) != 1 {
		t.Fatalf("no fault injection line for %s before the agent died", point)
	}
	crashed := describeRun(t, ctx, h)

	// The recovering run, without the fault.
	recoverFrom := a.LogLen()
	a.StartWithEnv(nil)
	final := waitCrashConverged(t, ctx, h, a, orig.Name, decoyName, addr, v2, time.Minute)

	if final.ID == orig.ID {
		t.Error("the target is still the original container")
	}
	if got := volumeAt(final, "/data"); got != vol {
		t.Errorf("the target mounts volume %q at /data, want the original anonymous volume %s", got, vol)
	}
	if _, err := h.Docker.VolumeInspect(ctx, vol); err != nil {
		t.Errorf("the target's volume %s is gone: %v", vol, err)
	}
	d, err := inspectName(ctx, h, decoyName)
	if err != nil || d.ID != decoy.ID || !d.State.Running {
		t.Errorf("the decoy %s was touched: %v (same id: %v)", decoyName, err, err == nil && d.ID == decoy.ID)
	}
	var recovery []string
	for _, l := range a.Logs()[recoverFrom:] {
		if strings.HasPrefix(l.Msg(), "Automatic recovery") {
			recovery = append(recovery, l.Msg())
		}
	}
	t.Logf("%s/%s: after the crash: %s", strategy, point, crashed)
	t.Logf("%s/%s: recovery lines: %q", strategy, point, recovery)
	assertNoPlaintext(t, a, v1, v2)
}

func volumeAt(c container.InspectResponse, dest string) string {
	for _, m := range c.Mounts {
		if m.Destination == dest && m.Type == mount.TypeVolume {
			return m.Name
		}
	}
	return ""
}

// describeRun summarises the run's containers for the log: name, state,
// and whether dso marked it as a candidate.
func describeRun(t *testing.T, ctx context.Context, h *framework.Harness) string {
	var parts []string
	for name, c := range runContainers(t, ctx, h) {
		role := ""
		if tn := c.Labels[labelTargetName]; tn != "" && tn != name {
			role = " candidate"
		}
		parts = append(parts, fmt.Sprintf("%s=%s%s", strings.TrimPrefix(name, h.Name("")), c.State, role))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// waitCrashConverged waits until the run holds exactly the target (under its
// name, running, serving the new value, no candidate of it under another
// name) and the decoy, and returns the target's inspect data.
func waitCrashConverged(t *testing.T, ctx context.Context, h *framework.Harness, a *framework.Agent, target, decoy, addr, value string, timeout time.Duration) container.InspectResponse {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		last = crashState(ctx, t, h, target, decoy, addr, value)
		if last == "" {
			// Stable: checked twice, 1s apart, so a rotation still in
			// flight cannot pass as converged.
			time.Sleep(time.Second)
			if last = crashState(ctx, t, h, target, decoy, addr, value); last == "" {
				c, err := inspectName(ctx, h, target)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged within %s after the restart: %s; containers: %s", timeout, last, describeRun(t, ctx, h))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// crashState returns "" when the run is converged, else what is wrong.
func crashState(ctx context.Context, t *testing.T, h *framework.Harness, target, decoy, addr, value string) string {
	cs := runContainers(t, ctx, h)
	for name, c := range cs {
		if name != target && name != decoy {
			return fmt.Sprintf("extra container %s (%s, target-name %q)", name, c.State, c.Labels[labelTargetName])
		}
	}
	c, ok := cs[target]
	switch {
	case !ok:
		return "no container under the target's name"
	case c.State != "running":
		return "target is " + c.State
	case cs[decoy].ID == "":
		return "the decoy is gone"
	}
	var got string
	var err error
	if addr != "" {
		var code int
		code, got, err = framework.GET(ctx, addr, "/env/TOKEN")
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
	} else {
		got, err = h.ExecGET(ctx, c.ID, "http://127.0.0.1:8080/env/TOKEN")
	}
	if err != nil {
		return fmt.Sprintf("target does not answer: %v", err)
	}
	if got != sha(value) {
		return "target serves another value than the new one"
	}
	return ""
}
