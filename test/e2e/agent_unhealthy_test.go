//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestAgentUnhealthyCandidateRollsBack is acceptance 4: the new value makes
// the app unhealthy (TESTAPP_UNHEALTHY_IF_ENV names the hash of the NEW
// value, so the value itself is in no container setting). The rotation
// fails, the same old container keeps serving the OLD value, the log says
// "rotation failed" with the health output, and the metrics count the
// rollback and mark the binding Degraded.
func TestAgentUnhealthyCandidateRollsBack(t *testing.T) {
	h := framework.New(t)
	ctx := newCtx(t, 3*time.Minute)
	app := h.RunID + "-unhealthy"
	oldValue, newValue := randomValue(t), randomValue(t)
	orig := h.Run(t, ctx, framework.ContainerSpec{Name: "web", Labels: map[string]string{labelApp: app},
		Env: []string{"TESTAPP_UNHEALTHY_IF_ENV=TOKEN:" + sha(newValue)}})

	a := framework.StartAgent(t, h, framework.AgentOptions{
		RotationTimeout: 15 * time.Second,
		Secrets:         map[string]string{"app/token": oldValue},
		Bindings: []string{bindingYAML("unhealthy", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: rolling")},
	})
	if _, _, err := a.WaitLog(0, isRotation("rotation complete", orig.Name), time.Minute); err != nil {
		t.Fatal(err)
	}
	good := waitReplaced(t, ctx, h, orig.Name, orig.ID, 30*time.Second)

	from := a.LogLen()
	a.SetSecret("app/token", newValue)
	_, failed, err := a.WaitLog(from, isRotation("rotation failed", orig.Name), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	trace := failed.Str("trace_id")
	if !strings.Contains(failed.Str("reason"), "health") {
		t.Errorf("rotation failed with reason %q; want the health gate named", failed.Str("reason"))
	}
	if n := a.CountLog(from, isRotation("rotation complete", orig.Name)); n != 0 {
		t.Fatalf("%d rotations completed with a value that makes the app unhealthy: the gate was skipped", n)
	}

	now, err := inspectName(ctx, h, orig.Name)
	if err != nil {
		t.Fatal(err)
	}
	if now.ID != good.ID || !now.State.Running {
		t.Fatalf("after the rollback %s is %s (running %v); want the old container %s running", orig.Name, now.ID[:12], now.State.Running, good.ID[:12])
	}
	if got, err := h.ExecGET(ctx, now.ID, "http://127.0.0.1:8080/env/TOKEN"); err != nil || got != sha(oldValue) {
		t.Fatalf("the old container serves %q, %v; want the OLD value's hash", got, err)
	}
	// The candidate is gone: only the old container carries the app label
	// (retries after backoff may be creating a new candidate right now, so
	// look for candidates of the failed trace only).
	for name, c := range runContainers(t, ctx, h) {
		if c.Labels[labelRotation] == trace {
			t.Errorf("candidate %s of the failed rotation %s is still there (%s)", name, trace, c.State)
		}
	}

	// The health output: what the probe said must be visible to an operator,
	// in the rotation's log lines or at least counted in the metrics.
	healthOut := "TESTAPP_UNHEALTHY_IF_ENV"
	inLog := a.CountLog(from, func(l framework.LogLine) bool {
		if l.Str("trace_id") != trace {
			return false
		}
		for _, v := range l {
			if s, ok := v.(string); ok && strings.Contains(s, healthOut) {
				return true
			}
		}
		return false
	}) > 0
	m, err := a.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	rolledBack, _ := framework.MetricValue(m, `dso_rotations_total{result="rolled-back",strategy="rolling"}`)
	degraded, _ := framework.MetricValue(m, `dso_binding_condition{binding="unhealthy",condition="Degraded"}`)
	t.Logf("health output in the log: %v; dso_rotations_total rolled-back=%v; Degraded=%v", inLog, rolledBack, degraded)
	if rolledBack < 1 {
		t.Errorf("dso_rotations_total{result=\"rolled-back\",strategy=\"rolling\"} = %v, want >= 1", rolledBack)
	}
	if degraded != 1 {
		t.Errorf("dso_binding_condition{binding=\"unhealthy\",condition=\"Degraded\"} = %v, want 1", degraded)
	}
	// The brief accepts the metrics as the capture when the log has no
	// probe output; the agent keeps the probes (exit codes, output) in its
	// in-memory history, which has no API yet. Say so rather than fail.
	if !inLog {
		t.Logf("NOTE: no log line of rotation %s carries the probe's output (%q); only the reason %q and a probe count are logged", trace, healthOut, failed.Str("reason"))
	}
	assertNoPlaintext(t, a, oldValue, newValue)
}
