package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/state"
	"github.com/dso-dev/dso/internal/version"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers/containerswap"
	"github.com/dso-dev/dso/reconcilers/swarmrotate"
)

// apiHandler serves the agent API (see internal/api).
func (a *Agent) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, 200, a.status(r.Context())) })
	mux.HandleFunc("GET /v1/stores", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, 200, a.storeViews()) })
	mux.HandleFunc("GET /v1/stores/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, s := range a.storeViews() {
			if s.Name == r.PathValue("name") {
				api.WriteJSON(w, 200, s)
				return
			}
		}
		api.WriteError(w, 404, fmt.Sprintf("store %q not found", r.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/bindings", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, a.bindingViews(r.Context(), "", false))
	})
	mux.HandleFunc("GET /v1/bindings/{name}", func(w http.ResponseWriter, r *http.Request) {
		vs := a.bindingViews(r.Context(), r.PathValue("name"), true)
		if len(vs) == 0 {
			api.WriteError(w, 404, fmt.Sprintf("binding %q not found", r.PathValue("name")))
			return
		}
		api.WriteJSON(w, 200, vs[0])
	})
	mux.HandleFunc("POST /v1/apply", a.handleApply)
	mux.HandleFunc("DELETE /v1/{kind}/{name}", a.handleDelete)
	mux.HandleFunc("POST /v1/rotate/{binding}", a.handleRotate)
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 {
			limit = 50
		}
		recs, err := a.history(r.URL.Query().Get("binding"), limit)
		if err != nil {
			api.WriteError(w, 500, err.Error())
			return
		}
		api.WriteJSON(w, 200, recs)
	})
	mux.HandleFunc("GET /v1/doctor", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, 200, a.doctor(r.Context())) })
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := a.state.Backup(w); err != nil {
			a.log.Error(err, "backup failed")
		}
	})
	return mux
}

