package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/controllers"
	"github.com/dso-dev/dso/controllers/sources"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/metrics"
	"github.com/dso-dev/dso/internal/notify"
	"github.com/dso-dev/dso/internal/state"
	"github.com/dso-dev/dso/internal/version"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/all"
	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers"
	"github.com/dso-dev/dso/reconcilers/containerswap"
	"github.com/dso-dev/dso/reconcilers/orphancleanup"
	"github.com/dso-dev/dso/reconcilers/secretfetch"
	"github.com/dso-dev/dso/reconcilers/swarmrotate"
)

// Options configure Run.
type Options struct {
	// ConfigPath is the resolved config file ("" = built-in defaults).
	ConfigPath string
	// Bundle is the loaded config (Run loads ConfigPath when nil).
	Bundle *config.Bundle
	Log    logr.Logger
	// Engine overrides the Docker client (tests).
	Engine docker.Engine
	// Registry overrides the provider registry (tests; nil: every provider).
	Registry *providers.Registry
	// Fault is the crash-point hook of the faultinject build (nil: none).
	Fault func(point string)
	// Ready is closed once the agent is ready (informer synced, orphan
	// cleanup done, controllers running).
	Ready chan<- struct{}
}

// Agent is a running dso agent.
type Agent struct {
	opts    Options
	log     logr.Logger
	metrics *metrics.Metrics
	engine  docker.Engine
	files   *delivery.Writer
	cache   *cache.Cache
	reg     *providers.Registry
	model   *Model
	rec     *Recorder
	started time.Time

	mu         sync.Mutex
	fileWatch  *sources.FileWatcher // nil without a config file
	bundle     *config.Bundle       // effective: config files + applied objects
	fileBundle *config.Bundle       // config file and bindings folders only
	clients    map[string]storeClient
	applyMu    sync.Mutex

	state        *state.Store
	notifier     *notify.Notifier
	dockerAPI    string
	dockerEngine string

	swap     *containerswap.Reconciler
	swarm    *swarmrotate.Reconciler
	swarmCtl *controllers.Controller[string]
	// swarmInfo is the engine's swarm membership (docker info), refreshed
	// by housekeeping; the swarm controller acts only on a manager.
	swarmMu   sync.Mutex
	swarmInfo docker.SwarmInfo
	fetch     *secretfetch.Reconciler
	orphan    *orphancleanup.Reconciler
	swapCtl   *controllers.Controller[string]
	fetchCtl  *controllers.Controller[FetchKey]
	orphanCtl *controllers.Controller[orphancleanup.Key]
	debounce  *controllers.Debouncer[string]
	informer  *sources.DockerInformer
	polls     *sources.PollTimers[FetchKey]
	ready     atomic.Bool

	prefetched sync.Map // FetchKey -> true, consumed by secretfetch once

	changeMu   sync.Mutex
	changeSeen map[string]time.Time // target -> when a consumed secret changed

	watchCancel map[string]context.CancelFunc
}

