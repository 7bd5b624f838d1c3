package containerswap

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
	"github.com/dso-dev/dso/reconcilers"
)

// fixedPlanner returns one plan for every container it selects.
type fixedPlanner struct {
	mu    sync.Mutex
	plans map[string]Plan
}

func (p *fixedPlanner) Plan(_ context.Context, c container.InspectResponse) (Plan, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := strings.TrimPrefix(c.Name, "/")
	if t, ok := c.Config.Labels[docker.LabelTargetName]; ok {
		name = t
	}
	pl, ok := p.plans[name]
	return pl, ok, nil
}

type recordingFiles struct {
	mu     sync.Mutex
	writes []string
	// content per target/set, to report "changed"
	last map[string]string
}

func (f *recordingFiles) Write(target, set string, files []delivery.File) ([]delivery.Mount, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == nil {
		f.last = map[string]string{}
	}
	var b strings.Builder
	for _, x := range files {
		fmt.Fprintf(&b, "%s=%s;", x.Path, x.Value)
	}
	k := target + "/" + set
	changed := f.last[k] != b.String()
	f.last[k] = b.String()
	f.writes = append(f.writes, k)
	return []delivery.Mount{{Source: "/run/dso/secrets/" + target + "/" + set + "/d", Target: "/run/secrets"}}, changed, nil
}

func (f *recordingFiles) RemoveSets(string, ...string) error { return nil }

func (f *recordingFiles) Mounts(target, set string, _ []delivery.File) []delivery.Mount {
	return []delivery.Mount{{Source: "/run/dso/secrets/" + target + "/" + set + "/d", Target: "/run/secrets"}}
}

type recObserver struct {
	NopObserver
	mu        sync.Mutex
	rotations []*Rotation
	recovery  []RecoveryAction
	degraded  map[string]bool
}

func (o *recObserver) RotationFinished(r *Rotation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rotations = append(o.rotations, r)
}

func (o *recObserver) Recovery(a RecoveryAction) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recovery = append(o.recovery, a)
}

func (o *recObserver) Degraded(bindings []string, target, reason string, set bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.degraded == nil {
		o.degraded = map[string]bool{}
	}
	o.degraded[target] = set
}

func envPlan(strategy v1alpha1.RotationStrategy, value string) Plan {
	h := "hash-" + value
	return Plan{Bindings: []string{"api-db"}, Env: map[string]string{"DB_PASSWORD": value}, Strategy: strategy, Hash: h, ContentHash: h + "-content-000000", HealthTimeout: 2 * time.Second}
}

type fixture struct {
	eng   *fake.Engine
	plans *fixedPlanner
	files *recordingFiles
	obs   *recObserver
	r     *Reconciler
	logs  *strings.Builder
	logMu *sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{eng: fake.New(), plans: &fixedPlanner{plans: map[string]Plan{}}, files: &recordingFiles{}, obs: &recObserver{}, logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	log := funcr.New(func(prefix, args string) {
		f.logMu.Lock()
		defer f.logMu.Unlock()
		f.logs.WriteString(args + "\n")
	}, funcr.Options{Verbosity: 1})
	f.r = &Reconciler{Engine: f.eng, Planner: f.plans, Files: f.files, Locks: NewLocks(), Log: log, Observer: f.obs,
		StablePeriod: 10 * time.Millisecond, PollInterval: 5 * time.Millisecond, Timeout: time.Second}
	return f
}

func healthcheck() *container.HealthConfig {
	return &container.HealthConfig{Test: []string{"CMD", "/testapp", "probe"}, Interval: time.Second}
}

// addApp preloads a running container as `docker run` or compose would make it.
func (f *fixture) addApp(name string, ports bool, labels map[string]string) *fake.Container {
	cfg := container.Config{Image: "sha256:app", Healthcheck: healthcheck(), Labels: labels, Env: []string{"PATH=/bin"}}
	hc := container.HostConfig{NetworkMode: "shop_default", RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}
	if ports {
		hc.PortBindings = nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "18080"}}}
	}
	c := f.eng.Add(name, cfg, hc, true)
	c.Networks["shop_default"] = &network.EndpointSettings{Aliases: []string{"api", c.ID[:12]}}
	return c
}

func (f *fixture) reconcile(t *testing.T, name string) error {
	t.Helper()
	_, err := f.r.Reconcile(context.Background(), name)
	return err
}

