//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestTestappOnTestNetwork proves the pieces later traffic tests stand on:
// containers on a network the test created reach each other by alias
// (ExecGET), and `testapp client` counts the answers it got and reports
// them as JSON when stopped with SIGTERM.
func TestTestappOnTestNetwork(t *testing.T) {
	h := framework.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	value := randomValue(t)
	net := h.Network(t, ctx, "net")
	web := h.Run(t, ctx, framework.ContainerSpec{Name: "web", Network: net, Aliases: []string{"web"}, Env: []string{"TOKEN=" + value}})
	if err := h.WaitHealthy(ctx, web.ID); err != nil {
		t.Fatal(err)
	}
	peer := h.Run(t, ctx, framework.ContainerSpec{Name: "peer", Network: net})
	if body, err := h.ExecGET(ctx, peer.ID, "http://web:8080/env/TOKEN"); err != nil || body != sha(value) {
		t.Fatalf("GET web:8080/env/TOKEN from a peer = %q, %v; want %s", body, err, sha(value))
	}

	client := h.Run(t, ctx, framework.ContainerSpec{
		Name:    "client",
		Network: net,
		Cmd:     []string{"client", "http://web:8080/env/TOKEN"},
		Env:     []string{"TESTAPP_CLIENT_INTERVAL=50ms"},
	})
	time.Sleep(time.Second)
	timeout := 5
	if err := h.Docker.ContainerStop(ctx, client.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stopping the client: %v", err)
	}
	if code, err := h.WaitExit(ctx, client.ID); err != nil || code != 0 {
		t.Fatalf("client exit = %d, %v; want 0 after SIGTERM", code, err)
	}
	out, err := h.Logs(ctx, client.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK     int            `json:"ok"`
		Failed int            `json:"failed"`
		Bodies map[string]int `json:"bodies"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rep); err != nil {
		t.Fatalf("client report %q: %v", out, err)
	}
	if rep.OK < 5 || rep.Failed != 0 || rep.Bodies[sha(value)] != rep.OK {
		t.Fatalf("client report = %+v; want >=5 ok answers, all %s, none failed", rep, sha(value))
	}
	if strings.Contains(out, value) {
		t.Fatal("the client output contains the plaintext value")
	}
	t.Logf("client: %d ok, %d failed in ~1s at a 50ms interval", rep.OK, rep.Failed)
}
