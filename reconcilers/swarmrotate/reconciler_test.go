package swarmrotate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
	"github.com/dso-dev/dso/reconcilers"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// fixedPlanner answers one plan per service.
type fixedPlanner struct {
	mu    sync.Mutex
	plans map[string]Plan
}

func (p *fixedPlanner) PlanService(_ context.Context, service string) (Plan, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl, ok := p.plans[service]
	return pl, ok, nil
}

func (p *fixedPlanner) set(service string, pl Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plans[service] = pl
}

type recObserver struct {
	containerswap.NopObserver
	mu        sync.Mutex
	rotations []containerswap.Rotation
	degraded  map[string]string // target -> reason
}

func (o *recObserver) RotationFinished(r *containerswap.Rotation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rotations = append(o.rotations, *r)
}

func (o *recObserver) Degraded(_ []string, target, reason string, set bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.degraded == nil {
		o.degraded = map[string]string{}
	}
	if set {
		o.degraded[target] = reason
	} else {
		delete(o.degraded, target)
	}
}

const agentID = "agent-1"

// plan is a plan of binding web-tls for web: one file per value.
func plan(hash string, values ...string) Plan {
	p := Plan{Bindings: []string{"web-tls"}, Hash: hash, Timeout: 5 * time.Second}
	for i, v := range values {
		path := []string{"/run/secrets/tls.pem", "/etc/app/db"}[i]
		p.Files = append(p.Files, File{Binding: "web-tls", File: delivery.File{Path: path, Value: []byte(v), Mode: 0o440, UID: 1000, GID: -1}})
	}
	return p
}

type fixture struct {
	e   *fake.Engine
	p   *fixedPlanner
	o   *recObserver
	r   *Reconciler
	log *strings.Builder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := fake.New()
	e.Swarm = docker.SwarmInfo{NodeID: "n1", State: "active", ControlAvailable: true}
	f := &fixture{e: e, p: &fixedPlanner{plans: map[string]Plan{}}, o: &recObserver{}, log: &strings.Builder{}}
	var mu sync.Mutex
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		f.log.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 1})
	f.r = &Reconciler{Engine: e, Planner: f.p, Log: log, Observer: f.o, AgentID: agentID, PollInterval: time.Millisecond, Recheck: time.Second}
	// The service has a secret of its own that dso must keep, and an
	// update_config of its own that dso must not change.
	userSecret := e.AddSecret("user-cert", nil, []byte("x"))
	e.AddService(swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "web", Labels: map[string]string{"team": "shop"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "dso-testapp:dev", Secrets: []*swarm.SecretReference{
			{SecretID: userSecret, SecretName: "user-cert", File: &swarm.SecretReferenceFileTarget{Name: "user-cert", UID: "0", GID: "0", Mode: 0o444}},
		}}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionRollback, Monitor: 5 * time.Second},
	})
	return f
}

func (f *fixture) reconcile(t *testing.T) (reconcilers.Result, error) {
	t.Helper()
	return f.r.Reconcile(context.Background(), "web")
}

// refs renders the service's secret references as "name@target".
func (f *fixture) refs() []string {
	var out []string
	for _, r := range f.e.Service("web").Spec.TaskTemplate.ContainerSpec.Secrets {
		out = append(out, r.SecretName+"@"+r.File.Name)
	}
	return out
}

// edit is a human's docker service update of web (the fake's actions are
// reset after it).
func (f *fixture) edit(t *testing.T, change func(spec *swarm.ServiceSpec)) {
	t.Helper()
	svc := f.e.Service("web")
	spec := svc.Spec
	cs := *spec.TaskTemplate.ContainerSpec
	spec.TaskTemplate.ContainerSpec = &cs
	change(&spec)
	if err := f.e.ServiceUpdate(context.Background(), svc.ID, svc.Version, spec); err != nil {
		t.Fatal(err)
	}
	f.e.ResetActions()
}

func (f *fixture) secretNames() []string {
	var out []string
	for _, s := range f.e.Secrets() {
		out = append(out, s.Spec.Name)
	}
	return out
}

