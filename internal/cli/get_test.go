package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
)

func bindingSpecFixture() v1alpha1.SecretBindingSpec {
	ht := v1alpha1.Duration(30 * time.Second)
	ri := v1alpha1.Duration(5 * time.Minute)
	return v1alpha1.SecretBindingSpec{
		StoreRef: v1alpha1.StoreRef{Name: "vault-prod"},
		Target:   v1alpha1.Target{Selector: v1alpha1.Selector{Compose: &v1alpha1.ComposeSelector{Project: "shop", Service: "api"}}},
		Data: []v1alpha1.SecretData{
			{RemoteRef: v1alpha1.RemoteRef{Key: "shop/db", Property: "password"}, Env: "DB_PASSWORD"},
			{RemoteRef: v1alpha1.RemoteRef{Key: "shop/tls"}, File: &v1alpha1.FileTarget{Path: "/run/secrets/tls/key.pem", Mode: "0400"}},
		},
		DataFrom:        []v1alpha1.SecretDataFrom{{RemoteRef: v1alpha1.RemoteRef{Key: "shop/feature-flags"}, Prefix: "FLAG_"}},
		RefreshInterval: &ri,
		Rotation:        v1alpha1.Rotation{Strategy: v1alpha1.RotationRolling, HealthTimeout: &ht},
	}
}

func mt(d time.Duration) *metav1.Time { t := metav1.NewTime(fixedNow.Add(-d)); return &t }

func bindingsFixture() []api.BindingView {
	return []api.BindingView{
		{
			Name: "api-db", Source: "/etc/dso/dso.yaml:31", Created: fixedNow.Add(-4 * 24 * time.Hour), Spec: bindingSpecFixture(),
			Status: v1alpha1.SecretBindingStatus{
				Conditions: []metav1.Condition{
					{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Synced", Message: "2 targets converged", LastTransitionTime: *mt(3 * time.Minute)},
					{Type: "Degraded", Status: metav1.ConditionFalse, Reason: "Healthy", LastTransitionTime: *mt(2 * time.Hour)},
				},
				LastSyncTime: mt(5 * time.Second), NextSyncTime: mt(-5 * time.Minute),
				Targets: []v1alpha1.TargetStatus{
					{Container: "shop-api-1", Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Phase: "Ready", LastRotation: mt(10 * time.Minute)},
					{Container: "shop-api-2", Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Phase: "Ready"},
				},
			},
			Events: []api.Event{
				{Time: fixedNow.Add(-10 * time.Minute), Binding: "api-db", Target: "shop-api-1", Type: "Normal", Reason: "Rotated", Message: "rolling swap done in 1.2s"},
				{Time: fixedNow.Add(-time.Hour), Binding: "api-db", Target: "shop-api-2", Type: "Warning", Reason: "HealthGateFailed", Message: "candidate unhealthy: exit 1"},
			},
			Rotations: []api.Rotation{
				{TraceID: "ab12cd34ef56", Target: "shop-api-1", Strategy: "rolling", Started: fixedNow.Add(-10 * time.Minute), Finished: fixedNow.Add(-10*time.Minute + 1200*time.Millisecond), Result: "succeeded"},
				{TraceID: "ff00ee11dd22", Target: "shop-api-2", Strategy: "rolling", Started: fixedNow.Add(-time.Hour), Finished: fixedNow.Add(-time.Hour + 30*time.Second), Result: "rolled-back", Reason: "health gate timed out after 30s"},
			},
		},
		{
			Name: "worker-env", Source: "applied", Created: fixedNow.Add(-90 * time.Second),
			Spec: v1alpha1.SecretBindingSpec{StoreRef: v1alpha1.StoreRef{Name: "aws"},
				Target: v1alpha1.Target{Selector: v1alpha1.Selector{Containers: []string{"worker"}, Labels: map[string]string{"tier": "batch"}}},
				Data:   []v1alpha1.SecretData{{RemoteRef: v1alpha1.RemoteRef{Key: "prod/worker", Version: "v3"}, Env: "TOKEN"}}},
			Status: v1alpha1.SecretBindingStatus{Conditions: []metav1.Condition{
				{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "HealthGateFailed", LastTransitionTime: *mt(time.Minute)},
			}},
		},
	}
}

func storesFixture() []api.StoreView {
	return []api.StoreView{
		{Name: "vault-prod", Provider: "vault", Source: "/etc/dso/dso.yaml:12", Created: fixedNow.Add(-3 * time.Hour), Health: "healthy", Circuit: "closed",
			Spec:   v1alpha1.SecretStoreSpec{Vault: &v1alpha1.VaultProvider{Address: "https://vault.internal:8200"}},
			Status: v1alpha1.SecretStoreStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Validated", LastTransitionTime: *mt(42 * time.Second)}}}},
		{Name: "aws", Provider: "aws", Source: "applied", Created: fixedNow.Add(-400 * 24 * time.Hour), Health: "unavailable", Circuit: "open",
			Spec: v1alpha1.SecretStoreSpec{AWS: &v1alpha1.AWSProvider{Region: "eu-west-1"}}},
	}
}

func getAgent(t *testing.T) *fakeAgent {
	fa := newFakeAgent(t, true)
	bs, ss := bindingsFixture(), storesFixture()
	fa.handle("GET /v1/bindings", bs)
	fa.handle("GET /v1/stores", ss)
	fa.mux.HandleFunc("GET /v1/bindings/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, b := range bs {
			if b.Name == r.PathValue("name") {
				api.WriteJSON(w, 200, b)
				return
			}
		}
		api.WriteError(w, 404, "secretbinding "+r.PathValue("name")+" not found")
	})
	fa.mux.HandleFunc("GET /v1/stores/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, s := range ss {
			if s.Name == r.PathValue("name") {
				api.WriteJSON(w, 200, s)
				return
			}
		}
		api.WriteError(w, 404, "secretstore "+r.PathValue("name")+" not found")
	})
	return fa
}

func TestGetAndDescribeGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"get/stores", []string{"get", "stores"}},
		{"get/stores-wide", []string{"get", "stores", "-o", "wide"}},
		{"get/bindings", []string{"get", "bindings"}},
		{"get/bindings-wide", []string{"get", "secretbindings", "-o", "wide"}},
		{"get/binding-one", []string{"get", "binding", "worker-env"}},
		{"get/binding-yaml", []string{"get", "binding", "worker-env", "-o", "yaml"}},
		{"describe/api-db", []string{"describe", "binding", "api-db"}},
		{"describe/worker-env", []string{"describe", "binding", "worker-env"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			fa := getAgent(t)
			r := fa.run(t, tc.args...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, tc.golden, r.out)
		})
	}
}

func TestGetJSONAndYAMLAreTheViews(t *testing.T) {
	fa := getAgent(t)
	r := fa.run(t, "get", "bindings", "-o", "json")
	var got []api.BindingView
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v\n%s", r.code, err, r.out)
	}
	if len(got) != 2 || got[0].Name != "api-db" || got[0].Status.Targets[0].Hash != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b" {
		t.Errorf("json round trip lost data: %+v", got)
	}
	r = fa.run(t, "get", "store", "vault-prod", "-o", "yaml")
	var one api.StoreView
	if err := yaml.Unmarshal([]byte(r.out), &one); err != nil || one.Spec.Vault == nil || one.Spec.Vault.Address != "https://vault.internal:8200" {
		t.Errorf("yaml: %v %+v\n%s", err, one, r.out)
	}
}

func TestGetErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods"}, `Error: unknown object type "pods": use stores or bindings`},
		{[]string{"get", "bindings", "-o", "xml"}, `Error: unknown output format "xml": use wide, yaml or json`},
		{[]string{"get", "binding", "nope"}, "Error: secretbinding nope not found: list them with 'dso get bindings'"},
		{[]string{"describe", "binding", "nope"}, "Error: secretbinding nope not found: list them with 'dso get bindings'"},
		{[]string{"describe", "store", "x"}, "Error: describe shows bindings; for stores use 'dso get stores x -o yaml'"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fa := getAgent(t)
			r := fa.run(t, tc.args...)
			if r.code != 1 || strings.TrimSpace(r.err) != tc.want {
				t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.err, tc.want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	prev := now
	now = func() time.Time { return fixedNow }
	t.Cleanup(func() { now = prev })
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Second, "5s"}, {59 * time.Second, "59s"}, {3 * time.Minute, "3m"}, {2 * time.Hour, "2h"},
		{47 * time.Hour, "47h"}, {4 * 24 * time.Hour, "4d"}, {400 * 24 * time.Hour, "1y"}, {-time.Second, "0s"},
	} {
		if got := age(fixedNow.Add(-tc.d)); got != tc.want {
			t.Errorf("age(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := age(time.Time{}); got != "<unknown>" {
		t.Errorf("zero age = %q", got)
	}
	for _, tc := range []struct {
		p    float64
		want string
	}{{0, "0.0%"}, {12.5, "12.5%"}, {99.96, "100.0%"}, {100, "100.0%"}, {91.66666, "91.7%"}} {
		if got := percent(tc.p); got != tc.want {
			t.Errorf("percent(%v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