// strip replaces the random trace id in candidate names with TRACE.
func strip(actions []string) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		parts := strings.Fields(a)
		for j, p := range parts {
			if k := strings.Index(p, "-dso-"); k >= 0 {
				rest := p[k+5:]
				if strings.HasPrefix(rest, "retired-") {
					parts[j] = p[:k] + "-dso-retired-TRACE"
				} else {
					parts[j] = p[:k] + "-dso-TRACE"
				}
			}
		}
		out[i] = strings.Join(parts, " ")
	}
	return out
}

func TestReconcileActions(t *testing.T) {
	cases := []struct {
		name     string
		ports    bool
		strategy v1alpha1.RotationStrategy
		health   string // candidate health on start
		wantErr  bool
		want     []string
	}{
		{
			name: "rolling: create-before-destroy, aliases after the gate", strategy: v1alpha1.RotationRolling, health: "healthy",
			want: []string{
				"create api-dso-TRACE", "start api-dso-TRACE",
				"disconnect api-dso-TRACE shop_default", "connect api-dso-TRACE shop_default",
				"rename api api-dso-retired-TRACE", "rename api-dso-TRACE api",
				"update api always", "stop api-dso-retired-TRACE", "remove api-dso-retired-TRACE",
			},
		},
		{
			name: "auto with host ports: recreate", ports: true, strategy: v1alpha1.RotationAuto, health: "healthy",
			want: []string{
				"create api-dso-TRACE", "stop api", "start api-dso-TRACE",
				"disconnect api-dso-TRACE shop_default", "connect api-dso-TRACE shop_default",
				"rename api api-dso-retired-TRACE", "rename api-dso-TRACE api",
				"update api always", "remove api-dso-retired-TRACE",
			},
		},
		{
			name: "rolling, unhealthy candidate: removed, old untouched", strategy: v1alpha1.RotationRolling, health: "unhealthy", wantErr: true,
			want: []string{"create api-dso-TRACE", "start api-dso-TRACE", "stop api-dso-TRACE", "remove api-dso-TRACE"},
		},
		{
			name: "recreate, unhealthy candidate: old started again", ports: true, strategy: v1alpha1.RotationRecreate, health: "unhealthy", wantErr: true,
			want: []string{"create api-dso-TRACE", "stop api", "start api-dso-TRACE", "stop api-dso-TRACE", "remove api-dso-TRACE", "start api"},
		},
		{
			name: "candidate exits on start", strategy: v1alpha1.RotationRolling, health: "exit", wantErr: true,
			want: []string{"create api-dso-TRACE", "start api-dso-TRACE", "stop api-dso-TRACE", "remove api-dso-TRACE"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			old := f.addApp("api", tc.ports, nil)
			f.plans.plans["api"] = envPlan(tc.strategy, "v2")
			f.eng.OnStart = func(c *fake.Container) (string, bool) {
				if c.ID == old.ID {
					return "healthy", false
				}
				if tc.health == "exit" {
					return "", true
				}
				return tc.health, false
			}
			err := f.reconcile(t, "api")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got := strip(f.eng.ActionStrings()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("actions:\n got  %q\n want %q", got, tc.want)
			}
			cur := f.eng.ByName("api")
			if cur == nil || !cur.Running {
				t.Fatalf("no running container named api after reconcile")
			}
			if len(f.eng.Containers()) != 1 {
				t.Errorf("containers left: %d, want 1", len(f.eng.Containers()))
			}
			if tc.wantErr {
				if cur.ID != old.ID {
					t.Errorf("old container replaced despite failed gate")
				}
				if !errors.Is(err, ErrGateFailed) {
					t.Errorf("err = %v, want ErrGateFailed", err)
				}
				if !f.obs.degraded["api"] {
					t.Errorf("binding not marked Degraded")
				}
				r := f.obs.rotations[0]
				if r.Result != "rolled-back" || len(r.Health) == 0 {
					t.Errorf("rotation record: result %q, %d health probes (want diagnostics)", r.Result, len(r.Health))
				}
				if !strings.Contains(f.logs.String(), `"health_exit_code"=`) {
					t.Errorf("'rotation failed' lacks the health diagnostics:\n%s", f.logs.String())
				}
				if !strings.Contains(f.logs.String(), `"msg"="rotation failed"`) {
					t.Errorf("no 'rotation failed' log line:\n%s", f.logs.String())
				}
				return
			}
			if cur.ID == old.ID || cur.Config.Labels[docker.LabelSecretHash] != "hash-v2" {
				t.Errorf("target not rotated to the new hash")
			}
			if !contains(cur.Config.Env, "DB_PASSWORD=v2") || !contains(cur.Networks["shop_default"].Aliases, "api") {
				t.Errorf("candidate env %v / aliases %v", cur.Config.Env, cur.Networks["shop_default"].Aliases)
			}
			if cur.HostConfig.RestartPolicy.Name != container.RestartPolicyAlways {
				t.Errorf("restart policy not restored: %v", cur.HostConfig.RestartPolicy)
			}
			logs := f.logs.String()
			for _, want := range []string{`"msg"="rotation complete"`, `"trace_id"=`, `"step"="health"`, `"step"="swap"`, `"step"="verify"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %s:\n%s", want, logs)
				}
			}
			if strings.Contains(logs, "v2\"") && strings.Contains(logs, "DB_PASSWORD=v2") {
				t.Errorf("secret value in logs")
			}

			// Second reconcile: converged, nothing at all happens.
			f.eng.ResetActions()
			if err := f.reconcile(t, "api"); err != nil {
				t.Fatal(err)
			}
			if got := f.eng.ActionStrings(); len(got) != 0 {
				t.Errorf("converged target still mutated: %q", got)
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestInPlaceStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy v1alpha1.RotationStrategy
		want     []string
	}{
		{v1alpha1.RotationNone, nil},
		{v1alpha1.RotationSignal, []string{"signal api SIGHUP"}},
		{v1alpha1.RotationRestart, []string{"restart api"}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			f := newFixture(t)
			f.addApp("api", false, map[string]string{docker.LabelManaged: "true", docker.LabelSecretHash: "layout"})
			plan := Plan{Bindings: []string{"tls"}, Strategy: tc.strategy, Hash: "layout", ContentHash: "content-1",
				Files: []delivery.File{{Path: "/run/secrets/tls.pem", Value: []byte("v1"), UID: -1, GID: -1}}}
			f.plans.plans["api"] = plan
			if err := f.reconcile(t, "api"); err != nil { // first write: files change
				t.Fatal(err)
			}
			f.eng.ResetActions()
			plan.Files = []delivery.File{{Path: "/run/secrets/tls.pem", Value: []byte("v2"), UID: -1, GID: -1}}
			f.plans.plans["api"] = plan
			if err := f.reconcile(t, "api"); err != nil {
				t.Fatal(err)
			}
			if got := f.eng.ActionStrings(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("actions %q, want %q", got, tc.want)
			}
			if n := len(f.eng.Containers()); n != 1 {
				t.Errorf("%d containers, want 1 (no new container)", n)
			}
			// Unchanged files: nothing happens.
			f.eng.ResetActions()
			if err := f.reconcile(t, "api"); err != nil {
				t.Fatal(err)
			}
			if got := f.eng.ActionStrings(); len(got) != 0 {
				t.Errorf("unchanged files still caused %q", got)
			}
		})
	}
}

func TestParallelismBound(t *testing.T) {
	f := newFixture(t)
	f.r.Slots = make(chan struct{}, 2)
	const n = 12
	for i := range n {
		name := fmt.Sprintf("web-%d", i)
		f.addApp(name, false, nil)
		f.plans.plans[name] = envPlan(v1alpha1.RotationRolling, "v2")
	}
	var inFlight, peak atomic.Int32
	f.eng.Hook = func(a fake.Action) {
		switch {
		case a.Verb == "create":
			v := inFlight.Add(1)
			for {
				p := peak.Load()
				if v <= p || peak.CompareAndSwap(p, v) {
					break
				}
			}
		case a.Verb == "remove" && strings.Contains(a.Name, "-dso-retired-"):
			inFlight.Add(-1)
		}
	}
	f.eng.OnStart = func(c *fake.Container) (string, bool) {
		time.Sleep(5 * time.Millisecond) // let swaps overlap
		return "healthy", false
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.reconcile(t, fmt.Sprintf("web-%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak concurrent swaps = %d, want 1..2", p)
	}
	if len(f.obs.rotations) != n {
		t.Fatalf("%d rotations, want %d", len(f.obs.rotations), n)
	}
}

type crash struct{ point string }

// TestCrashMatrix stops the reconciler at every crash point of rolling and
// recreate, then runs recovery as a fresh agent would, and checks the
// target ends as exactly one running container under its name, and that a
// decoy named like the older DSO's backups is never touched.
func TestCrashMatrix(t *testing.T) {
	points := []string{"after-create", "after-stop-old", "after-start", "after-health", "after-rename-old", "after-rename-candidate", "after-remove-old"}
	for _, ports := range []bool{false, true} {
		for _, point := range points {
			for _, candHealthy := range []bool{true, false} {
				name := fmt.Sprintf("ports=%v/%s/healthy=%v", ports, point, candHealthy)
				t.Run(name, func(t *testing.T) {
					f := newFixture(t)
					old := f.addApp("web", ports, nil)
					decoy := f.eng.Add("web_dso_backup_1", container.Config{Image: "x"}, container.HostConfig{}, false)
					f.plans.plans["web"] = envPlan(v1alpha1.RotationAuto, "v2")
					f.eng.OnStart = func(c *fake.Container) (string, bool) {
						if c.ID == old.ID || candHealthy {
							return "healthy", false
						}
						return "starting", false
					}
					crashed := false
					f.r.Fault = func(p string) {
						if p == point {
							crashed = true
							panic(crash{p})
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
						_ = f.reconcile(t, "web")
					}()
					if !crashed {
						t.Skipf("crash point %s not reached on this path", point)
					}
					// Make health final for the recovery's view.
					if c := f.eng.Containers(); len(c) > 0 && !candHealthy {
						f.eng.OnStart = func(*fake.Container) (string, bool) { return "healthy", false }
					}
					// A fresh agent: new reconciler, same engine, recovery first.
					f.r.Fault = nil
					if err := f.r.Recover(context.Background(), "web"); err != nil {
						t.Fatalf("recover: %v", err)
					}
					var named []fake.Container
					for _, c := range f.eng.Containers() {
						if c.ID == decoy.ID {
							continue
						}
						named = append(named, c)
					}
					if len(named) != 1 || named[0].Name != "web" || !named[0].Running {
						t.Fatalf("after recovery want exactly one running 'web', got %+v", summary(named))
					}
					if f.eng.ByName("web_dso_backup_1") == nil {
						t.Fatalf("decoy container dso did not create was removed")
					}
					if len(f.obs.recovery) == 0 && point != "after-remove-old" {
						t.Errorf("no recovery action recorded")
					}
					// Then the normal reconcile converges to the new value.
					f.eng.OnStart = func(*fake.Container) (string, bool) { return "healthy", false }
					if err := f.reconcile(t, "web"); err != nil {
						t.Fatalf("reconcile after recovery: %v", err)
					}
					cur := f.eng.ByName("web")
					if cur.Config.Labels[docker.LabelSecretHash] != "hash-v2" || !cur.Running {
						t.Fatalf("not converged after recovery: %+v", cur.Config.Labels)
					}
					if len(f.eng.Containers()) != 2 { // web + decoy
						t.Fatalf("leftover containers: %+v", summary(f.eng.Containers()))
					}
					if cur.HostConfig.RestartPolicy.Name != container.RestartPolicyAlways {
						t.Errorf("restart policy %v after recovery", cur.HostConfig.RestartPolicy)
					}
				})
			}
		}
	}
}

func summary(cs []fake.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s(running=%v,health=%s,hash=%s)", c.Name, c.Running, c.Health, c.Config.Labels[docker.LabelSecretHash]))
	}
	return out
}

func TestUnselectedContainerUntouched(t *testing.T) {
	f := newFixture(t)
	f.addApp("other", false, nil)
	if err := f.reconcile(t, "other"); err != nil {
		t.Fatal(err)
	}
	if got := f.eng.ActionStrings(); len(got) != 0 {
		t.Fatalf("unselected container mutated: %q", got)
	}
	_ = logr.Discard()
}

// TestRecoverOnlyOwnCandidates: two agents share an engine (as tests do);
// one never recovers the other's in-flight swap.
func TestRecoverOnlyOwnCandidates(t *testing.T) {
	f := newFixture(t)
	f.r.AgentID = "agent-a"
	old := f.addApp("web", false, nil)
	f.eng.Add("web-dso-1234", container.Config{Image: "img", Labels: map[string]string{
		docker.LabelManaged: "true", docker.LabelTargetName: "web", docker.LabelReplaces: old.ID, docker.LabelAgent: "agent-b",
	}}, container.HostConfig{}, true)
	if got, err := f.r.Interrupted(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("Interrupted = %v, %v; want none of another agent's", got, err)
	}
	if err := f.r.Recover(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if got := f.eng.ActionStrings(); len(got) != 0 {
		t.Fatalf("recovered another agent's candidate: %v", got)
	}
	// While another agent's candidate replaces web, this agent leaves web alone.
	f.plans.plans["web"] = envPlan(v1alpha1.RotationRolling, "v2")
	if err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if got := f.eng.ActionStrings(); len(got) != 0 {
		t.Fatalf("swapped a container another agent is swapping: %v", got)
	}
	// Its own candidates carry its id.
	foreign := f.eng.ByName("web-dso-1234")
	_ = f.eng.Stop(context.Background(), foreign.ID)
	_ = f.eng.Remove(context.Background(), foreign.ID)
	f.eng.ResetActions()
	var seen string
	f.eng.Hook = func(a fake.Action) {
		if a.Verb == "create" {
			seen = f.eng.ByName(a.Name).Config.Labels[docker.LabelAgent]
		}
	}
	if err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if seen != "agent-a" {
		t.Fatalf("candidate agent label = %q", seen)
	}
}

// TestPremountedComposeContainer: a container dso did not create, whose
// compose file already bind-mounts its live secret directory, gets its
// files in place and a signal — never a swap.
func TestPremountedComposeContainer(t *testing.T) {
	f := newFixture(t)
	c := f.addApp("shop-web-1", false, map[string]string{"com.docker.compose.project": "shop"})
	c.HostConfig.Binds = []string{"/run/dso/secrets/shop-web-1/live/d:/run/secrets:ro"}
	plan := Plan{Bindings: []string{"tls"}, Strategy: v1alpha1.RotationSignal, Hash: "layout", ContentHash: "c1",
		Files: []delivery.File{{Path: "/run/secrets/tls.pem", Value: []byte("v1"), UID: -1, GID: -1}}}
	f.plans.plans["shop-web-1"] = plan
	if err := f.reconcile(t, "shop-web-1"); err != nil {
		t.Fatal(err)
	}
	if got := f.eng.ActionStrings(); !reflect.DeepEqual(got, []string{"signal shop-web-1 SIGHUP"}) {
		t.Fatalf("actions %q, want only a signal", got)
	}
	// Nothing changed since: the next pass does nothing and says so, though
	// the container carries no hash label to compare (rotate --wait).
	mark := time.Now()
	if f.r.ConvergedSince("shop-web-1", mark) {
		t.Fatal("ConvergedSince before any no-op pass")
	}
	f.eng.ResetActions()
	if err := f.reconcile(t, "shop-web-1"); err != nil {
		t.Fatal(err)
	}
	if got := f.eng.ActionStrings(); len(got) != 0 || !f.r.ConvergedSince("shop-web-1", mark) {
		t.Fatalf("second pass: actions %q, converged %v; want none and true", got, f.r.ConvergedSince("shop-web-1", mark))
	}
	// Without the mount the same plan needs one swap.
	f2 := newFixture(t)
	f2.addApp("shop-web-1", false, nil)
	f2.plans.plans["shop-web-1"] = plan
	if err := f2.reconcile(t, "shop-web-1"); err != nil {
		t.Fatal(err)
	}
	if got := strip(f2.eng.ActionStrings()); len(got) == 0 || got[0] != "create shop-web-1-dso-TRACE" {
		t.Fatalf("actions %q, want a swap", got)
	}
}

// TestNamespaceParentNotSwapped: a container whose network namespace
// another container joins (compose network_mode: service:db) is never
// replaced — the joiner would lose its network — and the refusal names
// the joiner; the joiner itself is refused too.
func TestNamespaceParentNotSwapped(t *testing.T) {
	f := newFixture(t)
	db := f.addApp("db", false, nil)
	f.eng.Add("sidecar", container.Config{Image: "sha256:side"}, container.HostConfig{NetworkMode: container.NetworkMode("container:" + db.ID)}, true)
	env := Plan{Bindings: []string{"db"}, Strategy: v1alpha1.RotationRolling, Hash: "h1", Env: map[string]string{"DB_PASSWORD": "v1"}}
	f.plans.plans["db"] = env
	f.plans.plans["sidecar"] = env
	f.eng.ResetActions()
	for _, tc := range []struct{ name, want string }{
		{"db", "joined by sidecar"},
		{"sidecar", "network_mode container"},
	} {
		err := f.reconcile(t, tc.name)
		if err == nil || !reconcilers.IsTerminal(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a terminal error containing %q", tc.name, err, tc.want)
		}
	}
	if got := f.eng.ActionStrings(); len(got) != 0 {
		t.Errorf("actions %q, want none", got)
	}
}
