package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
)

// TestAgentSwarmWiring runs the agent in-process on the fake engine with a
// binding that selects a Swarm service: on a manager the service converges,
// a changed value (webhook) rotates it through the swarmrotate controller
// with metrics, history and a service/<name> target; on an engine that is
// not a manager nothing happens and the binding says why.
func TestAgentSwarmWiring(t *testing.T) {
	for _, manager := range []bool{true, false} {
		t.Run(fmt.Sprintf("manager=%v", manager), func(t *testing.T) {
			d := newAgentDir(t)
			write := func(v string) { d.writeSecret(t, "tls", v) }
			write("v1")
			t.Setenv("DSO_TEST_WEBHOOK_TOKEN", "hook-token-123")
			metricsAddr, hookAddr := freePort(t), freePort(t)
			cfgPath, b := d.load(t, d.config(metricsAddr,
				fmt.Sprintf(`webhook: {enabled: true, listen: "%s", token: {fromEnv: DSO_TEST_WEBHOOK_TOKEN}}`, hookAddr), "", `---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata: {name: web}
spec:
  storeRef: {name: files}
  target: {selector: {swarm: {service: web}}}
  data:
  - remoteRef: {key: tls}
    file: {path: /run/secrets/tls.pem}
`))
			eng := fake.New()
			if manager {
				eng.Swarm = docker.SwarmInfo{NodeID: "n1", State: "active", ControlAvailable: true}
			}
			eng.AddService(swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"},
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "sha256:app"}}})
			runAgent(t, Options{ConfigPath: cfgPath, Bundle: b, Log: logr.Discard(), Engine: eng})
			dir := d.dir
			client := api.NewClient(filepath.Join(dir, "run", "dso.sock"))

			if !manager {
				var bv api.BindingView
				var err error
				waitFor(t, "binding status", func() bool {
					bv, err = client.Binding(context.Background(), "web")
					return err == nil && len(bv.Status.Conditions) > 0
				})
				ready := bv.Status.Conditions[0]
				if ready.Type != v1alpha1.ConditionReady || ready.Status != "False" || ready.Reason != "NotSwarmManager" || !strings.Contains(ready.Message, "this engine is not a Swarm manager") {
					t.Errorf("Ready condition %+v", ready)
				}
				time.Sleep(300 * time.Millisecond)
				if got := eng.ActionStrings(); len(got) != 0 {
					t.Errorf("not a manager, yet the agent did %q", got)
				}
				return
			}

			hashOf := func() string { return eng.Service("web").Spec.Labels[docker.LabelSecretHash] }
			waitFor(t, "initial convergence", func() bool { return hashOf() != "" })
			first := hashOf()
			write("v2")
			req, _ := http.NewRequest(http.MethodPost, "http://"+hookAddr+"/v1/refresh", strings.NewReader(`{"store":"files","key":"tls"}`))
			req.Header.Set("Authorization", "Bearer hook-token-123")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("webhook: %v %v", resp, err)
			}
			resp.Body.Close()
			waitFor(t, "rotation after webhook", func() bool { h := hashOf(); return h != "" && h != first })
			waitFor(t, "old secret removed", func() bool { return len(eng.Secrets()) == 1 })
			ref := eng.Service("web").Spec.TaskTemplate.ContainerSpec.Secrets[0]
			if string(eng.SecretData(ref.SecretID)) != "v2" || ref.File.Name != "/run/secrets/tls.pem" {
				t.Errorf("secret ref %+v", ref)
			}
			metricsText := func() string {
				resp, err := http.Get("http://" + metricsAddr + "/metrics")
				if err != nil {
					return ""
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return string(body)
			}
			for _, want := range []string{`dso_rotations_total{result="succeeded",strategy="swarm"} 2`, `workqueue_adds_total{name="swarmrotate"}`, "dso_secret_change_to_ready_seconds_count 1"} {
				waitFor(t, "metric "+want, func() bool { return strings.Contains(metricsText(), want) })
			}
			// The observers run in turn: history is written just after the
			// metric is counted.
			waitFor(t, "history of both rotations", func() bool {
				h, err := client.History(context.Background(), "web", 10)
				return err == nil && len(h) == 2
			})
			bv, err := client.Binding(context.Background(), "web")
			if err != nil || len(bv.Status.Targets) != 1 || bv.Status.Targets[0].Service != "web" || bv.Status.Targets[0].Phase != "Converged" || len(bv.Rotations) != 2 {
				t.Errorf("binding view = %+v, %v", bv, err)
			}
			if bv.Status.Conditions[0].Status != "True" {
				t.Errorf("Ready = %+v", bv.Status.Conditions[0])
			}
			hist, err := client.History(context.Background(), "web", 10)
			if err != nil || len(hist) != 2 || hist[0].Strategy != "swarm" || hist[0].Target != "service/web" || hist[0].TraceID == "" || len(hist[0].Steps) != 4 {
				t.Errorf("history = %+v, %v", hist, err)
			}
			// apply --dry-run names the service among the targets that
			// would rotate (a second binding changes its plan).
			obj := []byte(`{"apiVersion":"dso.dev/v1alpha1","kind":"SecretBinding","metadata":{"name":"web-extra"},"spec":{"storeRef":{"name":"files"},"target":{"selector":{"swarm":{"service":"web"}}},"data":[{"remoteRef":{"key":"tls"},"file":{"path":"/etc/extra.pem"}}]}}`)
			dry, err := client.Apply(context.Background(), api.ApplyRequest{Objects: []json.RawMessage{obj}, DryRun: true})
			if err != nil || len(dry.Items) != 1 || strings.Join(dry.Items[0].Rotates, ",") != "service/web" {
				t.Errorf("dry run = %+v, %v", dry, err)
			}
			st, err := client.Status(context.Background())
			found := false
			for _, q := range st.Queues {
				found = found || q.Name == "swarmrotate"
			}
			if err != nil || !found {
				t.Errorf("status queues %+v, %v", st.Queues, err)
			}
		})
	}
}
