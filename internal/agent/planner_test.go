package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers"
)

type mapValues map[string]string

func (m mapValues) Get(_ context.Context, store string, ref providers.Ref) (cache.Entry, error) {
	v, ok := m[store+"/"+ref.Key]
	if !ok {
		return cache.Entry{}, providers.Errorf(providers.KindNotFound, store, ref.Key, "no such key")
	}
	return cache.Entry{Secret: providers.Secret{Value: []byte(v), Fields: providers.JSONFields([]byte(v))}}, nil
}

func binding(name string, sel v1alpha1.Selector, data []v1alpha1.SecretData, strategy v1alpha1.RotationStrategy) v1alpha1.SecretBinding {
	return v1alpha1.SecretBinding{ObjectMeta: metaName(name), Spec: v1alpha1.SecretBindingSpec{
		StoreRef: v1alpha1.StoreRef{Name: "local"}, Target: v1alpha1.Target{Selector: sel}, Data: data,
		Rotation: v1alpha1.Rotation{Strategy: strategy},
	}}
}

func inspect(name string, labels map[string]string, ports bool) container.InspectResponse {
	c := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "id-" + name, Name: "/" + name, HostConfig: &container.HostConfig{}},
		Config:            &container.Config{Labels: labels},
	}
	if ports {
		c.HostConfig.PortBindings = nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}
	}
	return c
}