func TestReconcile(t *testing.T) {
	h1 := "aaaaaaaa11111111"
	h2 := "bbbbbbbb22222222"
	tests := []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"first converge creates one secret per file and updates the service once", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1", "db-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			want := []string{"secret-create dso-web-tls-tls.pem-aaaaaaaa", "secret-create dso-web-tls-db-aaaaaaaa", "service-update web"}
			if got := f.e.ActionStrings(); !slices.Equal(got, want) {
				t.Fatalf("actions %q, want %q", got, want)
			}
			svc := f.e.Service("web")
			if svc.Spec.Labels[docker.LabelSecretHash] != h1 || svc.Spec.Labels[docker.LabelAgent] != agentID || svc.Spec.Labels["team"] != "shop" {
				t.Errorf("service labels %v: want the hash, the agent and the service's own label", svc.Spec.Labels)
			}
			if got, want := f.refs(), []string{"user-cert@user-cert", "dso-web-tls-tls.pem-aaaaaaaa@/run/secrets/tls.pem", "dso-web-tls-db-aaaaaaaa@/etc/app/db"}; !slices.Equal(got, want) {
				t.Errorf("secret refs %q, want %q (the service's own ref kept)", got, want)
			}
			ref := svc.Spec.TaskTemplate.ContainerSpec.Secrets[1]
			if ref.File.Mode != 0o440 || ref.File.UID != "1000" || ref.File.GID != "0" {
				t.Errorf("file target %+v: want mode 0440, uid 1000, gid 0 (unset)", ref.File)
			}
			if u := svc.Spec.UpdateConfig; u == nil || u.FailureAction != swarm.UpdateFailureActionRollback || u.Order != swarm.UpdateOrderStartFirst || u.Parallelism != 1 {
				t.Errorf("update config %+v: the service's own must be kept", u)
			}
			if got := string(f.e.SecretData(ref.SecretID)); got != "cert-1" {
				t.Errorf("secret data %q, want the value", got)
			}
			for _, s := range f.e.Secrets() {
				if s.Spec.Name == "user-cert" {
					continue
				}
				l := s.Spec.Labels
				if l[docker.LabelManaged] != "true" || l[docker.LabelBinding] != "web-tls" || l[docker.LabelSecretHash] != h1 || l[docker.LabelService] != "web" {
					t.Errorf("secret %s labels %v", s.Spec.Name, l)
				}
			}
			if len(f.o.rotations) != 1 || f.o.rotations[0].Result != "succeeded" || f.o.rotations[0].Strategy != Strategy || f.o.rotations[0].Target != "service/web" || f.o.rotations[0].TraceID == "" {
				t.Errorf("rotation records %+v", f.o.rotations)
			}
		}},
		{"equal hash: nothing at all", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.e.ResetActions()
			for range 3 {
				if res, err := f.reconcile(t); err != nil || res.RequeueAfter != 0 {
					t.Fatalf("converged reconcile: %v, %v", res, err)
				}
			}
			if got := f.e.ActionStrings(); len(got) != 0 {
				t.Fatalf("a converged service saw %q", got)
			}
			if len(f.o.rotations) != 1 {
				t.Errorf("%d rotations recorded, want 1", len(f.o.rotations))
			}
		}},
		{"a reference removed by hand is put back (the label alone is not converged)", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			svc := f.e.Service("web")
			spec := svc.Spec
			cs := *spec.TaskTemplate.ContainerSpec
			cs.Secrets = cs.Secrets[:1] // the user's only
			spec.TaskTemplate.ContainerSpec = &cs
			if err := f.e.ServiceUpdate(context.Background(), svc.ID, svc.Version, spec); err != nil {
				t.Fatal(err)
			}
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if got, want := f.e.ActionStrings(), []string{"service-update web"}; !slices.Equal(got, want) {
				t.Fatalf("actions %q, want %q (the existing secret reused)", got, want)
			}
			if got, want := f.refs(), []string{"user-cert@user-cert", "dso-web-tls-tls.pem-aaaaaaaa@/run/secrets/tls.pem"}; !slices.Equal(got, want) {
				t.Errorf("refs %q, want %q", got, want)
			}
		}},
		{"changed value: new secret, one update, old secret removed", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.e.ResetActions()
			f.p.set("web", plan(h2, "cert-2"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			want := []string{"secret-create dso-web-tls-tls.pem-bbbbbbbb", "service-update web", "secret-remove dso-web-tls-tls.pem-aaaaaaaa"}
			if got := f.e.ActionStrings(); !slices.Equal(got, want) {
				t.Fatalf("actions %q, want %q", got, want)
			}
			if got, want := f.refs(), []string{"user-cert@user-cert", "dso-web-tls-tls.pem-bbbbbbbb@/run/secrets/tls.pem"}; !slices.Equal(got, want) {
				t.Errorf("refs %q, want %q", got, want)
			}
			if got, want := f.secretNames(), []string{"dso-web-tls-tls.pem-bbbbbbbb", "user-cert"}; !slices.Equal(got, want) {
				t.Errorf("secrets %q, want %q: the old dso secret removed, the user's kept", got, want)
			}
			if r := f.o.rotations[1]; r.FromHash != h1 || r.ToHash != h2 || r.Result != "succeeded" {
				t.Errorf("rotation %+v", r)
			}
		}},
		{"Swarm rolls back: Degraded with Swarm's message, old secret kept, not retried", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.e.OnServiceUpdate = func(*swarm.Service) fake.SwarmUpdateOutcome { return fake.UpdateRollsBack }
			f.p.set("web", plan(h2, "bad-value"))
			_, err := f.reconcile(t)
			if !errors.Is(err, ErrUpdateFailed) || !strings.Contains(err.Error(), "rollback completed") {
				t.Fatalf("error %v: want ErrUpdateFailed with Swarm's message", err)
			}
			if reason := f.o.degraded["service/web"]; !strings.Contains(reason, "rolled the update back: rollback completed") {
				t.Errorf("degraded %q", f.o.degraded)
			}
			if r := f.o.rotations[len(f.o.rotations)-1]; r.Result != "rolled-back" {
				t.Errorf("result %q, want rolled-back", r.Result)
			}
			if got := f.e.Service("web").Spec.Labels[docker.LabelSecretHash]; got != h1 {
				t.Errorf("service hash after rollback %q, want the old %q", got, h1)
			}
			if !slices.Contains(f.secretNames(), "dso-web-tls-tls.pem-aaaaaaaa") {
				t.Errorf("secrets %q: the old secret, which the rolled-back spec uses, must stay", f.secretNames())
			}
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatalf("reconcile after the rollback: %v", err)
			}
			if got := f.e.ActionStrings(); len(got) != 0 {
				t.Errorf("after Swarm rolled this plan back, a reconcile did %q; want nothing until the value changes", got)
			}
			if _, ok := f.o.degraded["service/web"]; !ok {
				t.Error("Degraded cleared although Swarm's rollback stands")
			}
			// A new value is a new plan: tried, and on success Degraded clears.
			f.e.OnServiceUpdate = nil
			f.p.set("web", plan("cccccccc33333333", "good-value"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if _, ok := f.o.degraded["service/web"]; ok {
				t.Error("Degraded still set after a successful rotation")
			}
			if got, want := f.secretNames(), []string{"dso-web-tls-tls.pem-cccccccc", "user-cert"}; !slices.Equal(got, want) {
				t.Errorf("secrets %q, want %q (old and rolled-back secrets removed)", got, want)
			}
		}},
		{"after a rollback, a crashed run's new plan is still tried", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.e.OnServiceUpdate = func(*swarm.Service) fake.SwarmUpdateOutcome { return fake.UpdateRollsBack }
			f.p.set("web", plan(h2, "bad-value"))
			if _, err := f.reconcile(t); !errors.Is(err, ErrUpdateFailed) {
				t.Fatalf("error %v", err)
			}
			f.e.OnServiceUpdate = nil
			time.Sleep(2 * time.Millisecond) // the next secret is made after the rollback started
			f.p.set("web", plan("cccccccc33333333", "good-value"))
			f.r.Fault = func(p string) {
				if p == "after-secret-create" {
					panic("crash")
				}
			}
			func() {
				defer func() { _ = recover() }()
				_, _ = f.reconcile(t)
			}()
			f.r.Fault = nil
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if got := f.e.ActionStrings(); !slices.Contains(got, "service-update web") {
				t.Fatalf("actions %q: the new plan was not tried", got)
			}
		}},
		{"Swarm pauses: Degraded, looked at again", func(t *testing.T, f *fixture) {
			f.e.OnServiceUpdate = func(*swarm.Service) fake.SwarmUpdateOutcome { return fake.UpdatePauses }
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); !errors.Is(err, ErrUpdateFailed) || !strings.Contains(err.Error(), "paused") {
				t.Fatalf("error %v", err)
			}
			f.e.ResetActions()
			res, err := f.reconcile(t)
			if err != nil || res.RequeueAfter == 0 {
				t.Fatalf("paused: %v, %v; want a requeue, no error", res, err)
			}
			if got := f.e.ActionStrings(); len(got) != 0 {
				t.Errorf("a paused update saw %q", got)
			}
			if !strings.Contains(f.o.degraded["service/web"], "paused") {
				t.Errorf("degraded %q", f.o.degraded)
			}
		}},
		{"an update in progress is waited for, never doubled", func(t *testing.T, f *fixture) {
			f.e.OnServiceUpdate = func(*swarm.Service) fake.SwarmUpdateOutcome { return fake.UpdateHangs }
			f.r.RolloutTimeout = 50 * time.Millisecond
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err == nil || !strings.Contains(err.Error(), "did not finish") {
				t.Fatalf("error %v: want the rollout bound", err)
			}
			f.e.ResetActions()
			res, err := f.reconcile(t)
			if err != nil || res.RequeueAfter == 0 || len(f.e.ActionStrings()) != 0 {
				t.Fatalf("updating: %v, %v, %q; want a requeue and no action", res, err, f.e.ActionStrings())
			}
		}},
		{"Swarm's rollback pauses: Degraded, the rolled-back plan not tried again", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			// failure action rollback, and the rollback's own failure
			// action pause (Swarm's default rollback_config).
			f.e.OnServiceUpdate = func(*swarm.Service) fake.SwarmUpdateOutcome { return fake.UpdateRollbackPauses }
			f.p.set("web", plan(h2, "bad-value"))
			if _, err := f.reconcile(t); !errors.Is(err, ErrUpdateFailed) || !strings.Contains(err.Error(), "rollback paused") {
				t.Fatalf("error %v: want ErrUpdateFailed with Swarm's message", err)
			}
			f.e.ResetActions()
			for range 2 {
				res, err := f.reconcile(t)
				if err != nil || res.RequeueAfter == 0 {
					t.Fatalf("rollback paused: %v, %v; want a requeue, no error", res, err)
				}
			}
			if got := f.e.ActionStrings(); len(got) != 0 {
				t.Errorf("after Swarm rolled this plan back and paused, a reconcile did %q; want nothing until the value changes", got)
			}
			if !strings.Contains(f.o.degraded["service/web"], "rollback paused") {
				t.Errorf("degraded %q", f.o.degraded)
			}
			if !slices.Contains(f.secretNames(), "dso-web-tls-tls.pem-aaaaaaaa") {
				t.Errorf("secrets %q: the old secret, which the rolled-back spec uses, must stay", f.secretNames())
			}
		}},
		{"a service of 0 replicas: nothing to roll, converged at once", func(t *testing.T, f *fixture) {
			zero := uint64(0)
			f.edit(t, func(spec *swarm.ServiceSpec) {
				spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}
			})
			// Swarm sets no UpdateStatus when no task needs replacing: the
			// rollout must not wait for one until its bound.
			f.r.RolloutTimeout = 2 * time.Second
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.p.set("web", plan(h2, "cert-2"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if r := f.o.rotations[len(f.o.rotations)-1]; r.Result != "succeeded" {
				t.Errorf("rotation %+v, want succeeded", r)
			}
			if got, want := f.secretNames(), []string{"dso-web-tls-tls.pem-bbbbbbbb", "user-cert"}; !slices.Equal(got, want) {
				t.Errorf("secrets %q, want %q", got, want)
			}
		}},
		{"a service removed (also while rotating): its dso secrets go, no other", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.p.set("web", plan(h2, "cert-2"))
			f.r.Fault = func(p string) {
				if p == "after-service-update" {
					f.e.RemoveService("web")
				}
			}
			if _, err := f.reconcile(t); err == nil {
				t.Fatal("the rollout of a removed service succeeded")
			}
			f.r.Fault = nil
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if got, want := f.secretNames(), []string{"user-cert"}; !slices.Equal(got, want) {
				t.Errorf("secrets %q, want %q: the removed service's dso secrets are left behind", got, want)
			}
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil || len(f.e.ActionStrings()) != 0 {
				t.Errorf("again: %v, %q", err, f.e.ActionStrings())
			}
		}},
		{"a concurrent docker service update: refused by version, retried on top of it, never lost", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.p.set("web", plan(h2, "cert-2"))
			human := true
			f.e.Hook = func(a fake.Action) {
				if a.Verb == "secret-create" && human {
					human = false
					f.edit(t, func(spec *swarm.ServiceSpec) {
						spec.TaskTemplate.ContainerSpec.Env = []string{"LOG=debug"}
					})
				}
			}
			if _, err := f.reconcile(t); err == nil {
				t.Fatal("an update with a stale version went through")
			}
			f.e.Hook = nil
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			svc := f.e.Service("web")
			if env := svc.Spec.TaskTemplate.ContainerSpec.Env; !slices.Equal(env, []string{"LOG=debug"}) {
				t.Errorf("env %q: the human's change was lost", env)
			}
			if svc.Spec.Labels[docker.LabelSecretHash] != h2 || !slices.Contains(f.refs(), "dso-web-tls-tls.pem-bbbbbbbb@/run/secrets/tls.pem") {
				t.Errorf("labels %v, refs %q: not converged", svc.Spec.Labels, f.refs())
			}
		}},
		{"crash after SecretCreate: the next run reuses the secret", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1", "db-1"))
			type crash struct{}
			f.r.Fault = func(p string) {
				if p == "after-secret-create" {
					panic(crash{})
				}
			}
			func() {
				defer func() {
					if v := recover(); v != nil {
						if _, ok := v.(crash); !ok {
							panic(v)
						}
					}
				}()
				_, _ = f.reconcile(t)
				t.Fatal("no crash")
			}()
			f.r.Fault = nil
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			want := []string{"secret-create dso-web-tls-db-aaaaaaaa", "service-update web"}
			if got := f.e.ActionStrings(); !slices.Equal(got, want) {
				t.Fatalf("actions after the crash %q, want %q (the first secret reused)", got, want)
			}
			if got := len(f.e.Secrets()); got != 3 {
				t.Errorf("%d secrets, want 3 (user's + 2)", got)
			}
		}},
		{"crash after the update: the next run only cleans up", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.p.set("web", plan(h2, "cert-2"))
			f.r.Fault = func(p string) {
				if p == "after-service-update" {
					panic("crash")
				}
			}
			func() {
				defer func() { _ = recover() }()
				_, _ = f.reconcile(t)
			}()
			f.r.Fault = nil
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if got, want := f.e.ActionStrings(), []string{"secret-remove dso-web-tls-tls.pem-aaaaaaaa"}; !slices.Equal(got, want) {
				t.Fatalf("actions %q, want %q", got, want)
			}
		}},
		{"an old secret still in use is removed later, not an error", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			old := f.e.Service("web").Spec.TaskTemplate.ContainerSpec.Secrets[1]
			// Another service still uses the old secret (as a task being
			// replaced would): Docker refuses its removal.
			other := f.e.AddService(swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "other"},
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "x", Secrets: []*swarm.SecretReference{old}}}})
			f.p.set("web", plan(h2, "cert-2"))
			res, err := f.reconcile(t)
			if err != nil || res.RequeueAfter == 0 {
				t.Fatalf("in-use secret: %v, %v; want no error and a requeue", res, err)
			}
			if !slices.Contains(f.secretNames(), old.SecretName) {
				t.Fatal("the in-use secret is gone")
			}
			if err := f.e.ServiceUpdate(context.Background(), other.ID, f.e.Service("other").Version, swarm.ServiceSpec{Annotations: other.Spec.Annotations,
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "x"}}}); err != nil {
				t.Fatal(err)
			}
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			if got, want := f.e.ActionStrings(), []string{"secret-remove " + old.SecretName}; !slices.Equal(got, want) {
				t.Fatalf("actions %q, want %q", got, want)
			}
		}},
		{"a service another agent manages is left alone", func(t *testing.T, f *fixture) {
			f.p.set("web", plan(h1, "cert-1"))
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.r.AgentID = "agent-2"
			f.p.set("web", plan(h2, "cert-2"))
			f.e.ResetActions()
			res, err := f.reconcile(t)
			if err != nil || res.RequeueAfter == 0 || len(f.e.ActionStrings()) != 0 {
				t.Fatalf("foreign service: %v, %v, %q", res, err, f.e.ActionStrings())
			}
			if !strings.Contains(f.o.degraded["service/web"], "another dso agent") {
				t.Errorf("degraded %q", f.o.degraded)
			}
		}},
		{"a secret of the service's own at a delivered path is refused", func(t *testing.T, f *fixture) {
			p := plan(h1, "cert-1")
			p.Files[0].Path = "/run/secrets/user-cert"
			f.p.set("web", p)
			_, err := f.reconcile(t)
			if !reconcilers.IsTerminal(err) || !strings.Contains(err.Error(), "already mounts secret user-cert at /run/secrets/user-cert") {
				t.Fatalf("error %v", err)
			}
			if slices.Contains(f.e.ActionStrings(), "service-update web") {
				t.Error("the service was updated")
			}
			// The recheck does not start, record and notify the same
			// refused rotation again; Degraded says why; a new plan is tried.
			if !strings.Contains(f.o.degraded["service/web"], "already mounts secret user-cert") {
				t.Errorf("degraded %q", f.o.degraded)
			}
			n := len(f.o.rotations)
			f.e.ResetActions()
			if _, err := f.reconcile(t); err != nil {
				t.Fatalf("recheck of the refused plan: %v", err)
			}
			if len(f.o.rotations) != n || len(f.e.ActionStrings()) != 0 {
				t.Errorf("recheck of the refused plan: %d more rotations, actions %q; want none", len(f.o.rotations)-n, f.e.ActionStrings())
			}
			// After refusalRetry the same plan is tried again (its cause may
			// have been fixed outside dso): refused once more here.
			clock := time.Now().Add(refusalRetry + time.Second)
			f.r.Now = func() time.Time { return clock }
			if _, err := f.reconcile(t); !reconcilers.IsTerminal(err) || len(f.o.rotations) != n+1 {
				t.Errorf("after refusalRetry: err %v, %d rotations; want the plan tried (and refused) once more", err, len(f.o.rotations)-n)
			}
			n = len(f.o.rotations)
			f.p.set("web", plan(h2, "cert-2"))
			if _, err := f.reconcile(t); err != nil || len(f.o.rotations) != n+1 {
				t.Errorf("a new plan after the refusal: err %v, %d rotations; want it tried and done", err, len(f.o.rotations)-n)
			}
		}},
		{"not selected, or no such service: nothing", func(t *testing.T, f *fixture) {
			if _, err := f.reconcile(t); err != nil {
				t.Fatal(err)
			}
			f.p.set("gone", plan(h1, "x"))
			if _, err := f.r.Reconcile(context.Background(), "gone"); err != nil {
				t.Fatal(err)
			}
			if got := f.e.ActionStrings(); len(got) != 0 {
				t.Fatalf("actions %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.run(t, f)
			for _, v := range []string{"cert-1", "cert-2", "db-1", "bad-value", "good-value"} {
				if strings.Contains(f.log.String(), v) {
					t.Errorf("the log contains the value %q:\n%s", v, f.log.String())
				}
			}
		})
	}
}

