package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
	"github.com/dso-dev/dso/internal/notify"
	"github.com/dso-dev/dso/internal/testutil"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, 20*time.Millisecond, what, cond)
}

// TestAgentWiring runs the whole agent in-process on the fake engine and a
// file store: initial convergence, a webhook-triggered rotation after the
// secret changes, and a config reload that drops the binding.
func TestAgentWiring(t *testing.T) {
	d := newAgentDir(t)
	dir := d.dir
	write := func(v string) { d.writeSecret(t, "api_key", v) }
	write("v1")
	t.Setenv("DSO_TEST_WEBHOOK_TOKEN", "hook-token-123")
	metricsAddr, hookAddr := freePort(t), freePort(t)
	t.Setenv("DSO_TEST_NOTIFY_KEY", "notify-key")
	var notes struct {
		sync.Mutex
		types []string
		bad   int
	}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		notes.Lock()
		defer notes.Unlock()
		if !notify.Verify([]byte("notify-key"), body, r.Header.Get("X-DSO-Signature")) {
			notes.bad++
		}
		notes.types = append(notes.types, r.Header.Get("X-DSO-Event"))
	}))
	t.Cleanup(sink.Close) // after the agent's own cleanup: it may still notify
	cfg := d.config(metricsAddr,
		fmt.Sprintf(`webhook: {enabled: true, listen: "%s", token: {fromEnv: DSO_TEST_WEBHOOK_TOKEN}}`, hookAddr),
		fmt.Sprintf("notifications:\n- {name: test, url: %q, secret: {fromEnv: DSO_TEST_NOTIFY_KEY}}\n", sink.URL), `---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata: {name: api}
spec:
  storeRef: {name: files}
  target: {selector: {containers: [api]}}
  data:
  - remoteRef: {key: api_key}
    env: API_KEY
`)
	cfgPath, b := d.load(t, cfg)

	eng := fake.New()
	eng.Add("api", container.Config{Image: "sha256:app", Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/probe"}}}, container.HostConfig{}, true)
	var logMu sync.Mutex
	var logs bytes.Buffer
	log := funcr.New(func(_, args string) { logMu.Lock(); logs.WriteString(args + "\n"); logMu.Unlock() }, funcr.Options{})
	runAgent(t, Options{ConfigPath: cfgPath, Bundle: b, Log: log, Engine: eng})
	resp, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	hashOf := func() string {
		c := eng.ByName("api")
		if c == nil {
			return ""
		}
		return c.Config.Labels[docker.LabelSecretHash]
	}
	waitFor(t, "initial convergence", func() bool { return hashOf() != "" })
	first := hashOf()
	if c := eng.ByName("api"); !strings.Contains(strings.Join(c.Config.Env, ","), "API_KEY=v1") {
		t.Fatalf("env not delivered: %v", c.Config.Env)
	}

	// The file store has no change notification: the webhook says "now".
	write("v2")
	req, _ := http.NewRequest(http.MethodPost, "http://"+hookAddr+"/v1/refresh", strings.NewReader(`{"store":"files","key":"api_key"}`))
	req.Header.Set("Authorization", "Bearer hook-token-123")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	waitFor(t, "rotation after webhook", func() bool { h := hashOf(); return h != "" && h != first })

	// Metrics are served and were set by the rotation.
	metricsText := func() string {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	for _, want := range []string{`dso_rotations_total{result="succeeded",strategy="rolling"} 2`, "workqueue_adds_total{name=\"containerswap\"}",
		"dso_secret_change_to_ready_seconds_count 1", `dso_binding_condition{binding="api",condition="Synced"}`, `dso_managed_containers{health="healthy"} 1`, "dso_cache_entries 1", `dso_provider_requests_total{op="get",provider="file",result="ok",store="files"}`} {
		waitFor(t, "metric "+want, func() bool { return strings.Contains(metricsText(), want) })
	}

	// Both rotations were notified, signed.
	waitFor(t, "notifications", func() bool { notes.Lock(); defer notes.Unlock(); return len(notes.types) >= 2 })
	notes.Lock()
	if notes.bad != 0 || notes.types[0] != "rotation_succeeded" {
		t.Errorf("notifications: %v, %d with a bad signature", notes.types, notes.bad)
	}
	notes.Unlock()

	// The agent API over its unix socket.
	client := api.NewClient(filepath.Join(dir, "run", "dso.sock"))
	st, err := client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rotations.Succeeded != 2 || st.Rotations.SuccessRate != 100 || len(st.Providers) != 1 || st.Providers[0].Health != "healthy" || !st.Runtime.Ready {
		t.Errorf("status = %+v", st)
	}
	if len(st.Observability.RecentRotations) != 2 || st.Recovery.LastRun == nil {
		t.Errorf("observability/recovery = %+v / %+v", st.Observability, st.Recovery)
	}
	bv, err := client.Binding(context.Background(), "api")
	if err != nil || len(bv.Status.Targets) != 1 || bv.Status.Targets[0].Phase != "Converged" || len(bv.Rotations) != 2 {
		t.Errorf("binding view = %+v, %v", bv, err)
	}
	hist, err := client.History(context.Background(), "api", 10)
	if err != nil || len(hist) != 2 || hist[0].Result != "succeeded" || len(hist[0].Steps) == 0 {
		t.Errorf("history = %+v, %v", hist, err)
	}
	// apply: a new binding for another container, then the same again.
	eng.Add("worker", container.Config{Image: "sha256:app"}, container.HostConfig{}, true)
	obj := []byte(`{"apiVersion":"dso.dev/v1alpha1","kind":"SecretBinding","metadata":{"name":"worker"},"spec":{"storeRef":{"name":"files"},"target":{"selector":{"containers":["worker"]}},"data":[{"remoteRef":{"key":"api_key"},"env":"KEY"}]}}`)
	dry, err := client.Apply(context.Background(), api.ApplyRequest{Objects: []json.RawMessage{obj}, DryRun: true})
	if err != nil || len(dry.Items) != 1 || dry.Items[0].Action != "created" || strings.Join(dry.Items[0].Rotates, ",") != "worker" {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	res, err := client.Apply(context.Background(), api.ApplyRequest{Objects: []json.RawMessage{obj}})
	if err != nil || res.Items[0].Action != "created" {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	waitFor(t, "applied binding converges worker", func() bool { return eng.ByName("worker").Config.Labels[docker.LabelSecretHash] != "" })
	if res, err = client.Apply(context.Background(), api.ApplyRequest{Objects: []json.RawMessage{obj}}); err != nil || res.Items[0].Action != "unchanged" {
		t.Fatalf("re-apply = %+v, %v", res, err)
	}
	// A binding declared in the config file cannot be applied over or deleted.
	if _, err := client.Delete(context.Background(), "bindings", "api"); err == nil || !strings.Contains(err.Error(), "declared in") {
		t.Errorf("delete of a file binding: %v", err)
	}
	if d, err := client.Delete(context.Background(), "bindings", "worker"); err != nil || !d.Deleted {
		t.Errorf("delete worker: %+v %v", d, err)
	}
	var backup bytes.Buffer
	if n, err := client.Backup(context.Background(), &backup); err != nil || n == 0 {
		t.Errorf("backup: %d bytes, %v", n, err)
	}

	// Reload with the binding removed: nothing more happens to the container.
	if err := os.WriteFile(cfgPath, []byte(cfg[:strings.Index(cfg, "---\napiVersion: dso.dev/v1alpha1\nkind: SecretBinding")]), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "configuration reloaded")
	})
	eng.ResetActions()
	write("v3")
	req2, _ := http.NewRequest(http.MethodPost, "http://"+hookAddr+"/v1/refresh", strings.NewReader(`{"store":"files","key":"api_key"}`))
	req2.Header.Set("Authorization", "Bearer hook-token-123")
	if resp, err = http.DefaultClient.Do(req2); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	time.Sleep(500 * time.Millisecond)
	if got := eng.ActionStrings(); len(got) != 0 {
		t.Errorf("after removing the binding the container was still touched: %v", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, v := range []string{"v1\"", "v2\"", "hook-token-123"} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("logs contain %q", v)
		}
	}
}
