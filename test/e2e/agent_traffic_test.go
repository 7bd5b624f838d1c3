//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestAgentRollingUnderTraffic is acceptance 2: a client container on the
// service's network requests the service alias in a tight loop while the
// agent performs 5 consecutive rolling rotations. Every rotation must
// succeed and serve the new value; failed requests are counted and reported
// (the figure goes into docs/benchmarks.md), not asserted to be 0: the
// testapp client has no retry on connection reset, so a failure here is a
// request a client without retries would have seen.
func TestAgentRollingUnderTraffic(t *testing.T) {
	const rotations = 5
	h := framework.New(t)
	ctx := newCtx(t, 4*time.Minute)
	app := h.RunID + "-traffic"
	net := h.Network(t, ctx, "net")
	value := randomValue(t)
	svc := h.Run(t, ctx, framework.ContainerSpec{Name: "svc", Network: net, Aliases: []string{"svc"}, Labels: map[string]string{labelApp: app}})

	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/token": value},
		Bindings: []string{bindingYAML("traffic", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: rolling")},
	})
	if _, _, err := a.WaitLog(0, isRotation("rotation complete", svc.Name), time.Minute); err != nil {
		t.Fatal(err)
	}
	cur := waitReplaced(t, ctx, h, svc.Name, svc.ID, 30*time.Second)

	client := h.Run(t, ctx, framework.ContainerSpec{
		Name: "client", Network: net,
		Cmd: []string{"client", "http://svc:8080/healthz"},
		Env: []string{"TESTAPP_CLIENT_INTERVAL=10ms"},
	})
	time.Sleep(500 * time.Millisecond) // the client is running before the first change
	start := time.Now()
	var durations []string
	for i := range rotations {
		value = randomValue(t)
		from := a.LogLen()
		a.SetSecret("app/token", value)
		_, line, err := a.WaitLog(from, func(l framework.LogLine) bool {
			return l.Str("container") == svc.Name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
		}, time.Minute)
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if line.Msg() != "rotation complete" {
			t.Fatalf("rotation %d failed: %s", i+1, line.Str("reason"))
		}
		durations = append(durations, line.Str("duration"))
		next := waitReplaced(t, ctx, h, svc.Name, cur.ID, 30*time.Second)
		// Through the alias, from the client's side of the network: the
		// service now serves the new value.
		if got, err := h.ExecGET(ctx, client.ID, "http://svc:8080/env/TOKEN"); err != nil || got != sha(value) {
			t.Fatalf("after rotation %d, svc:8080/env/TOKEN = %q, %v; want the new value's hash", i+1, got, err)
		}
		cur = next
	}
	elapsed := time.Since(start)

	timeout := 5
	if err := h.Docker.ContainerStop(ctx, client.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stopping the client: %v", err)
	}
	if _, err := h.WaitExit(ctx, client.ID); err != nil {
		t.Fatal(err)
	}
	out, err := h.Logs(ctx, client.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK           int    `json:"ok"`
		Failed       int    `json:"failed"`
		MaxLatencyMS int64  `json:"max_latency_ms"`
		LastError    string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rep); err != nil {
		t.Fatalf("client report %q: %v", out, err)
	}
	if rep.OK == 0 {
		t.Fatalf("the client got no answer at all during the rotations: %+v", rep)
	}
	t.Logf("traffic: %d requests, %d failed over %d rotations", rep.OK+rep.Failed, rep.Failed, rotations)
	t.Logf("traffic detail: %s for the rotations (%s each), max latency %d ms, last error %q",
		elapsed.Round(time.Millisecond), strings.Join(durations, ", "), rep.MaxLatencyMS, rep.LastError)
	if strings.Contains(a.LogTail(1000), value) {
		t.Error("the agent log contains the plaintext value")
	}
}