func TestPlan(t *testing.T) {
	m := NewModel(5 * time.Minute)
	envItem := v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: "shop/db", Property: "password"}, Env: "DB_PASSWORD"}
	fileItem := v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: "shop/tls"}, File: &v1alpha1.FileTarget{Path: "/run/secrets/tls.pem", Mode: "0440"}}
	m.Set([]v1alpha1.SecretStore{{ObjectMeta: metaName("local")}}, []v1alpha1.SecretBinding{
		binding("api-db", v1alpha1.Selector{Compose: &v1alpha1.ComposeSelector{Project: "shop", Service: "api"}}, []v1alpha1.SecretData{envItem, fileItem}, v1alpha1.RotationAuto),
		binding("tls-only", v1alpha1.Selector{Containers: []string{"web"}}, []v1alpha1.SecretData{fileItem}, ""),
		binding("by-label", v1alpha1.Selector{Labels: map[string]string{"app": "worker", "tier": "back"}}, []v1alpha1.SecretData{envItem}, v1alpha1.RotationRolling),
	}, 5*time.Minute)
	vals := mapValues{"local/shop/db": `{"password":"s3cret","user":"app"}`, "local/shop/tls": "PEM"}
	p := &Planner{Model: m, Values: vals, HostKey: []byte("0123456789abcdef0123456789abcdef"), Timeout: 30 * time.Second}
	compose := map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}

	cases := []struct {
		name         string
		c            container.InspectResponse
		selected     bool
		strategy     v1alpha1.RotationStrategy
		env, files   int
		wantBindings string
	}{
		{"compose service, no ports: rolling", inspect("shop-api-1", compose, false), true, v1alpha1.RotationRolling, 1, 1, "api-db"},
		{"compose service with host ports: recreate", inspect("shop-api-1", compose, true), true, v1alpha1.RotationRecreate, 1, 1, "api-db"},
		{"file-only binding: none (in place)", inspect("web", nil, false), true, v1alpha1.RotationNone, 0, 1, "tls-only"},
		{"all labels must match", inspect("w1", map[string]string{"app": "worker"}, false), false, "", 0, 0, ""},
		{"labels match", inspect("w2", map[string]string{"app": "worker", "tier": "back"}, false), true, v1alpha1.RotationRolling, 1, 0, "by-label"},
		{"unselected", inspect("db", nil, false), false, "", 0, 0, ""},
		{"compose one-off run is not a target", inspect("shop-api-run-1", map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "api", "com.docker.compose.oneoff": "True"}, false), false, "", 0, 0, ""},
		{"a swap candidate is not a target", inspect("shop-api-1-dso-ab12", map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "api", docker.LabelManaged: "true", docker.LabelTargetName: "shop-api-1"}, false), false, "", 0, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, selected, err := p.Plan(context.Background(), tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if selected != tc.selected {
				t.Fatalf("selected = %v, want %v", selected, tc.selected)
			}
			if !selected {
				return
			}
			if plan.Strategy != tc.strategy || len(plan.Env) != tc.env || len(plan.Files) != tc.files || strings.Join(plan.Bindings, ",") != tc.wantBindings {
				t.Fatalf("plan = strategy %s env %d files %d bindings %v", plan.Strategy, len(plan.Env), len(plan.Files), plan.Bindings)
			}
			if tc.env > 0 && plan.Env["DB_PASSWORD"] != "s3cret" {
				t.Errorf("property not extracted: %q", plan.Env["DB_PASSWORD"])
			}
			if strings.Contains(plan.Hash, "s3cret") || len(plan.Hash) != 64 {
				t.Errorf("hash %q", plan.Hash)
			}
		})
	}

	// The hash follows the value; for in-place targets only the content hash does.
	base, _, _ := p.Plan(context.Background(), inspect("shop-api-1", compose, false))
	web, _, _ := p.Plan(context.Background(), inspect("web", nil, false))
	vals["local/shop/db"] = `{"password":"n3w","user":"app"}`
	vals["local/shop/tls"] = "PEM2"
	next, _, _ := p.Plan(context.Background(), inspect("shop-api-1", compose, false))
	web2, _, _ := p.Plan(context.Background(), inspect("web", nil, false))
	if base.Hash == next.Hash {
		t.Errorf("hash did not change with the value")
	}
	if web.Hash != web2.Hash || web.ContentHash == web2.ContentHash {
		t.Errorf("in-place: layout hash changed=%v content hash changed=%v; want false/true", web.Hash != web2.Hash, web.ContentHash != web2.ContentHash)
	}
	// Another host key gives another hash.
	p2 := *p
	p2.HostKey = []byte("another-host-key-another-host-ke")
	other, _, _ := p2.Plan(context.Background(), inspect("shop-api-1", compose, false))
	if other.Hash == next.Hash {
		t.Errorf("hash does not depend on the host key")
	}

	// A missing property is terminal and names the field, not the value.
	vals["local/shop/db"] = `{"user":"app"}`
	_, _, err := p.Plan(context.Background(), inspect("shop-api-1", compose, false))
	if err == nil || !reconcilers.IsTerminal(err) || !strings.Contains(err.Error(), `"password"`) || strings.Contains(err.Error(), "app\"") {
		t.Errorf("missing property: err = %v", err)
	}
	// A missing key is retried (not terminal).
	delete(vals, "local/shop/db")
	_, _, err = p.Plan(context.Background(), inspect("shop-api-1", compose, false))
	if err == nil || reconcilers.IsTerminal(err) {
		t.Errorf("missing key: err = %v, want a retryable error", err)
	}
}

func TestConflictingBindings(t *testing.T) {
	m := NewModel(time.Minute)
	item := v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: "k"}, Env: "TOKEN"}
	m.Set(nil, []v1alpha1.SecretBinding{
		binding("a", v1alpha1.Selector{Containers: []string{"x"}}, []v1alpha1.SecretData{item}, ""),
		binding("b", v1alpha1.Selector{Containers: []string{"x"}}, []v1alpha1.SecretData{item}, ""),
	}, time.Minute)
	p := &Planner{Model: m, Values: mapValues{"local/k": "v"}, HostKey: make([]byte, 32)}
	_, _, err := p.Plan(context.Background(), inspect("x", nil, false))
	if err == nil || !reconcilers.IsTerminal(err) || !strings.Contains(err.Error(), "bindings a and b both deliver env TOKEN") {
		t.Fatalf("err = %v", err)
	}
}