type storeClient struct {
	spec   v1alpha1.SecretStoreSpec
	client providers.Client
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, opts Options) error {
	a, err := newAgent(ctx, opts)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

func newAgent(ctx context.Context, opts Options) (*Agent, error) {
	b := opts.Bundle
	if b == nil {
		var err error
		if b, err = config.Load(opts.ConfigPath); err != nil {
			return nil, err
		}
	}
	spec := b.Agent.Spec
	reg := opts.Registry
	if reg == nil {
		reg = all.Registry()
	}
	a := &Agent{opts: opts, log: opts.Log, bundle: b, reg: reg, rec: NewRecorder(200), started: time.Now(),
		clients: map[string]storeClient{}, changeSeen: map[string]time.Time{}, watchCancel: map[string]context.CancelFunc{}}
	metrics.RegisterWorkqueueProvider()
	a.metrics = metrics.New()

	a.engine = opts.Engine
	if a.engine == nil {
		c, err := docker.NewClient()
		if err != nil {
			return nil, err
		}
		a.engine = c
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	apiVersion, engineVersion, err := a.engine.Version(vctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("docker engine not reachable (is dockerd running and may this user use its socket?): %w", err)
	}
	a.dockerAPI, a.dockerEngine = apiVersion, engineVersion
	a.log.Info("agent starting", "version", version.Get().Version, "config", b.Path, "docker_api", apiVersion, "docker_engine", engineVersion, "pid", os.Getpid())
	a.state, err = state.Open(spec.State.Dir, state.Options{})
	if err != nil {
		return nil, err
	}
	if n, err := a.state.Prune(); err == nil && n > 0 {
		a.log.Info("pruned old history from the state store", "removed", n)
	}

	a.files = delivery.New(spec.Agent.Delivery.Dir)
	mounted, err := a.files.EnsureTmpfs()
	if err != nil {
		return nil, err
	}
	if mounted {
		a.log.Info("mounted tmpfs for secret files", "dir", spec.Agent.Delivery.Dir)
	}
	key, err := LoadHostKey(spec.State.Dir)
	if err != nil {
		return nil, err
	}
	a.cache = cache.New(cache.Options{TTL: spec.Agent.Cache.TTL.D(), MaxBytes: int64(*spec.Agent.Cache.MaxSize), Metrics: a.metrics.CacheObserver(a.log.WithName("cache"))})
	a.model = NewModel(spec.Agent.Watch.PollingInterval.D())

	observers := multiObserver{a.rec, a.metrics.SwapObserver(), changeToReady{a}, persister{a.state, a.log}}
	if len(spec.Notifications) > 0 {
		n, err := notify.New(spec.Notifications, func(vs v1alpha1.ValueSource) ([]byte, error) {
			v, err := readValueSource(vs)
			return []byte(v), err
		}, a.log.WithName("notify"))
		if err != nil {
			return nil, fmt.Errorf("notifications: %w", err)
		}
		a.notifier = n
		observers = append(observers, n.Observer())
	}
	slots := make(chan struct{}, *spec.Agent.Rotation.Parallelism)
	a.swap = &containerswap.Reconciler{
		Engine: a.engine, Files: a.files, Locks: containerswap.NewLocks(), Slots: slots,
		Timeout: spec.Agent.Rotation.Timeout.D(), Log: a.log.WithName("containerswap"),
		Observer: observers, Fault: opts.Fault, AgentID: AgentID(key),
		Planner: &Planner{Model: a.model, Values: a.cache, HostKey: key, Timeout: spec.Agent.Rotation.Timeout.D()},
	}
	a.fetch = &secretfetch.Reconciler{
		Cache: a.cache, Log: a.log.WithName("secretfetch"), ExternalTimers: true,
		Prefetched: func(k FetchKey) bool { _, ok := a.prefetched.LoadAndDelete(k); return ok },
		Interval:   func(k FetchKey) (time.Duration, bool) { iv, ok := a.model.Keys()[k]; return iv, ok },
		Targets:    a.targetsOf,
		Changed:    a.secretChanged,
	}
	a.orphan = &orphancleanup.Reconciler{Swap: a.swap, Log: a.log.WithName("orphancleanup")}
	a.swarm = &swarmrotate.Reconciler{
		Engine: a.engine, Planner: a.swap.Planner.(*Planner), Log: a.log.WithName("swarmrotate"),
		Observer: observers, Slots: slots, Timeout: spec.Agent.Rotation.Timeout.D(), AgentID: AgentID(key), Fault: opts.Fault,
	}

	a.swapCtl = controllers.New(controllers.Options{Name: "containerswap", Workers: int(*spec.Agent.Rotation.Parallelism) + 2, Log: a.log.WithName("controller")}, a.swap.Reconcile)
	a.fetchCtl = controllers.New(controllers.Options{Name: "secretfetch", Workers: 4, Log: a.log.WithName("controller")}, a.fetch.Reconcile)
	a.orphanCtl = controllers.New(controllers.Options{Name: "orphancleanup", Workers: 1, Log: a.log.WithName("controller")}, a.orphan.Reconcile)
	a.swarmCtl = controllers.New(controllers.Options{Name: "swarmrotate", Workers: int(*spec.Agent.Rotation.Parallelism) + 1, Log: a.log.WithName("controller")}, a.reconcileService)
	a.debounce = controllers.NewDebouncer(spec.Agent.Watch.DebounceWindow.D(), 0, a.enqueueTarget)
	a.refreshSwarm(ctx, true)
	a.informer = sources.NewDockerInformer(a.engine, informerHandler{a}, sources.DockerInformerOptions{Log: a.log.WithName("informer")})
	a.polls = sources.NewPollTimers(func(k FetchKey) { a.fetchCtl.Enqueue(k) })

	a.fileBundle = b
	applied, err := a.loadApplied()
	if err != nil {
		return nil, err
	}
	merged, err := mergeBundles(b, applied)
	if err != nil {
		return nil, err
	}
	if err := a.apply(ctx, merged); err != nil {
		return nil, err
	}
	return a, nil
}

// apply makes b the current declarations: store clients, model, timers.
func (a *Agent) apply(ctx context.Context, b *config.Bundle) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := map[string]storeClient{}
	for i := range b.Stores {
		s := &b.Stores[i]
		if cur, ok := a.clients[s.Name]; ok && reflect.DeepEqual(cur.spec, s.Spec) {
			next[s.Name] = cur
			continue
		}
		// The client's background work (Vault token renewal) logs through
		// the logger it finds in its context.
		client, err := a.reg.NewClient(logr.NewContext(ctx, a.log.WithName("store")), s)
		if err != nil {
			return fmt.Errorf("store %s: %w", s.Name, err)
		}
		name, _ := providers.ProviderName(s)
		var limit v1alpha1.RateLimit
		if s.Spec.RateLimit != nil {
			limit = *s.Spec.RateLimit
		}
		a.cache.AddStore(s.Name, name, client, limit, cache.BreakerOptions{})
		next[s.Name] = storeClient{spec: *s.Spec.DeepCopy(), client: client}
		a.watchStore(s.Name, client)
	}
	for name, cur := range a.clients {
		if n, ok := next[name]; !ok || n.client != cur.client {
			if !ok {
				a.cache.RemoveStore(name)
			}
			if cancel := a.watchCancel[name]; cancel != nil {
				cancel()
				delete(a.watchCancel, name)
			}
			_ = cur.client.Close()
		}
	}
	a.clients = next
	a.bundle = b
	a.model.Set(b.Stores, b.Bindings, b.Agent.Spec.Agent.Watch.PollingInterval.D())
	keys := a.model.Keys()
	a.polls.Set(keys)
	// Stores that can batch (AWS) are filled in a few calls first; their
	// keys are enqueued when that is done and read from the cache then.
	batched := map[string]bool{}
	for name, sc := range a.clients {
		if _, ok := sc.client.(providers.BatchClient); ok {
			batched[name] = true
			go a.prefetch(ctx, name)
		}
	}
	for k := range keys {
		if !batched[k.Store] {
			a.fetchCtl.Enqueue(k)
		}
	}
	for _, c := range a.containers(ctx) {
		a.swapCtl.Enqueue(strings.TrimPrefix(c.Names[0], "/"))
	}
	a.enqueueServices()
	for _, bd := range b.Bindings {
		if len(bd.Spec.Data)+len(bd.Spec.DataFrom) > 0 && hasEnv(&bd) {
			a.log.Info("binding delivers env vars: their values are visible to docker inspect; prefer file delivery", "binding", bd.Name)
		}
	}
	return nil
}

func hasEnv(b *v1alpha1.SecretBinding) bool {
	for _, d := range b.Spec.Data {
		if d.Env != "" {
			return true
		}
	}
	for _, d := range b.Spec.DataFrom {
		if d.Dir == "" {
			return true
		}
	}
	return false
}

// prefetch fills the cache for one batch-capable store, then enqueues its
// keys, marking the ones the batch fetched so secretfetch reads them from
// the cache instead of calling the provider once more per key.
func (a *Agent) prefetch(ctx context.Context, store string) {
	keys := a.model.KeysOfStore(store)
	refs := make([]providers.Ref, 0, len(keys))
	for _, k := range keys {
		refs = append(refs, providers.Ref{Key: k.Key, Version: k.Version})
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	n, err := a.cache.Prefetch(pctx, store, refs)
	cancel()
	if err != nil {
		a.log.Info("batch prefetch failed; fetching keys one by one", "store", store, "error", err.Error())
	} else {
		a.log.Info("batch prefetch", "store", store, "keys", len(keys), "fetched", n)
	}
	for _, k := range keys {
		if err == nil && k.Version == "" {
			a.prefetched.Store(k, true)
		}
		a.fetchCtl.Enqueue(k)
	}
}

// watchStore follows a store that can announce its changes (the local
// file store), so `docker dso secret set` is seen at once.
func (a *Agent) watchStore(name string, c providers.Client) {
	w, ok := c.(providers.WatchableClient)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := w.Watch(ctx)
	if err != nil {
		cancel()
		a.log.Info("cannot watch store for changes; polling only", "store", name, "error", err.Error())
		return
	}
	a.watchCancel[name] = cancel
	go func() {
		for range ch {
			keys := a.model.KeysOfStore(name)
			a.log.V(1).Info("store changed", "store", name, "keys", len(keys))
			for _, k := range keys {
				a.fetchCtl.Enqueue(k)
			}
		}
	}()
}

func (a *Agent) reload(ctx context.Context) {
	b, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		a.log.Error(err, "config reload failed; keeping the running configuration")
		return
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	applied, err := a.loadApplied()
	if err == nil {
		b, err = mergeBundles(b, applied)
	}
	if err == nil {
		err = a.apply(ctx, b)
	}
	if err == nil {
		a.mu.Lock()
		a.fileBundle = b
		a.mu.Unlock()
	}
	if err != nil {
		a.log.Error(err, "config reload failed; keeping the running configuration")
		return
	}
	if a.fileWatch != nil {
		a.fileWatch.SetDirs(b.Agent.Spec.Bindings.Dirs) // bindings.dirs may have changed
	}
	for _, w := range b.Warnings {
		a.log.Info("configuration warning", "warning", w.Error())
	}
	a.log.Info("configuration reloaded", "stores", len(b.Stores), "bindings", len(b.Bindings))
}

// containers lists every container from Docker itself (fresher than the
// informer's cache, which may lag an event), falling back to the cache.
func (a *Agent) containers(ctx context.Context) []container.Summary {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := a.engine.List(lctx, nil)
	if err != nil {
		return a.informer.List()
	}
	return list
}

// targetsOf lists the containers consuming k.
func (a *Agent) targetsOf(k FetchKey) []string {
	users := map[string]bool{}
	var out []string
	for _, b := range a.model.BindingsUsing(k) {
		users[b.Name] = true
		if sw := b.Spec.Target.Selector.Swarm; sw != nil && !slices.Contains(out, swarmrotate.Target(sw.Service)) {
			out = append(out, swarmrotate.Target(sw.Service))
		}
	}
	for _, c := range a.informer.List() {
		name := strings.TrimPrefix(c.Names[0], "/")
		if IsSwapArtifact(name, c.Labels) || IsSwarmTask(c.Labels) {
			continue
		}
		for _, b := range a.model.Select(name, c.Labels) {
			if users[b.Name] {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func (a *Agent) secretChanged(target string, _ FetchKey) {
	a.changeMu.Lock()
	if _, ok := a.changeSeen[target]; !ok {
		a.changeSeen[target] = time.Now()
	}
	a.changeMu.Unlock()
	a.debounce.Add(target)
}

// changeToReady measures dso_secret_change_to_ready_seconds.
type changeToReady struct{ a *Agent }

func (changeToReady) RotationStarted(*containerswap.Rotation) {}
func (changeToReady) Recovery(containerswap.RecoveryAction)   {}
func (changeToReady) LockWait(string, time.Duration)          {}
func (changeToReady) Degraded([]string, string, string, bool) {}
func (c changeToReady) RotationFinished(r *containerswap.Rotation) {
	// The set of managed containers changed: refresh the gauge now rather
	// than at the next 15 s tick.
	go c.a.updateManagedGauge(context.Background())
	if r.Result != "succeeded" {
		return
	}
	c.a.changeMu.Lock()
	t, ok := c.a.changeSeen[r.Target]
	delete(c.a.changeSeen, r.Target)
	c.a.changeMu.Unlock()
	if ok {
		c.a.metrics.ObserveSecretChangeToReady(time.Since(t))
	}
}

// enqueueTarget hands a debounced target to its controller: a Swarm
// service (service/<name>) to swarmrotate, a container to containerswap.
func (a *Agent) enqueueTarget(t string) {
	if svc, ok := strings.CutPrefix(t, swarmrotate.TargetPrefix); ok {
		a.swarmCtl.Enqueue(svc)
		return
	}
	a.swapCtl.Enqueue(t)
}

// enqueueServices enqueues every Swarm service a binding selects (on a
// manager; elsewhere status says why nothing happens).
func (a *Agent) enqueueServices() {
	if !a.swarmManager() {
		return
	}
	for _, s := range a.model.Services() {
		a.swarmCtl.Enqueue(s)
	}
}

func (a *Agent) swarmManager() bool {
	a.swarmMu.Lock()
	defer a.swarmMu.Unlock()
	return a.swarmInfo.Manager()
}

// refreshSwarm re-reads the engine's swarm membership (a node can join or
// leave a swarm while the agent runs) and logs a change.
func (a *Agent) refreshSwarm(ctx context.Context, first bool) {
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	info, err := a.engine.SwarmInfo(ictx)
	cancel()
	if err != nil {
		a.log.V(1).Info("docker info failed; keeping the last known swarm state", "error", err.Error())
		return
	}
	a.swarmMu.Lock()
	was := a.swarmInfo.Manager()
	a.swarmInfo = info
	a.swarmMu.Unlock()
	if first || was != info.Manager() {
		a.log.Info("swarm membership", "swarm_state", info.State, "manager", info.Manager())
	}
}

// reconcileService runs the swarm reconciler on a manager only.
func (a *Agent) reconcileService(ctx context.Context, service string) (reconcilers.Result, error) {
	if !a.swarmManager() {
		return reconcilers.Result{}, nil
	}
	return a.swarm.Reconcile(ctx, service)
}

type informerHandler struct{ a *Agent }

func (h informerHandler) OnContainer(name string) { h.a.swapCtl.Enqueue(name) }
func (h informerHandler) OnRelist()               { h.a.orphanCtl.Enqueue(orphancleanup.Key{}) }

func (a *Agent) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer a.closeClients()

	// Recovery first: finish or revert interrupted swaps before any new
	// rotation can start, at once rather than after a timeout.
	if _, err := a.orphan.Reconcile(ctx, orphancleanup.Key{}); err != nil {
		a.log.Error(err, "Automatic recovery: initial pass failed; retrying in the background")
		a.orphanCtl.Enqueue(orphancleanup.Key{})
	} else if run, _ := a.orphan.Last(); run != nil {
		// Always one line at start, so `system logs | grep "Automatic recovery"`
		// confirms the check ran even on a clean host.
		a.log.Info("Automatic recovery: startup check complete", "incomplete_rotations", len(run.Found), "duration", run.Duration.String())
	}

	var mgr controllers.Manager
	mgr.Add("informer", a.informer)
	mgr.Add("poll-timers", a.polls)
	mgr.Add("debounce", a.debounce)
	mgr.Add("orphancleanup", a.orphanCtl)
	mgr.Add("secretfetch", a.fetchCtl)
	mgr.Add("containerswap", a.swapCtl)
	mgr.Add("swarmrotate", a.swarmCtl)
	if a.notifier != nil {
		mgr.Add("notify", a.notifier)
	}
	spec := a.bundle.Agent.Spec
	if a.opts.ConfigPath != "" {
		a.fileWatch = sources.NewFileWatcher(a.opts.ConfigPath, spec.Bindings.Dirs, func() { a.reload(ctx) }, sources.FileWatcherOptions{Log: a.log.WithName("config")})
		mgr.Add("config-watch", a.fileWatch)
	}
	if wh := spec.Agent.Watch.Webhook; wh.Enabled {
		h, err := a.webhookHandler(wh)
		if err != nil {
			return err
		}
		mgr.Add("webhook", controllers.RunnableFunc(func(ctx context.Context) error {
			a.log.Info("serving the refresh webhook", "listen", wh.Listen, "path", sources.RefreshPath)
			return sources.ListenAndServe(ctx, wh.Listen, h)
		}))
	}
	sock, err := api.Listen(spec.Agent.API.Socket)
	if err != nil {
		return err
	}
	mgr.Add("api", controllers.RunnableFunc(func(ctx context.Context) error {
		a.log.Info("serving the agent API", "socket", spec.Agent.API.Socket)
		defer func() { _ = os.Remove(spec.Agent.API.Socket) }()
		return api.Serve(ctx, sock, a.apiHandler())
	}))
	mgr.Add("housekeeping", controllers.RunnableFunc(func(ctx context.Context) error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		m := time.NewTicker(15 * time.Second)
		defer m.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if n, err := a.state.Prune(); err == nil && n > 0 {
					a.log.Info("pruned old history from the state store", "removed", n)
				}
			case <-m.C:
				a.updateManagedGauge(ctx)
				a.updateConditionGauges(ctx)
				// Level-triggered: services are looked at again (an
				// update Swarm finished or rolled back by itself, an
				// old secret no longer in use).
				a.refreshSwarm(ctx, false)
				a.enqueueServices()
			}
		}
	}))
	srv, ln, err := a.httpServer(spec.Agent.Metrics.Listen)
	if err != nil {
		return err
	}
	mgr.Add("metrics", controllers.RunnableFunc(func(ctx context.Context) error {
		go func() { <-ctx.Done(); _ = srv.Shutdown(context.WithoutCancel(ctx)) }()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}))
	go a.watchReady(ctx, &mgr)
	err = mgr.Start(ctx)
	a.log.Info("agent stopped")
	return err
}

func (a *Agent) watchReady(ctx context.Context, mgr *controllers.Manager) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if mgr.Ready() && a.informer.Synced() {
				a.ready.Store(true)
				a.log.Info("agent ready", "listen", a.bundle.Agent.Spec.Agent.Metrics.Listen)
				if a.opts.Ready != nil {
					close(a.opts.Ready)
				}
				a.updateManagedGauge(ctx)
				a.updateConditionGauges(ctx)
				return
			}
		}
	}
}

