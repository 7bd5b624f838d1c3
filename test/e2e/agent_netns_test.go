//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestAgentLeavesNamespaceParentAlone: a sidecar joins a container's
// network namespace (docker run --network container:web; Compose's
// network_mode: service:web). Swapping web would cut the sidecar off, so
// the agent refuses, naming the sidecar, and neither container changes:
// the sidecar still reaches web's HTTP server over their shared loopback.
func TestAgentLeavesNamespaceParentAlone(t *testing.T) {
	h := framework.New(t)
	ctx := newCtx(t, 3*time.Minute)
	app := h.RunID + "-netns"
	web := h.Run(t, ctx, framework.ContainerSpec{Name: "web", Labels: map[string]string{labelApp: app}})
	side := h.RunRaw(t, ctx, "sidecar",
		&container.Config{Env: []string{"TESTAPP_LISTEN=127.0.0.1:8081"}},
		&container.HostConfig{NetworkMode: container.NetworkMode("container:" + web.ID)}, nil, false)

	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/token": randomValue(t)},
		Bindings: []string{bindingYAML("netns", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: auto")},
	})
	_, line, err := a.WaitLog(0, func(l framework.LogLine) bool {
		return strings.Contains(l.Str("error"), "network namespace") || strings.Contains(l.Str("reason"), "network namespace")
	}, time.Minute)
	if err != nil {
		t.Fatalf("no refusal naming the shared network namespace in the agent log: %v", err)
	}
	msg := line.Str("error") + line.Str("reason")
	if !strings.Contains(msg, side.Name) {
		t.Errorf("refusal %q does not name the sidecar %s", msg, side.Name)
	}
	for _, c := range []*framework.Container{web, side} {
		now, err := inspectName(ctx, h, c.Name)
		if err != nil || now.ID != c.ID || !now.State.Running {
			t.Fatalf("%s changed or stopped (%v): the namespace parent must be left alone", c.Name, err)
		}
	}
	if n := a.CountLog(0, framework.MsgContains("rotation started")); n != 0 {
		t.Errorf("%d swaps started, want none", n)
	}
	if got, err := h.ExecGET(ctx, side.ID, "http://127.0.0.1:8080/healthz"); err != nil {
		t.Errorf("the sidecar no longer reaches web over the shared namespace: %q, %v", got, err)
	}
}