func TestModelKeys(t *testing.T) {
	m := NewModel(5 * time.Minute)
	fast := v1alpha1.Duration(30 * time.Second)
	b1 := binding("a", v1alpha1.Selector{Containers: []string{"x"}}, []v1alpha1.SecretData{{RemoteRef: v1alpha1.RemoteRef{Key: "k", Property: "p1"}, Env: "A"}, {RemoteRef: v1alpha1.RemoteRef{Key: "k", Property: "p2"}, Env: "B"}}, "")
	b2 := binding("b", v1alpha1.Selector{Containers: []string{"y"}}, []v1alpha1.SecretData{{RemoteRef: v1alpha1.RemoteRef{Key: "k"}, Env: "C"}}, "")
	b2.Spec.RefreshInterval = &fast
	m.Set(nil, []v1alpha1.SecretBinding{b1, b2}, 5*time.Minute)
	keys := m.Keys()
	if len(keys) != 1 {
		t.Fatalf("keys = %v: two properties of one secret must share one fetch key", keys)
	}
	if iv := keys[FetchKey{Store: "local", Key: "k"}]; iv != 30*time.Second {
		t.Fatalf("interval = %v, want the shortest (30s)", iv)
	}
}

func TestPlanService(t *testing.T) {
	m := NewModel(5 * time.Minute)
	tls := v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: "shop/tls"}, File: &v1alpha1.FileTarget{Path: "/run/secrets/tls.pem", Mode: "0440", UID: ptr64(1000)}}
	pw := v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: "shop/db", Property: "password"}, File: &v1alpha1.FileTarget{Path: "/etc/app/db"}}
	swarmSel := v1alpha1.Selector{Swarm: &v1alpha1.SwarmSelector{Service: "web"}}
	bindings := []v1alpha1.SecretBinding{
		binding("web-tls", swarmSel, []v1alpha1.SecretData{tls}, ""),
		binding("web-db", swarmSel, []v1alpha1.SecretData{pw}, ""),
		binding("by-label", v1alpha1.Selector{Labels: map[string]string{"app": "web"}}, []v1alpha1.SecretData{tls}, ""),
	}
	m.Set([]v1alpha1.SecretStore{{ObjectMeta: metaName("local")}}, bindings, 5*time.Minute)
	vals := mapValues{"local/shop/db": `{"password":"s3cret"}`, "local/shop/tls": "PEM"}
	p := &Planner{Model: m, Values: vals, HostKey: []byte("0123456789abcdef0123456789abcdef"), Timeout: 30 * time.Second}

	plan, sel, err := p.PlanService(context.Background(), "web")
	if err != nil || !sel {
		t.Fatalf("PlanService: %v, %v", sel, err)
	}
	if strings.Join(plan.Bindings, ",") != "web-db,web-tls" || len(plan.Files) != 2 || plan.Timeout != 30*time.Second {
		t.Fatalf("plan %+v", plan)
	}
	if f := plan.Files[0]; f.Binding != "web-db" || f.Path != "/etc/app/db" || string(f.Value) != "s3cret" {
		t.Errorf("file 0 %+v", f)
	}
	if f := plan.Files[1]; f.Binding != "web-tls" || f.Mode != 0o440 || f.UID != 1000 || f.GID != -1 {
		t.Errorf("file 1 %+v", f)
	}
	if len(plan.Hash) != 64 || strings.Contains(plan.Hash, "s3cret") {
		t.Errorf("hash %q", plan.Hash)
	}
	if again, _, _ := p.PlanService(context.Background(), "web"); again.Hash != plan.Hash {
		t.Error("the hash of an unchanged plan changed")
	}
	vals["local/shop/db"] = `{"password":"other"}`
	if changed, _, _ := p.PlanService(context.Background(), "web"); changed.Hash == plan.Hash {
		t.Error("a changed value kept the hash")
	}
	if _, sel, _ := p.PlanService(context.Background(), "api"); sel {
		t.Error("a service no binding selects is selected")
	}
	if got := m.Services(); strings.Join(got, ",") != "web" {
		t.Errorf("Services %q", got)
	}
	// A Swarm task container is never a container target, even when a
	// label selector matches it: Swarm owns it.
	task := inspect("web.1.abc", map[string]string{"app": "web", "com.docker.swarm.task.id": "abc", "com.docker.swarm.service.id": "s1"}, false)
	if _, sel, _ := p.Plan(context.Background(), task); sel {
		t.Error("a Swarm task container was selected for a container swap")
	}
	if _, sel, _ := p.Plan(context.Background(), inspect("web", map[string]string{"app": "web"}, false)); !sel {
		t.Error("a plain container with the label was not selected")
	}
}