// updateConditionGauges exports each binding's Ready and Synced conditions
// (Degraded is set by the rotation observer as gates fail and pass).
func (a *Agent) updateConditionGauges(ctx context.Context) {
	for _, v := range a.bindingViews(ctx, "", false) {
		for _, c := range v.Status.Conditions {
			if c.Type == v1alpha1.ConditionDegraded {
				continue
			}
			a.metrics.SetBindingCondition(v.Name, c.Type, c.Status == "True")
		}
	}
}

func (a *Agent) updateManagedGauge(ctx context.Context) {
	list, err := a.engine.List(ctx, map[string]string{docker.LabelManaged: "true"})
	if err != nil {
		return
	}
	counts := map[string]int{"healthy": 0, "unhealthy": 0, "starting": 0, "none": 0}
	for _, c := range list {
		switch {
		case strings.Contains(c.Status, "(healthy)"):
			counts["healthy"]++
		case strings.Contains(c.Status, "(unhealthy)"):
			counts["unhealthy"]++
		case strings.Contains(c.Status, "health: starting"):
			counts["starting"]++
		default:
			counts["none"]++
		}
	}
	a.metrics.SetManagedContainers(counts)
}

func (a *Agent) httpServer(addr string) (*http.Server, net.Listener, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.metrics.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintf(w, "ok %s\n", version.Get().Version)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	a.log.Info("serving /metrics, /healthz and /readyz", "listen", ln.Addr().String())
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln, nil
}