func TestSecretNames(t *testing.T) {
	long := strings.Repeat("b", 60)
	tests := []struct {
		name  string
		files []File
		want  []string
	}{
		{"file base", []File{{Binding: "web", File: delivery.File{Path: "/run/secrets/tls.pem"}}}, []string{"dso-web-tls.pem-12345678"}},
		{"same base twice: item index", []File{
			{Binding: "web", File: delivery.File{Path: "/a/key"}}, {Binding: "web", File: delivery.File{Path: "/b/key"}}, {Binding: "api", File: delivery.File{Path: "/c/key"}},
		}, []string{"dso-web-0-12345678", "dso-web-1-12345678", "dso-api-key-12345678"}},
		{"unsafe characters", []File{{Binding: "web", File: delivery.File{Path: "/run/secrets/my key+1"}}}, []string{"dso-web-my-key-1-12345678"}},
		{"too long: index, binding shortened", []File{{Binding: long, File: delivery.File{Path: "/run/secrets/certificate.pem"}}},
			[]string{"dso-" + long[:49] + "-0-12345678"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SecretNames(Plan{Hash: "1234567890abcdef", Files: tt.files})
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for _, n := range got {
				if len(n) > 64 {
					t.Errorf("%s is longer than Docker's 64", n)
				}
			}
		})
	}
}

func TestRolloutBound(t *testing.T) {
	three := uint64(3)
	svc := swarm.Service{Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &three}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Delay: time.Second, Monitor: 4 * time.Second}}}
	// 3 batches of (10s + 1s + 4s), twice over (a rollback), plus a minute.
	if got, want := rolloutBound(svc, 0, 10*time.Second, time.Minute), 3*15*time.Second*2+time.Minute; got != want {
		t.Errorf("bound %s, want %s", got, want)
	}
	if got := rolloutBound(swarm.Service{}, 0, 0, 0); got != (30*time.Second+5*time.Second)*2+time.Minute {
		t.Errorf("default bound %s", got)
	}
	// A global service on 4 nodes, one task at a time: 4 batches.
	global := swarm.Service{Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Monitor: 5 * time.Second}}}
	if got, want := rolloutBound(global, 4, 10*time.Second, 0), 4*15*time.Second*2+time.Minute; got != want {
		t.Errorf("global bound %s, want %s (one batch per node)", got, want)
	}
}
