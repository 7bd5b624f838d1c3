package cli

import (
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
)

// A binding that targets a Swarm service shows the service as its target
// (service/NAME), Swarm's rollback as the Degraded message, and the swarm
// strategy in its rotations.
func TestDescribeSwarmBinding(t *testing.T) {
	ht := v1alpha1.Duration(2 * time.Minute)
	view := api.BindingView{
		Name: "web-tls", Source: "/etc/dso/bindings.d/web.yaml:1", Created: fixedNow.Add(-2 * time.Hour),
		Spec: v1alpha1.SecretBindingSpec{
			StoreRef: v1alpha1.StoreRef{Name: "vault-prod"},
			Target:   v1alpha1.Target{Selector: v1alpha1.Selector{Swarm: &v1alpha1.SwarmSelector{Service: "web"}}},
			Data:     []v1alpha1.SecretData{{RemoteRef: v1alpha1.RemoteRef{Key: "shop/tls"}, File: &v1alpha1.FileTarget{Path: "/run/secrets/tls.pem", Mode: "0440"}}},
			Rotation: v1alpha1.Rotation{HealthTimeout: &ht},
		},
		Status: v1alpha1.SecretBindingStatus{
			Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionFalse, Reason: "NotReady", Message: "service/web: swarm update failed: Swarm rolled the update back: rollback completed", LastTransitionTime: *mt(time.Minute)},
				{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "SwarmUpdateFailed", Message: "swarm update failed: Swarm rolled the update back: rollback completed", LastTransitionTime: *mt(time.Minute)},
			},
			Targets: []v1alpha1.TargetStatus{{Service: "web", Hash: "81e651fd046a2b3c", Phase: "Degraded", LastRotation: mt(time.Hour)}},
		},
		Rotations: []api.Rotation{
			{TraceID: "489c277e6eb6", Target: "service/web", Strategy: "swarm", Started: fixedNow.Add(-time.Minute), Finished: fixedNow.Add(-time.Minute + 5*time.Second), Result: "rolled-back"},
			{TraceID: "cc72b11bf0c5", Target: "service/web", Strategy: "swarm", Started: fixedNow.Add(-time.Hour), Finished: fixedNow.Add(-time.Hour + 8500*time.Millisecond), Result: "succeeded"},
		},
	}
	fa := newFakeAgent(t, true)
	fa.mux.HandleFunc("GET /v1/bindings/{name}", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, 200, view) })
	r := fa.run(t, "describe", "binding", "web-tls")
	if r.code != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	golden(t, "describe/web-swarm", r.out)
}