// webhookHandler serves POST /v1/refresh: a store's change notification
// enqueues that key at once ("use webhooks instead of polling").
func (a *Agent) webhookHandler(wh v1alpha1.WebhookSettings) (http.Handler, error) {
	if wh.Token == nil {
		return nil, errors.New("agent.watch.webhook.enabled needs agent.watch.webhook.token")
	}
	token, err := readValueSource(*wh.Token)
	if err != nil {
		return nil, fmt.Errorf("agent.watch.webhook.token: %w", err)
	}
	return sources.NewWebhookHandler(token, func(store, key string) bool {
		if _, ok := a.model.Store(store); !ok {
			return false
		}
		n := 0
		for _, k := range a.model.KeysOfStore(store) {
			if k.Key == key {
				a.fetchCtl.Enqueue(k)
				n++
			}
		}
		a.log.Info("webhook refresh", "store", store, "key", key, "enqueued", n)
		return true
	}, a.log.WithName("webhook"))
}

// readValueSource reads a fromEnv/fromFile value (one trailing newline trimmed).
func readValueSource(vs v1alpha1.ValueSource) (string, error) {
	var v string
	switch {
	case vs.FromEnv != "":
		v = os.Getenv(vs.FromEnv)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", vs.FromEnv)
		}
	case vs.FromFile != "":
		b, err := os.ReadFile(vs.FromFile)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", vs.FromFile, err)
		}
		v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("%s is empty", vs.FromFile)
		}
	default:
		return "", errors.New("set fromEnv or fromFile")
	}
	return v, nil
}

func (a *Agent) closeClients() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cancel := range a.watchCancel {
		cancel()
	}
	for _, c := range a.clients {
		_ = c.client.Close()
	}
	if a.state != nil {
		_ = a.state.Close()
	}
}