// TestPlanServiceHashCoversService: Docker secret names are swarm-wide and
// carry the plan's hash, so a binding moved to another service (same
// values, same files) must get a hash, and so secret names, of its own:
// else creating them meets the first service's secrets ("already
// exists") on every try.
func TestPlanServiceHashCoversService(t *testing.T) {
	vals := mapValues{"local/shop/tls": "PEM"}
	hashFor := func(service string) string {
		m := NewModel(5 * time.Minute)
		tls := v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: "shop/tls"}, File: &v1alpha1.FileTarget{Path: "/run/secrets/tls.pem"}}
		m.Set([]v1alpha1.SecretStore{{ObjectMeta: metaName("local")}},
			[]v1alpha1.SecretBinding{binding("web-tls", v1alpha1.Selector{Swarm: &v1alpha1.SwarmSelector{Service: service}}, []v1alpha1.SecretData{tls}, "")}, 5*time.Minute)
		p := &Planner{Model: m, Values: vals, HostKey: []byte("0123456789abcdef0123456789abcdef"), Timeout: 30 * time.Second}
		plan, sel, err := p.PlanService(context.Background(), service)
		if err != nil || !sel {
			t.Fatalf("PlanService(%s): %v, %v", service, sel, err)
		}
		return plan.Hash
	}
	if a, b := hashFor("web"), hashFor("web2"); a == b || a[:8] == b[:8] {
		t.Errorf("services web and web2 have hashes %s and %s: the secret names would collide", a, b)
	}
}

func ptr64(v int64) *int64 { return &v }

// TestDataFromFieldNamesStayInDir: dataFrom file names come from the
// store's JSON, so a field that is not one path element ("../../etc/x",
// "a/b", "..") is refused instead of landing outside dataFrom.dir in the
// container; plain names are delivered under the dir.
func TestDataFromFieldNamesStayInDir(t *testing.T) {
	cases := []struct {
		name, json string
		ok         bool
	}{
		{"plain names", `{"user":"u","password":"p"}`, true},
		{"traversal", `{"../../etc/passwd":"x"}`, false},
		{"nested", `{"a/b":"x"}`, false},
		{"dot-dot", `{"..":"x"}`, false},
		{"the writer's own ..data", `{"..data":"x"}`, false},
		{"dot-dot prefix", `{"..dso_1":"x"}`, false},
		{"empty", `{"":"x"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewModel(5 * time.Minute)
			b := binding("creds", v1alpha1.Selector{Containers: []string{"api"}}, nil, "")
			b.Spec.DataFrom = []v1alpha1.SecretDataFrom{{RemoteRef: v1alpha1.RemoteRef{Key: "shop/creds"}, Dir: "/run/secrets/creds"}}
			m.Set([]v1alpha1.SecretStore{{ObjectMeta: metaName("local")}}, []v1alpha1.SecretBinding{b}, 5*time.Minute)
			p := &Planner{Model: m, Values: mapValues{"local/shop/creds": tc.json}, HostKey: []byte("0123456789abcdef0123456789abcdef"), Timeout: 30 * time.Second}
			plan, _, err := p.Plan(context.Background(), inspect("api", nil, false))
			if !tc.ok {
				if err == nil || !reconcilers.IsTerminal(err) || !strings.Contains(err.Error(), "not usable as a file name") {
					t.Fatalf("err = %v; want a terminal refusal of the field name", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range plan.Files {
				if !strings.HasPrefix(f.Path, "/run/secrets/creds/") {
					t.Errorf("file %s outside dataFrom.dir", f.Path)
				}
			}
			if len(plan.Files) != 2 {
				t.Errorf("%d files, want 2", len(plan.Files))
			}
		})
	}
}