func (a *Agent) history(binding string, limit int) ([]api.Rotation, error) {
	raw, err := a.state.Rotations(binding, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Rotation, 0, len(raw))
	for _, b := range raw {
		var r api.Rotation
		if json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// i64 converts a counter, saturating (a uint64 counter never gets there).
func i64(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func storeHealth(st cache.StoreStats) string {
	switch {
	case st.Breaker == cache.BreakerOpen:
		return "unavailable"
	case st.ConsecutiveFailures > 0:
		return "unhealthy"
	case st.Calls == 0:
		return "unknown"
	}
	return "healthy"
}

func (a *Agent) status(ctx context.Context) api.Status {
	v := version.Get()
	a.mu.Lock()
	cfgPath := a.bundle.Path
	a.mu.Unlock()
	cs := a.cache.Stats()
	s := api.Status{
		Runtime: api.Runtime{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion, StartedAt: a.started.UTC(),
			UptimeSeconds: time.Since(a.started).Seconds(), PID: os.Getpid(), ConfigFile: cfgPath,
			DockerAPI: a.dockerAPI, DockerEngine: a.dockerEngine, Ready: a.ready.Load()},
		Cache: api.CacheStatus{Entries: cs.Entries, Bytes: cs.Bytes, MaxBytes: cs.MaxBytes, Hits: i64(cs.Hits), Misses: i64(cs.Misses), HitRate: 100 * cs.HitRate()},
		Queues: []api.QueueStatus{
			{Name: a.fetchCtl.Name(), Depth: a.fetchCtl.Len()},
			{Name: a.swapCtl.Name(), Depth: a.swapCtl.Len()},
			{Name: a.swarmCtl.Name(), Depth: a.swarmCtl.Len()},
			{Name: a.orphanCtl.Name(), Depth: a.orphanCtl.Len()},
		},
		Providers: []api.ProviderStatus{},
		Observability: api.Observability{RecentRotations: []api.Rotation{}, ProviderLatency: []api.ProviderLatency{},
			HealthDiagnostics: []api.HealthDiagnostic{}, CircuitBreakers: []api.CircuitBreaker{}},
		Recovery: api.RecoveryStatus{IncompleteFound: []string{}, Actions: []api.RecoveryAction{}, Errors: []string{}},
	}
	if cs.MaxBytes > 0 {
		s.Cache.Utilization = 100 * float64(cs.Bytes) / float64(cs.MaxBytes)
	}
	names := make([]string, 0, len(cs.Stores))
	for n := range cs.Stores {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := cs.Stores[n]
		p := api.ProviderStatus{Store: n, Provider: st.Provider, Health: storeHealth(st), Circuit: st.Breaker.String(),
			LatencyMs: api.Latency{Min: ms(st.Latency.Min), Avg: ms(st.Latency.Avg), Max: ms(st.Latency.Max), P50: ms(st.Latency.P50), P99: ms(st.Latency.P99)},
			Calls:     i64(st.Calls), Errors: i64(st.Errors), LastError: a.lastStoreError(n)}
		s.Providers = append(s.Providers, p)
		s.Observability.ProviderLatency = append(s.Observability.ProviderLatency, api.ProviderLatency{Store: n, Min: p.LatencyMs.Min, Avg: p.LatencyMs.Avg, Max: p.LatencyMs.Max})
		cb := api.CircuitBreaker{Store: n, State: st.Breaker.String(), ConsecutiveFailures: st.ConsecutiveFailures}
		if !st.NextProbe.IsZero() {
			t := st.NextProbe.UTC()
			cb.NextProbe = &t
		}
		s.Observability.CircuitBreakers = append(s.Observability.CircuitBreakers, cb)
	}
	snap := a.rec.Snapshot()
	s.Rotations = api.RotationTotals{Succeeded: snap.Totals["succeeded"], InProgress: snap.InProgress}
	s.Rotations.Failed = snap.Totals["failed"] + snap.Totals["rolled-back"]
	s.Rotations.Total = s.Rotations.Succeeded + s.Rotations.Failed
	s.Rotations.SuccessRate = 100
	if s.Rotations.Total > 0 {
		s.Rotations.SuccessRate = 100 * float64(s.Rotations.Succeeded) / float64(s.Rotations.Total)
	}
	recent := snap.Rotations
	if len(recent) > 20 {
		recent = recent[len(recent)-20:]
	}
	for i := len(recent) - 1; i >= 0; i-- {
		r := recent[i]
		s.Observability.RecentRotations = append(s.Observability.RecentRotations, r)
		if r.Result != "succeeded" && len(r.Health) > 0 {
			s.Observability.HealthDiagnostics = append(s.Observability.HealthDiagnostics, api.HealthDiagnostic{TraceID: r.TraceID, Target: r.Target, Time: r.Finished, Reason: r.Reason, Probes: r.Health})
		}
	}
	s.Observability.LockContention = api.LockContention{MaxWaitMs: ms(snap.MaxLock), Over1s: snap.LockOver1s}
	if run, n := a.orphan.Last(); run != nil {
		t := run.Time.UTC()
		s.Recovery.LastRun = &t
		s.Recovery.Passes = n
		s.Recovery.IncompleteFound = append(s.Recovery.IncompleteFound, run.Found...)
		s.Recovery.Errors = append(s.Recovery.Errors, run.Errors...)
	}
	s.Recovery.Actions = append(s.Recovery.Actions, snap.Recovery...)
	for _, c := range a.informer.List() {
		if c.Labels[docker.LabelManaged] != "true" {
			continue
		}
		s.Containers.Managed++
		switch {
		case strings.Contains(c.Status, "(healthy)"):
			s.Containers.Healthy++
		case strings.Contains(c.Status, "(unhealthy)"):
			s.Containers.Unhealthy++
		case strings.Contains(c.Status, "health: starting"):
			s.Containers.Starting++
		default:
			s.Containers.NoHealth++
		}
	}
	return s
}

func (a *Agent) lastStoreError(store string) string {
	for _, k := range a.model.KeysOfStore(store) {
		if st, ok := a.fetch.Status(k); ok && st.LastError != "" {
			return st.LastError
		}
	}
	return ""
}

func (a *Agent) storeViews() []api.StoreView {
	cs := a.cache.Stats()
	a.mu.Lock()
	b := a.bundle
	a.mu.Unlock()
	out := []api.StoreView{}
	for _, s := range b.Stores {
		p, _ := providers.ProviderName(&s)
		st := cs.Stores[s.Name]
		v := api.StoreView{Name: s.Name, Provider: p, Source: b.Origins["secretstore/"+s.Name], Created: created(s.CreationTimestamp, b.Origins["secretstore/"+s.Name], a.started),
			Health: storeHealth(st), Circuit: st.Breaker.String(), Spec: s.Spec}
		cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Reachable", Message: "the store answers"}
		switch v.Health {
		case "unavailable", "unhealthy":
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Unavailable", a.lastStoreError(s.Name)
		case "unknown":
			cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, "NotContacted", "no call made yet"
		}
		v.Status.Conditions = []metav1.Condition{cond}
		out = append(out, v)
	}
	return out
}

// bindingViews computes each binding's status from what Docker and the
// cache show now (level-triggered: status is derived, not remembered).
func (a *Agent) bindingViews(ctx context.Context, only string, detail bool) []api.BindingView {
	a.mu.Lock()
	b := a.bundle
	a.mu.Unlock()
	snap := a.rec.Snapshot()
	containers := a.informer.List()
	out := []api.BindingView{}
	for _, bd := range b.Bindings {
		if only != "" && bd.Name != only {
			continue
		}
		v := api.BindingView{Name: bd.Name, Source: b.Origins["secretbinding/"+bd.Name], Created: created(bd.CreationTimestamp, b.Origins["secretbinding/"+bd.Name], a.started), Spec: bd.Spec}
		// Synced: every key fetched and fresh.
		synced, syncMsg := true, "every secret fetched"
		var lastSync time.Time
		for _, k := range bindingKeys(&bd) {
			st, ok := a.fetch.Status(k)
			switch {
			case !ok:
				synced, syncMsg = false, "not fetched yet: "+k.String()
			case st.LastError != "":
				synced, syncMsg = false, st.LastError
			}
			if ok && (lastSync.IsZero() || st.LastSuccess.Before(lastSync)) {
				lastSync = st.LastSuccess
			}
		}
		if !lastSync.IsZero() {
			t := metav1.NewTime(lastSync)
			v.Status.LastSyncTime = &t
		}
		// Targets: every selected container, its hash and phase.
		ready, readyMsg := true, "every target runs the current secrets"
		readyReason := ""
		if sw := bd.Spec.Target.Selector.Swarm; sw != nil {
			ts, ok, msg := a.serviceTarget(ctx, bd.Name, sw.Service, snap)
			if ts != nil {
				v.Status.Targets = append(v.Status.Targets, *ts)
			}
			if !ok {
				ready, readyMsg = false, msg
			}
			if !a.swarmManager() {
				readyReason = "NotSwarmManager"
			}
		}
		for _, c := range containers {
			name := strings.TrimPrefix(c.Names[0], "/")
			if IsSwapArtifact(name, c.Labels) || IsSwarmTask(c.Labels) || !Matches(bd.Spec.Target.Selector, name, c.Labels) {
				continue
			}
			ts := v1alpha1.TargetStatus{Container: name, Hash: short12(c.Labels[docker.LabelSecretHash])}
			phase := "Converged"
			if ins, err := a.engine.Inspect(ctx, c.ID); err == nil {
				if plan, sel, err := a.swap.Planner.Plan(ctx, ins); err != nil {
					phase = "Pending"
				} else if sel && plan.Hash != ins.Config.Labels[docker.LabelSecretHash] {
					phase = "Rotating"
				}
			}
			if reason, bad := snap.Degraded[bd.Name][name]; bad {
				phase = "Degraded"
				readyMsg = name + ": " + reason
			}
			for i := len(snap.Rotations) - 1; i >= 0; i-- {
				if snap.Rotations[i].Target == name && snap.Rotations[i].Result == "succeeded" {
					t := metav1.NewTime(snap.Rotations[i].Finished)
					ts.LastRotation = &t
					break
				}
			}
			if phase != "Converged" {
				ready = false
				if phase != "Degraded" {
					readyMsg = name + " is " + strings.ToLower(phase)
				}
			}
			ts.Phase = phase
			v.Status.Targets = append(v.Status.Targets, ts)
		}
		if len(v.Status.Targets) == 0 && ready {
			ready, readyMsg = false, "the selector matches no container"
		}
		now := metav1.Now()
		cond := func(t string, ok bool, reason, msg string) metav1.Condition {
			s := metav1.ConditionFalse
			if ok {
				s = metav1.ConditionTrue
			}
			return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: now}
		}
		_, degraded := snap.Degraded[bd.Name]
		if readyReason == "" {
			readyReason = map[bool]string{true: "Converged", false: "NotReady"}[ready && synced]
		}
		degradedReason, degradedMsg := "HealthGateFailed", "a rotation failed its health gate; the old container keeps serving"
		if bd.Spec.Target.Selector.Swarm != nil {
			degradedReason, degradedMsg = "SwarmUpdateFailed", "Swarm rolled back or paused the service update; the service keeps its old secrets"
			for _, reason := range snap.Degraded[bd.Name] {
				degradedMsg = reason
			}
		}
		if !degraded {
			degradedReason, degradedMsg = "AsExpected", "no failed rotation"
		}
		v.Status.Conditions = []metav1.Condition{
			cond(v1alpha1.ConditionReady, ready && synced, readyReason, readyMsg),
			cond(v1alpha1.ConditionSynced, synced, map[bool]string{true: "Fetched", false: "FetchFailed"}[synced], syncMsg),
			cond(v1alpha1.ConditionDegraded, degraded, degradedReason, degradedMsg),
		}
		if detail {
			if raw, err := a.state.Events(bd.Name, 20); err == nil {
				for _, e := range raw {
					var ev api.Event
					if json.Unmarshal(e, &ev) == nil {
						v.Events = append(v.Events, ev)
					}
				}
			}
			v.Rotations, _ = a.history(bd.Name, 10)
		}
		out = append(out, v)
	}
	return out
}

// serviceTarget is the status of a binding's Swarm service: its hash label
// and phase (nil when there is nothing to show), whether it is converged,
// and if not, why.
func (a *Agent) serviceTarget(ctx context.Context, binding, service string, snap Snapshot) (*v1alpha1.TargetStatus, bool, string) {
	if !a.swarmManager() {
		return nil, false, docker.NotManagerMessage
	}
	svc, err := a.engine.ServiceInspect(ctx, service)
	if docker.IsNotFound(err) {
		return nil, false, "Swarm service " + service + " not found"
	}
	if err != nil {
		return nil, false, "inspecting Swarm service " + service + ": " + err.Error()
	}
	target := swarmrotate.Target(service)
	ts := &v1alpha1.TargetStatus{Service: service, Hash: short12(svc.Spec.Labels[docker.LabelSecretHash])}
	phase := "Converged"
	if plan, sel, err := a.swarm.Planner.PlanService(ctx, service); err != nil {
		phase = "Pending"
	} else if sel && plan.Hash != svc.Spec.Labels[docker.LabelSecretHash] {
		phase = "Rotating"
	}
	if st := svc.UpdateStatus; st != nil && (st.State == swarm.UpdateStateUpdating || st.State == swarm.UpdateStateRollbackStarted) {
		phase = "Rotating"
	}
	msg := ""
	if reason, bad := snap.Degraded[binding][target]; bad {
		phase, msg = "Degraded", target+": "+reason
	} else if phase != "Converged" {
		msg = target + " is " + strings.ToLower(phase)
	}
	for i := len(snap.Rotations) - 1; i >= 0; i-- {
		if snap.Rotations[i].Target == target && snap.Rotations[i].Result == "succeeded" {
			t := metav1.NewTime(snap.Rotations[i].Finished)
			ts.LastRotation = &t
			break
		}
	}
	ts.Phase = phase
	return ts, phase == "Converged", msg
}

// created is an object's creation time: the applied time, else the
// modification time of the file that declares it, else the agent's start.
func created(ts metav1.Time, origin string, fallback time.Time) time.Time {
	if !ts.IsZero() {
		return ts.Time
	}
	file := origin
	if i := strings.LastIndexByte(origin, ':'); i > 0 {
		file = origin[:i]
	}
	if st, err := os.Stat(file); err == nil {
		return st.ModTime()
	}
	return fallback
}

func short12(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// handleApply stores objects (or, dry run, computes what would change).
func (a *Agent) handleApply(w http.ResponseWriter, r *http.Request) {
	var req api.ApplyRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		api.WriteError(w, 400, "bad request: "+err.Error())
		return
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	fileBundle := a.fileBundle
	a.mu.Unlock()
	applied, err := a.loadApplied()
	if err != nil {
		api.WriteError(w, 500, err.Error())
		return
	}
	next := applied.clone()
	var items []api.ApplyItem
	for i, raw := range req.Objects {
		var tm metav1.TypeMeta
		if err := json.Unmarshal(raw, &tm); err != nil {
			api.WriteError(w, 400, fmt.Sprintf("objects[%d]: %v", i, err))
			return
		}
		switch tm.Kind {
		case v1alpha1.KindSecretStore:
			s, code, err := decodeApplied[v1alpha1.SecretStore](raw, i, "secretstore", fileBundle.Origins)
			if err != nil {
				api.WriteError(w, code, err.Error())
				return
			}
			s.Status = v1alpha1.SecretStoreStatus{}
			next.stores[s.Name] = s
			items = append(items, api.ApplyItem{Kind: "secretstore", Name: s.Name})
		case v1alpha1.KindSecretBinding:
			b, code, err := decodeApplied[v1alpha1.SecretBinding](raw, i, "secretbinding", fileBundle.Origins)
			if err != nil {
				api.WriteError(w, code, err.Error())
				return
			}
			b.Status = v1alpha1.SecretBindingStatus{}
			next.bindings[b.Name] = b
			items = append(items, api.ApplyItem{Kind: "secretbinding", Name: b.Name})
		default:
			api.WriteError(w, 400, fmt.Sprintf("objects[%d]: kind %q cannot be applied: use SecretStore or SecretBinding", i, tm.Kind))
			return
		}
	}
	merged, err := mergeBundles(fileBundle, next)
	if err != nil {
		api.WriteError(w, 400, err.Error())
		return
	}
	// What would change, and which containers would rotate.
	rotates := a.wouldRotate(r.Context(), merged)
	for i := range items {
		it := &items[i]
		var before, after []byte
		if it.Kind == "secretstore" {
			if o, ok := applied.stores[it.Name]; ok {
				before = canonical(o.Spec)
			}
			after = canonical(next.stores[it.Name].Spec)
		} else {
			if o, ok := applied.bindings[it.Name]; ok {
				before = canonical(o.Spec)
			}
			after = canonical(next.bindings[it.Name].Spec)
			it.Rotates = rotates[it.Name]
		}
		switch {
		case before == nil:
			it.Action = "created"
			it.Diff = lineDiff(nil, after)
		case bytes.Equal(before, after):
			it.Action = "unchanged"
			it.Rotates = nil
		default:
			it.Action = "configured"
			it.Diff = lineDiff(before, after)
		}
	}
	if req.DryRun {
		api.WriteJSON(w, 200, api.ApplyResult{Items: items})
		return
	}
	for _, it := range items {
		if it.Action == "unchanged" {
			continue
		}
		var obj any
		kind := v1alpha1.KindSecretStore
		if it.Kind == "secretstore" {
			s := next.stores[it.Name]
			if s.CreationTimestamp.IsZero() {
				s.CreationTimestamp = metav1.Now()
			}
			obj = s
		} else {
			kind = v1alpha1.KindSecretBinding
			b := next.bindings[it.Name]
			if b.CreationTimestamp.IsZero() {
				b.CreationTimestamp = metav1.Now()
			}
			obj = b
		}
		raw, _ := json.Marshal(obj)
		if _, err := a.state.PutObject(kind, it.Name, raw); err != nil {
			api.WriteError(w, 500, err.Error())
			return
		}
		for _, bnd := range []string{it.Name} {
			if it.Kind == "secretbinding" {
				persister{a.state, a.log}.event(api.Event{Time: time.Now(), Binding: bnd, Type: "Normal", Reason: "Applied", Message: "secretbinding/" + bnd + " " + it.Action})
			}
		}
	}
	if err := a.apply(r.Context(), merged); err != nil {
		api.WriteError(w, 400, err.Error())
		return
	}
	a.log.Info("objects applied", "items", len(items))
	api.WriteJSON(w, 200, api.ApplyResult{Items: items})
}

// appliable is a SecretStore or SecretBinding pointer.
type appliable[T any] interface {
	*T
	Default()
	Validate() field.ErrorList
	GetName() string
}

// decodeApplied decodes one applied object strictly, defaults and validates
// it, and refuses names declared in a config file. On error it returns the
// HTTP status to answer with.
func decodeApplied[T any, PT appliable[T]](raw []byte, i int, kind string, origins map[string]string) (T, int, error) {
	var obj T
	p := PT(&obj)
	if err := strictJSON(raw, p); err != nil {
		return obj, 400, fmt.Errorf("objects[%d] (%s): %w", i, kind, err)
	}
	p.Default()
	if errs := p.Validate(); len(errs) > 0 {
		return obj, 400, fmt.Errorf("%s/%s: %s", kind, p.GetName(), fieldErrors(errs))
	}
	if o, ok := origins[kind+"/"+p.GetName()]; ok {
		return obj, 409, fmt.Errorf("%s/%s is declared in %s: edit it there", kind, p.GetName(), o)
	}
	return obj, 0, nil
}

func (a *Agent) handleDelete(w http.ResponseWriter, r *http.Request) {
	kind, name := r.PathValue("kind"), r.PathValue("name")
	var k, key string
	switch kind {
	case "stores", "store", "secretstore", "secretstores":
		k, key = v1alpha1.KindSecretStore, "secretstore/"+name
	case "bindings", "binding", "secretbinding", "secretbindings":
		k, key = v1alpha1.KindSecretBinding, "secretbinding/"+name
	default:
		api.WriteError(w, 400, fmt.Sprintf("cannot delete %q: use store or binding", kind))
		return
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	fileBundle := a.fileBundle
	a.mu.Unlock()
	if o, ok := fileBundle.Origins[key]; ok {
		api.WriteError(w, 409, fmt.Sprintf("%s is declared in %s: remove it there", key, o))
		return
	}
	applied, err := a.loadApplied()
	if err != nil {
		api.WriteError(w, 500, err.Error())
		return
	}
	if k == v1alpha1.KindSecretStore {
		delete(applied.stores, name)
	} else {
		delete(applied.bindings, name)
	}
	merged, err := mergeBundles(fileBundle, applied)
	if err != nil {
		api.WriteError(w, 409, err.Error())
		return
	}
	existed, err := a.state.DeleteObject(k, name)
	if err != nil {
		api.WriteError(w, 500, err.Error())
		return
	}
	if !existed {
		api.WriteError(w, 404, key+" not found")
		return
	}
	if err := a.apply(r.Context(), merged); err != nil {
		api.WriteError(w, 500, err.Error())
		return
	}
	api.WriteJSON(w, 200, api.DeleteResult{Kind: strings.ToLower(k), Name: name, Deleted: true})
}

// handleRotate forces a fetch of the binding's secrets and a rollout of its
// targets, streaming progress as newline-delimited JSON.
func (a *Agent) handleRotate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("binding")
	var req api.RotateRequest
	_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req)
	var bd *v1alpha1.SecretBinding
	for _, b := range a.model.Bindings() {
		if b.Name == name {
			bd = b
		}
	}
	if bd == nil {
		api.WriteError(w, 404, fmt.Sprintf("binding %q not found", name))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	emit := func(p api.RotateProgress) {
		p.Time = time.Now().UTC()
		b, _ := json.Marshal(p)
		_, _ = w.Write(append(b, '\n'))
		if flusher != nil {
			flusher.Flush()
		}
	}
	for _, k := range bindingKeys(bd) {
		if _, err := a.cache.Refresh(r.Context(), k.Store, providers.Ref{Key: k.Key, Version: k.Version}); err != nil {
			emit(api.RotateProgress{Phase: "failed", Message: err.Error()})
			emit(api.RotateProgress{Phase: "done", Message: "fetch failed"})
			return
		}
	}
	// Only passes begun after the refresh read its values: a rotation or a
	// no-op pass begun while it was in flight may have used the old ones.
	start := time.Now()
	var targets []string
	for _, c := range a.containers(r.Context()) {
		n := strings.TrimPrefix(c.Names[0], "/")
		if !IsSwapArtifact(n, c.Labels) && Matches(bd.Spec.Target.Selector, n, c.Labels) {
			targets = append(targets, n)
		}
	}
	if sw := bd.Spec.Target.Selector.Swarm; sw != nil {
		if !a.swarmManager() {
			emit(api.RotateProgress{Target: swarmrotate.Target(sw.Service), Phase: "failed", Message: docker.NotManagerMessage})
			emit(api.RotateProgress{Phase: "done", Message: "0 targets queued"})
			return
		}
		targets = append(targets, swarmrotate.Target(sw.Service))
	}
	sort.Strings(targets)
	for _, t := range targets {
		a.enqueueTarget(t)
		emit(api.RotateProgress{Target: t, Phase: "queued"})
	}
	if !req.Wait {
		emit(api.RotateProgress{Phase: "done", Message: fmt.Sprintf("%d targets queued", len(targets))})
		return
	}
	deadline := time.Now().Add(2*a.swap.Timeout + 2*time.Minute)
	pending := map[string]bool{}
	for _, t := range targets {
		pending[t] = true
	}
	announced := map[string]bool{}
	for len(pending) > 0 && time.Now().Before(deadline) && r.Context().Err() == nil {
		snap := a.rec.Snapshot()
		for t := range pending {
			var rec *containerswap.Rotation
			for i := len(snap.Rotations) - 1; i >= 0; i-- {
				if snap.Rotations[i].Target == t && !snap.Rotations[i].Started.Before(start) {
					rec = &snap.Rotations[i]
					break
				}
			}
			if rec != nil {
				phase := "succeeded"
				msg := rec.Duration().Round(time.Millisecond).String()
				if rec.Result != "succeeded" {
					phase, msg = "failed", rec.Reason
				}
				emit(api.RotateProgress{Target: t, Phase: phase, TraceID: rec.TraceID, Message: msg})
				delete(pending, t)
				continue
			}
			if a.swap.ConvergedSince(t, start) {
				// A pass begun after the refresh found nothing to change
				// (also for premounted targets, which carry no hash label).
				emit(api.RotateProgress{Target: t, Phase: "unchanged", Message: "already runs the current secrets"})
				delete(pending, t)
				continue
			}
			var have, want string
			var sel bool
			var err error
			if svc, ok := strings.CutPrefix(t, swarmrotate.TargetPrefix); ok {
				var s swarm.Service
				if s, err = a.engine.ServiceInspect(r.Context(), svc); err != nil {
					continue
				}
				var plan swarmrotate.Plan
				plan, sel, err = a.swarm.Planner.PlanService(r.Context(), svc)
				have, want = s.Spec.Labels[docker.LabelSecretHash], plan.Hash
			} else {
				ins, ierr := a.engine.Inspect(r.Context(), t)
				if ierr != nil {
					continue
				}
				var plan containerswap.Plan
				plan, sel, err = a.swap.Planner.Plan(r.Context(), ins)
				have, want = ins.Config.Labels[docker.LabelSecretHash], plan.Hash
			}
			if err == nil && sel && want == have && a.swapCtl.Len() == 0 && a.swarmCtl.Len() == 0 && snap.InProgress == 0 {
				emit(api.RotateProgress{Target: t, Phase: "unchanged", Message: "already runs the current secrets"})
				delete(pending, t)
			} else if !announced[t] && snap.InProgress > 0 {
				announced[t] = true
				emit(api.RotateProgress{Target: t, Phase: "rotating"})
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for t := range pending {
		emit(api.RotateProgress{Target: t, Phase: "failed", Message: "timed out waiting for the rotation"})
	}
	emit(api.RotateProgress{Phase: "done"})
}

// doctor runs the checks only the agent can make well: each store's
// connectivity and auth with the agent's own credentials, the tmpfs, the
// state store.
func (a *Agent) doctor(ctx context.Context) []api.Check {
	var out []api.Check
	a.mu.Lock()
	clients := make(map[string]storeClient, len(a.clients))
	for k, v := range a.clients {
		clients[k] = v
	}
	spec := a.bundle.Agent.Spec
	a.mu.Unlock()
	names := make([]string, 0, len(clients))
	for n := range clients {
		names = append(names, n)
	}
	sort.Strings(names)
	cs := a.cache.Stats()
	for _, n := range names {
		sc := clients[n]
		p, _ := providers.ProviderName(&v1alpha1.SecretStore{Spec: sc.spec})
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		err := sc.client.Validate(vctx)
		cancel()
		c := api.Check{ID: "provider:" + n, Name: "provider " + n, Status: "ok", Detail: fmt.Sprintf("%s store reachable and authenticated (%s)", p, time.Since(start).Round(time.Millisecond)),
			Extra: map[string]string{"provider": p, "circuit": cs.Stores[n].Breaker.String(), "calls": strconv.FormatUint(cs.Stores[n].Calls, 10), "latency_avg": cs.Stores[n].Latency.Avg.String()}}
		if err != nil {
			word := "unavailable"
			if providers.KindOf(err) == providers.KindPermissionDenied || providers.KindOf(err) == providers.KindInvalidConfig {
				word = "unhealthy"
			}
			c.Status, c.Detail = "fail", fmt.Sprintf("%s store %s: %v", p, word, err)
			c.Remediation = "check the store's address, network path and credentials (docker dso config show), then docker dso system restart"
		}
		out = append(out, c)
	}
	dir := spec.Agent.Delivery.Dir
	if ok, err := delivery.IsTmpfs(dir); err != nil || !ok {
		out = append(out, api.Check{ID: "tmpfs", Name: "secrets tmpfs", Status: "fail", Detail: fmt.Sprintf("%s is not a tmpfs", dir), Remediation: "restart the agent as root so it can mount the tmpfs"})
	} else {
		out = append(out, api.Check{ID: "tmpfs", Name: "secrets tmpfs", Status: "ok", Detail: dir + " is a tmpfs"})
	}
	// state: the store opens and the state dir has room.
	c := api.Check{ID: "state", Name: "state dir", Status: "ok"}
	st, err := a.state.Stats()
	var fs syscall.Statfs_t
	switch {
	case err != nil:
		c.Status, c.Detail, c.Remediation = "fail", "state store: "+err.Error(), "check "+spec.State.Dir+" (permissions, disk)"
	case syscall.Statfs(spec.State.Dir, &fs) != nil:
		c.Detail = fmt.Sprintf("%s (%d bytes)", a.state.Path(), st.SizeBytes)
	default:
		free := float64(fs.Bavail) / float64(max(fs.Blocks, 1)) * 100
		c.Detail = fmt.Sprintf("%s (%d bytes), %.0f%% free", a.state.Path(), st.SizeBytes, free)
		c.Extra = map[string]string{"path": a.state.Path(), "size_bytes": strconv.FormatInt(st.SizeBytes, 10), "free_percent": fmt.Sprintf("%.1f", free)}
		if free < 10 {
			c.Status, c.Remediation = "warn", "free disk space under "+spec.State.Dir
		}
	}
	out = append(out, c)
	return out
}

// ---- applied objects --------------------------------------------------

type objectSet struct {
	stores   map[string]v1alpha1.SecretStore
	bindings map[string]v1alpha1.SecretBinding
}

func (o objectSet) clone() objectSet {
	n := objectSet{stores: map[string]v1alpha1.SecretStore{}, bindings: map[string]v1alpha1.SecretBinding{}}
	for k, v := range o.stores {
		n.stores[k] = v
	}
	for k, v := range o.bindings {
		n.bindings[k] = v
	}
	return n
}

func (a *Agent) loadApplied() (objectSet, error) {
	stores, err := listApplied[v1alpha1.SecretStore](a.state, v1alpha1.KindSecretStore)
	if err != nil {
		return objectSet{}, err
	}
	bindings, err := listApplied[v1alpha1.SecretBinding](a.state, v1alpha1.KindSecretBinding)
	if err != nil {
		return objectSet{}, err
	}
	return objectSet{stores: stores, bindings: bindings}, nil
}

// listApplied decodes the applied objects of one kind from the state store.
func listApplied[T any](st *state.Store, kind string) (map[string]T, error) {
	raw, err := st.ListObjects(kind)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(raw))
	for n, b := range raw {
		var obj T
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("state store: %s/%s: %w", strings.ToLower(kind), n, err)
		}
		out[n] = obj
	}
	return out, nil
}

// mergeBundles adds applied objects to the config-file bundle. Names
// declared in files win (apply refuses them); references must resolve.
func mergeBundles(file *config.Bundle, applied objectSet) (*config.Bundle, error) {
	m := *file
	m.Stores = append([]v1alpha1.SecretStore(nil), file.Stores...)
	m.Bindings = append([]v1alpha1.SecretBinding(nil), file.Bindings...)
	m.Origins = map[string]string{}
	for k, v := range file.Origins {
		m.Origins[k] = v
	}
	for _, n := range sortedMapKeys(applied.stores) {
		if _, ok := m.Origins["secretstore/"+n]; ok {
			continue
		}
		m.Stores = append(m.Stores, applied.stores[n])
		m.Origins["secretstore/"+n] = "applied"
	}
	for _, n := range sortedMapKeys(applied.bindings) {
		if _, ok := m.Origins["secretbinding/"+n]; ok {
			continue
		}
		m.Bindings = append(m.Bindings, applied.bindings[n])
		m.Origins["secretbinding/"+n] = "applied"
	}
	stores := map[string]bool{}
	for _, s := range m.Stores {
		stores[s.Name] = true
	}
	for _, b := range m.Bindings {
		if !stores[b.Spec.StoreRef.Name] {
			return nil, fmt.Errorf("secretbinding/%s: spec.storeRef.name: store %q is not declared (apply it first)", b.Name, b.Spec.StoreRef.Name)
		}
	}
	return &m, nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wouldRotate plans every container (and, on a Swarm manager, every bound
// service) against the merged declarations and
// returns, per binding, the containers whose secret hash would change.
func (a *Agent) wouldRotate(ctx context.Context, merged *config.Bundle) map[string][]string {
	m := NewModel(merged.Agent.Spec.Agent.Watch.PollingInterval.D())
	m.Set(merged.Stores, merged.Bindings, merged.Agent.Spec.Agent.Watch.PollingInterval.D())
	cur := a.swap.Planner.(*Planner)
	p := &Planner{Model: m, Values: a.cache, HostKey: cur.HostKey, Timeout: cur.Timeout}
	out := map[string][]string{}
	for _, c := range a.containers(ctx) {
		name := strings.TrimPrefix(c.Names[0], "/")
		if IsSwapArtifact(name, c.Labels) {
			continue
		}
		ins, err := a.engine.Inspect(ctx, c.ID)
		if err != nil {
			continue
		}
		plan, sel, err := p.Plan(ctx, ins)
		if err != nil || !sel || plan.Hash == ins.Config.Labels[docker.LabelSecretHash] {
			continue
		}
		for _, b := range plan.Bindings {
			out[b] = append(out[b], name)
		}
	}
	if a.swarmManager() {
		for _, svc := range m.Services() {
			s, err := a.engine.ServiceInspect(ctx, svc)
			if err != nil {
				continue
			}
			plan, sel, err := p.PlanService(ctx, svc)
			if err != nil || !sel || plan.Hash == s.Spec.Labels[docker.LabelSecretHash] {
				continue
			}
			for _, b := range plan.Bindings {
				out[b] = append(out[b], swarmrotate.Target(svc))
			}
		}
	}
	return out
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// fieldErrors renders validation errors as "path: detail" (never a value).
func fieldErrors(errs field.ErrorList) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, v1alpha1.FieldErrorMessage(e))
	}
	return strings.Join(parts, "; ")
}

func canonical(v any) []byte {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// lineDiff is a small line diff for `docker dso diff`: lines only in the
// old text get "-", only in the new "+", common lines " " (LCS based).
func lineDiff(before, after []byte) string {
	a := splitLines(before)
	b := splitLines(after)
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			sb.WriteString("  " + a[i] + "\n")
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+ " + b[j] + "\n")
			j++
		default:
			sb.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return sb.String()
}

func splitLines(b []byte) []string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
