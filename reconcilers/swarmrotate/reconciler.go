package swarmrotate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/reconcilers"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// Strategy is the rotation strategy recorded for Swarm services (history,
// dso_rotations_total{strategy="swarm"}).
const Strategy = "swarm"

// TargetPrefix starts a service's target name in rotation records, events
// and status ("service/web"): container names cannot contain a slash, so a
// service never collides with a container of the same name.
const TargetPrefix = "service/"

// Target is the record name of service.
func Target(service string) string { return TargetPrefix + service }

// Step names (logs, history, dso_rotation_step_duration_seconds).
const (
	StepSecrets = "secrets"        // create (or reuse) the versioned Docker secrets
	StepUpdate  = "service-update" // hand the new spec to Swarm
	StepRollout = "rollout"        // Swarm's rolling update, until its UpdateStatus settles
	StepCleanup = "cleanup"        // remove older dso secrets no spec references
)

// File is one delivered file and the binding that delivers it.
type File struct {
	Binding string
	delivery.File
}

// Plan is the desired state of one service.
type Plan struct {
	// Bindings that select the service, sorted.
	Bindings []string
	// Files, sorted by path.
	Files []File
	// Hash is the desired dso.dev/secret-hash label (an HMAC).
	Hash string
	// Timeout bounds the wait for one task of the rolling update (the
	// bindings' healthTimeout, else agent.rotation.timeout).
	Timeout time.Duration
}

// Planner computes a service's plan from its bindings and the secret cache.
type Planner interface {
	// PlanService returns the plan of the named service; selected is false
	// when no binding selects it.
	PlanService(ctx context.Context, service string) (plan Plan, selected bool, err error)
}

// Reconciler converges Swarm services. Engine, Planner and Log are required.
type Reconciler struct {
	Engine  docker.Swarm
	Planner Planner
	Log     logr.Logger
	// Observer gets the rotation records (history, metrics, conditions):
	// the same observers as container swaps.
	Observer containerswap.Observer
	// Slots bounds concurrent rotations (shared with containerswap: it is
	// agent.rotation.parallelism). Nil: unlimited.
	Slots chan struct{}
	// Timeout is agent.rotation.timeout, the default per-task bound.
	Timeout time.Duration
	// AgentID is written on the service (dso.dev/agent): a service another
	// agent manages is left alone, since two agents (two host keys) would
	// each see the other's hash as stale and rotate forever.
	AgentID string
	// PollInterval of the rollout wait (default 500ms).
	PollInterval time.Duration
	// Recheck is how soon a paused or foreign service is looked at again
	// (default 30s), and an in-progress update (a tenth of it).
	Recheck time.Duration
	// RolloutTimeout, when set, replaces the computed rollout bound (tests).
	RolloutTimeout time.Duration
	// Fault is called at named crash points (tests). Nil: no-op.
	Fault func(point string)
	// Now is the clock (default time.Now).
	Now func() time.Time

	refusedMu sync.Mutex
	refused   map[string]refusal // service -> the plan a terminal error refused
}

// refusal is a plan refused by a terminal error, and when.
type refusal struct {
	hash string
	at   time.Time
}

// refusalRetry is how long a refused plan is left alone: the cause (a
// foreign secret, a clashing path) may be fixed outside dso, which changes
// no hash, so the plan is tried again after this long.
const refusalRetry = 10 * time.Minute

// refusedPlan reports whether the plan hash was refused by a terminal error
// (a clashing secret path, a foreign secret of that name): the periodic
// recheck must not start, record and notify the same failed rotation every
// few seconds. A new plan (a changed value or binding) is tried again at
// once, the same plan after refusalRetry (its cause may have been fixed).
func (r *Reconciler) refusedPlan(service, hash string) bool {
	r.refusedMu.Lock()
	defer r.refusedMu.Unlock()
	ref, ok := r.refused[service]
	return ok && ref.hash == hash && r.now().Sub(ref.at) < refusalRetry
}

func (r *Reconciler) setRefused(service, hash string) {
	r.refusedMu.Lock()
	defer r.refusedMu.Unlock()
	if hash == "" {
		delete(r.refused, service)
		return
	}
	if r.refused == nil {
		r.refused = map[string]refusal{}
	}
	r.refused[service] = refusal{hash: hash, at: r.now()}
}

// ErrUpdateFailed wraps an update Swarm rolled back or paused.
var ErrUpdateFailed = errors.New("swarm update failed")

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) observer() containerswap.Observer {
	if r.Observer != nil {
		return r.Observer
	}
	return containerswap.NopObserver{}
}

func (r *Reconciler) fault(point string) {
	if r.Fault != nil {
		r.Fault(point)
	}
}

func (r *Reconciler) recheck() time.Duration {
	if r.Recheck > 0 {
		return r.Recheck
	}
	return 30 * time.Second
}

func (r *Reconciler) pollInterval() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return 500 * time.Millisecond
}

// Reconcile converges the service named service.
func (r *Reconciler) Reconcile(ctx context.Context, service string) (reconcilers.Result, error) {
	plan, selected, err := r.Planner.PlanService(ctx, service)
	if err != nil || !selected {
		return reconcilers.Result{}, err
	}
	target := Target(service)
	svc, err := r.Engine.ServiceInspect(ctx, service)
	if docker.IsNotFound(err) {
		// Nothing to converge (the periodic relist looks again), but the
		// secrets dso made for a removed service are no one's any more.
		r.setRefused(service, "")
		return r.cleanup(ctx, r.Log.WithValues("service", service), swarm.Service{}, service)
	}
	if err != nil {
		return reconcilers.Result{}, err
	}
	if svc.Spec.Name != service {
		return reconcilers.Result{}, nil // inspect answered an id prefix
	}
	if owner := svc.Spec.Labels[docker.LabelAgent]; owner != "" && r.AgentID != "" && owner != r.AgentID {
		reason := fmt.Sprintf("service %s is managed by another dso agent (%s=%s): declare a Swarm binding on one manager's agent only", service, docker.LabelAgent, owner)
		r.observer().Degraded(plan.Bindings, target, reason, true)
		return reconcilers.Result{RequeueAfter: r.recheck()}, nil
	}
	actual := svc.Spec.Labels[docker.LabelSecretHash]
	if st := svc.UpdateStatus; st != nil {
		switch st.State {
		case swarm.UpdateStateUpdating, swarm.UpdateStateRollbackStarted:
			// An update is rolling (ours, before a crash, or anyone's):
			// never start a second one on top of it.
			return reconcilers.Result{RequeueAfter: r.recheck() / 10}, nil
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
			paused := actual == plan.Hash || prevHash(svc) == plan.Hash
			if !paused && st.State == swarm.UpdateStateRollbackPaused {
				// The rollback put the old spec back (PreviousSpec
				// cleared) before it paused: the plan it rolled back is
				// recognised as after a completed rollback.
				if paused, err = r.rolledBack(ctx, svc, service, plan.Hash); err != nil {
					return reconcilers.Result{}, err
				}
			}
			if paused {
				r.observer().Degraded(plan.Bindings, target, "Swarm paused the update: "+st.Message, true)
				return reconcilers.Result{RequeueAfter: r.recheck()}, nil
			}
		case swarm.UpdateStateRollbackCompleted:
			if actual != plan.Hash {
				tried, err := r.rolledBack(ctx, svc, service, plan.Hash)
				if err != nil {
					return reconcilers.Result{}, err
				}
				if tried {
					// Swarm already rolled this very plan back: retrying
					// would roll bad tasks again. A new value is a new plan.
					r.observer().Degraded(plan.Bindings, target, "Swarm rolled the update back: "+st.Message, true)
					return reconcilers.Result{}, nil
				}
			}
		}
	}
	if actual == plan.Hash && carries(svc.Spec, plan) {
		r.setRefused(service, "")
		r.observer().Degraded(plan.Bindings, target, "", false)
		// Converged. Older secrets left by an interrupted cleanup go now.
		return r.cleanup(ctx, r.Log.WithValues("service", service), svc, service)
	}
	if r.refusedPlan(service, plan.Hash) {
		return reconcilers.Result{}, nil // still refused; Degraded says why
	}
	if r.Slots != nil {
		select {
		case r.Slots <- struct{}{}:
			defer func() { <-r.Slots }()
		case <-ctx.Done():
			return reconcilers.Result{}, ctx.Err()
		}
	}
	return r.rotate(ctx, service, svc, plan)
}

// rolledBack reports whether the update Swarm rolled back was this plan's:
// Swarm keeps no copy of a rolled-back spec (PreviousSpec is cleared), but
// the plan's secrets stay behind, unreferenced, created before that update
// started. (A secret created after it is a crashed run's, not yet tried.)
func (r *Reconciler) rolledBack(ctx context.Context, svc swarm.Service, service, hash string) (bool, error) {
	st := svc.UpdateStatus
	if st == nil || st.StartedAt == nil {
		return false, nil
	}
	list, err := r.Engine.SecretList(ctx, map[string]string{docker.LabelManaged: "true", docker.LabelService: service, docker.LabelSecretHash: hash})
	if err != nil {
		return false, fmt.Errorf("list secrets: %w", err)
	}
	used := map[string]bool{}
	for _, ref := range secretRefs(svc.Spec) {
		used[ref.SecretID] = true
	}
	for _, s := range list {
		if !used[s.ID] && !s.CreatedAt.After(*st.StartedAt) {
			return true, nil
		}
	}
	return false, nil
}

// carries reports whether spec references every secret of plan at its
// path: the hash label alone is not enough when someone removed a
// reference by hand (docker service update --secret-rm).
func carries(spec swarm.ServiceSpec, plan Plan) bool {
	have := map[string]string{}
	for _, ref := range secretRefs(spec) {
		have[ref.SecretName] = secretTarget(ref)
	}
	for i, name := range SecretNames(plan) {
		if t, ok := have[name]; !ok || t != path.Clean(plan.Files[i].Path) {
			return false
		}
	}
	return true
}

func prevHash(svc swarm.Service) string {
	if svc.PreviousSpec == nil {
		return ""
	}
	return svc.PreviousSpec.Labels[docker.LabelSecretHash]
}

type rotation struct {
	*containerswap.Rotation
	log      logr.Logger
	stepFrom time.Time
}

func (r *Reconciler) step(rot *rotation, name string, err error) {
	d := r.now().Sub(rot.stepFrom)
	st := containerswap.StepTiming{Step: name, Duration: d}
	if err != nil {
		st.Error = err.Error()
	}
	rot.Steps = append(rot.Steps, st)
	rot.stepFrom = r.now()
	if err != nil {
		rot.log.Info(name+" step failed", "step", name, "duration_ms", d.Milliseconds(), "error", err.Error())
	} else {
		rot.log.V(1).Info(name+" step done", "step", name, "duration_ms", d.Milliseconds())
	}
}

func newTraceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *Reconciler) rotate(ctx context.Context, service string, svc swarm.Service, plan Plan) (reconcilers.Result, error) {
	trace := newTraceID()
	rot := &rotation{Rotation: &containerswap.Rotation{
		TraceID: trace, Target: Target(service), Bindings: plan.Bindings, Strategy: Strategy,
		OldID: svc.ID, NewID: svc.ID, Started: r.now(), FromHash: svc.Spec.Labels[docker.LabelSecretHash], ToHash: plan.Hash,
	}}
	rot.stepFrom = rot.Started
	rot.log = r.Log.WithValues("trace_id", trace, "service", service, "binding", strings.Join(plan.Bindings, ","), "strategy", Strategy)
	r.observer().RotationStarted(rot.Rotation)
	rot.log.Info("rotation started", "from_hash", short(rot.FromHash), "to_hash", short(plan.Hash))

	res, err := r.run(ctx, rot, service, svc, plan)
	rot.Finished = r.now()
	if err != nil {
		if rot.Result == "" {
			rot.Result = "failed"
		}
		rot.Reason = err.Error()
		rot.log.Error(err, "rotation failed", "reason", err.Error(), "duration_ms", rot.Duration().Milliseconds())
		if reconcilers.IsTerminal(err) {
			r.setRefused(service, plan.Hash)
		}
		if errors.Is(err, ErrUpdateFailed) || reconcilers.IsTerminal(err) {
			r.observer().Degraded(plan.Bindings, rot.Target, err.Error(), true)
		}
	} else {
		rot.Result = "succeeded"
		rot.log.Info("rotation complete", "duration_ms", rot.Duration().Milliseconds(), "duration", rot.Duration().String())
		r.observer().Degraded(plan.Bindings, rot.Target, "", false)
	}
	r.observer().RotationFinished(rot.Rotation)
	return res, err
}

func (r *Reconciler) run(ctx context.Context, rot *rotation, service string, svc swarm.Service, plan Plan) (reconcilers.Result, error) {
	// secrets: one per file, reused when a crashed run already made it.
	existing, err := r.Engine.SecretList(ctx, map[string]string{docker.LabelManaged: "true", docker.LabelService: service})
	if err != nil {
		r.step(rot, StepSecrets, err)
		return reconcilers.Result{}, fmt.Errorf("list secrets: %w", err)
	}
	byName := map[string]swarm.Secret{}
	for _, s := range existing {
		byName[s.Spec.Name] = s
	}
	names := SecretNames(plan)
	refs := make([]*swarm.SecretReference, 0, len(plan.Files))
	for i, f := range plan.Files {
		name := names[i]
		id := ""
		if s, ok := byName[name]; ok {
			if s.Spec.Labels[docker.LabelSecretHash] != plan.Hash || s.Spec.Labels[docker.LabelBinding] != f.Binding {
				err := fmt.Errorf("secret %s exists but was not made for this plan (binding %s): remove it", name, s.Spec.Labels[docker.LabelBinding])
				r.step(rot, StepSecrets, err)
				return reconcilers.Result{}, reconcilers.TerminalError(err)
			}
			id = s.ID
		} else {
			labels := map[string]string{
				docker.LabelManaged: "true", docker.LabelBinding: f.Binding, docker.LabelSecretHash: plan.Hash,
				docker.LabelService: service, docker.LabelRotation: rot.TraceID,
			}
			if r.AgentID != "" {
				labels[docker.LabelAgent] = r.AgentID
			}
			id, err = r.Engine.SecretCreate(ctx, name, labels, f.Value)
			if err != nil {
				r.step(rot, StepSecrets, err)
				return reconcilers.Result{}, err
			}
			r.fault("after-secret-create")
		}
		refs = append(refs, &swarm.SecretReference{
			SecretID: id, SecretName: name,
			File: &swarm.SecretReferenceFileTarget{Name: f.Path, UID: ownerID(f.UID), GID: ownerID(f.GID), Mode: f.Mode},
		})
	}
	r.step(rot, StepSecrets, nil)

	// service-update: this service's dso references replaced, every other
	// reference kept, the rest of the spec (update_config too) untouched.
	ours := map[string]bool{}
	for _, s := range existing {
		ours[s.ID] = true
	}
	for _, ref := range refs {
		ours[ref.SecretID] = true
	}
	spec, err := withSecrets(svc.Spec, ours, refs)
	if err != nil {
		r.step(rot, StepUpdate, err)
		return reconcilers.Result{}, reconcilers.TerminalError(err)
	}
	spec.Labels[docker.LabelSecretHash] = plan.Hash
	spec.Labels[docker.LabelBinding] = strings.Join(plan.Bindings, ",")
	spec.Labels[docker.LabelRotation] = rot.TraceID
	if r.AgentID != "" {
		spec.Labels[docker.LabelAgent] = r.AgentID
	}
	var before *time.Time
	if svc.UpdateStatus != nil {
		before = svc.UpdateStatus.StartedAt
	}
	if err := r.Engine.ServiceUpdate(ctx, svc.ID, svc.Version, spec); err != nil {
		r.step(rot, StepUpdate, err)
		return reconcilers.Result{}, err
	}
	r.step(rot, StepUpdate, nil)
	rot.log.Info("service-update step done: Swarm rolls the tasks", "step", StepUpdate, "secrets", len(refs))
	r.fault("after-service-update")

	// rollout: Swarm's own rolling update, bounded generously: one
	// healthTimeout per task batch, plus the update delays and monitor.
	bound := rolloutBound(svc, r.globalTasks(ctx, svc), plan.Timeout, r.Timeout)
	if r.RolloutTimeout > 0 {
		bound = r.RolloutTimeout
	}
	final, err := r.waitRollout(ctx, service, before, refs, bound)
	r.step(rot, StepRollout, err)
	if err != nil {
		if errors.Is(err, ErrUpdateFailed) {
			rot.Result = "rolled-back"
		}
		return reconcilers.Result{}, err
	}
	r.fault("after-rollout")
	return r.cleanupStep(ctx, rot, final, service)
}

func (r *Reconciler) cleanupStep(ctx context.Context, rot *rotation, svc swarm.Service, service string) (reconcilers.Result, error) {
	res, err := r.cleanup(ctx, rot.log, svc, service)
	r.step(rot, StepCleanup, err)
	return res, err
}

// cleanup removes this service's dso secrets that its spec no longer
// references (all of them when svc is zero: the service is gone). One
// that another service's spec still references is tried again later.
func (r *Reconciler) cleanup(ctx context.Context, log logr.Logger, svc swarm.Service, service string) (reconcilers.Result, error) {
	list, err := r.Engine.SecretList(ctx, map[string]string{docker.LabelManaged: "true", docker.LabelService: service})
	if err != nil {
		return reconcilers.Result{}, fmt.Errorf("list secrets: %w", err)
	}
	used := map[string]bool{}
	for _, ref := range secretRefs(svc.Spec) {
		used[ref.SecretID] = true
	}
	var res reconcilers.Result
	for _, s := range list {
		if used[s.ID] {
			continue
		}
		if r.AgentID != "" && s.Spec.Labels[docker.LabelAgent] != "" && s.Spec.Labels[docker.LabelAgent] != r.AgentID {
			continue
		}
		err := r.Engine.SecretRemove(ctx, s.ID)
		switch {
		case err == nil:
			log.Info("removed old secret", "step", StepCleanup, "secret", s.Spec.Name)
		case docker.IsNotFound(err):
		case docker.IsSecretInUse(err):
			log.V(1).Info("old secret still in use; removing it later", "step", StepCleanup, "secret", s.Spec.Name)
			res.RequeueAfter = r.recheck()
		default:
			return res, fmt.Errorf("remove secret %s: %w", s.Spec.Name, err)
		}
	}
	return res, nil
}

// waitRollout polls the service until Swarm's UpdateStatus for the update
// dso just made settles. before is the StartedAt of the status that was
// there before (a status still carrying it is the old update's).
func (r *Reconciler) waitRollout(ctx context.Context, service string, before *time.Time, refs []*swarm.SecretReference, bound time.Duration) (swarm.Service, error) {
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	t := time.NewTicker(r.pollInterval())
	defer t.Stop()
	want := map[string]bool{}
	for _, ref := range refs {
		want[ref.SecretID] = true
	}
	last := "no update status yet"
	for {
		svc, err := r.Engine.ServiceInspect(wctx, service)
		if err != nil && wctx.Err() == nil {
			return svc, fmt.Errorf("inspect service: %w", err)
		}
		if err == nil {
			st := svc.UpdateStatus
			fresh := st != nil && (before == nil || st.StartedAt == nil || !st.StartedAt.Equal(*before))
			switch {
			case fresh:
				last = string(st.State)
				switch st.State {
				case swarm.UpdateStateCompleted:
					return svc, nil
				case swarm.UpdateStateRollbackCompleted:
					return svc, fmt.Errorf("%w: Swarm rolled the update back: %s", ErrUpdateFailed, st.Message)
				case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
					return svc, fmt.Errorf("%w: Swarm paused the update: %s", ErrUpdateFailed, st.Message)
				}
			case st == nil:
				// Swarm reports no status when no task needed replacing;
				// then the running tasks already carry the new secrets.
				if ok, err := r.tasksCarry(wctx, svc.ID, want); err == nil && ok {
					return svc, nil
				}
			}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return swarm.Service{}, ctx.Err()
			}
			return swarm.Service{}, fmt.Errorf("Swarm's rolling update of %s did not finish within %s (last state: %s); it is looked at again", service, bound, last) //nolint:staticcheck // ST1005: Swarm is a name
		case <-t.C:
		}
	}
}

// tasksCarry reports whether every task Swarm wants running runs with all
// of the secrets in want. With none wanted running (replicas 0, a global
// service no node takes) there is nothing for Swarm to replace: it never
// sets an UpdateStatus then, and every task it starts later has the spec.
func (r *Reconciler) tasksCarry(ctx context.Context, serviceID string, want map[string]bool) (bool, error) {
	tasks, err := r.Engine.TaskList(ctx, serviceID)
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		if t.Status.State != swarm.TaskStateRunning || t.Spec.ContainerSpec == nil {
			return false, nil
		}
		have := map[string]bool{}
		for _, s := range t.Spec.ContainerSpec.Secrets {
			have[s.SecretID] = true
		}
		for id := range want {
			if !have[id] {
				return false, nil
			}
		}
	}
	return true, nil
}

// globalTasks counts the tasks of a global service that Swarm wants
// running (one per node it runs on): the rollout bound's task count, which
// the spec does not say. 0 for other modes, or when the list fails.
func (r *Reconciler) globalTasks(ctx context.Context, svc swarm.Service) uint64 {
	if svc.Spec.Mode.Global == nil {
		return 0
	}
	tasks, err := r.Engine.TaskList(ctx, svc.ID)
	if err != nil {
		return 0
	}
	var n uint64
	for _, t := range tasks {
		if t.DesiredState == swarm.TaskStateRunning {
			n++
		}
	}
	return n
}

// rolloutBound is how long a rolling update may take: per batch of
// parallelism tasks one health timeout plus the update delay and monitor
// period, and a minute on top (Swarm schedules, pulls from its cache, starts).
// global is the task count of a global service (see globalTasks).
func rolloutBound(svc swarm.Service, global uint64, timeout, def time.Duration) time.Duration {
	if timeout <= 0 {
		timeout = def
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tasks := uint64(1)
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil && *m.Replicas > 1 {
		tasks = *m.Replicas
	}
	if svc.Spec.Mode.Global != nil && global > 1 {
		tasks = global
	}
	par := uint64(1)
	per := timeout
	if u := svc.Spec.UpdateConfig; u != nil {
		par = u.Parallelism
		if par == 0 {
			par = tasks // 0 means all at once
		}
		per += u.Delay + u.Monitor
	}
	if u := svc.Spec.UpdateConfig; u == nil || u.Monitor == 0 {
		per += 5 * time.Second // Swarm's default monitor period
	}
	batches := (tasks + par - 1) / par
	// Time per batch twice over: a failure action rollback rolls back too.
	return time.Duration(batches)*per*2 + time.Minute //nolint:gosec // G115: a replica count
}

// withSecrets returns a copy of spec whose secret references are the
// current ones minus those in ours (this service's dso secrets), plus refs.
// A reference of someone else's at a path dso now delivers is refused.
func withSecrets(spec swarm.ServiceSpec, ours map[string]bool, refs []*swarm.SecretReference) (swarm.ServiceSpec, error) {
	out := spec
	out.Labels = make(map[string]string, len(spec.Labels)+4)
	for k, v := range spec.Labels {
		out.Labels[k] = v
	}
	if spec.TaskTemplate.ContainerSpec == nil {
		return out, errors.New("the service has no container spec (a plugin service cannot take secrets)")
	}
	cs := *spec.TaskTemplate.ContainerSpec
	targets := map[string]bool{}
	for _, ref := range refs {
		targets[secretTarget(ref)] = true
	}
	var kept []*swarm.SecretReference
	for _, ref := range cs.Secrets {
		if ours[ref.SecretID] {
			continue
		}
		if targets[secretTarget(ref)] {
			return out, fmt.Errorf("the service already mounts secret %s at %s, where this binding delivers a file: remove one of them", ref.SecretName, secretTarget(ref))
		}
		kept = append(kept, ref)
	}
	cs.Secrets = append(kept, refs...)
	out.TaskTemplate.ContainerSpec = &cs
	return out, nil
}

// secretTarget is where Swarm mounts a reference: File.Name when absolute,
// else under /run/secrets.
func secretTarget(ref *swarm.SecretReference) string {
	if ref.File == nil {
		return ""
	}
	if path.IsAbs(ref.File.Name) {
		return path.Clean(ref.File.Name)
	}
	return path.Join("/run/secrets", ref.File.Name)
}

func secretRefs(spec swarm.ServiceSpec) []*swarm.SecretReference {
	if spec.TaskTemplate.ContainerSpec == nil {
		return nil
	}
	return spec.TaskTemplate.ContainerSpec.Secrets
}

func ownerID(id int) string {
	if id < 0 {
		return "0" // Swarm's default owner
	}
	return strconv.Itoa(id)
}

// maxSecretName is Docker's limit on a secret name.
const maxSecretName = 64

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// SecretNames names the Docker secret of each of plan's files:
// dso-<binding>-<file base>-<hash8>, with the item's index within its
// binding instead of the base when two of the binding's files share a base
// or the name would pass Docker's 64 characters (then the binding name is
// shortened too, if need be). hash8 starts the plan's hash (an HMAC), so
// every rotation makes new, immutable secrets and a crashed run's secret is
// found again under the same name.
func SecretNames(plan Plan) []string {
	h := plan.Hash
	if len(h) > 8 {
		h = h[:8]
	}
	bases := map[string]map[string]int{} // binding -> base -> count
	for _, f := range plan.Files {
		if bases[f.Binding] == nil {
			bases[f.Binding] = map[string]int{}
		}
		bases[f.Binding][safeBase(f.Path)]++
	}
	index := map[string]int{}
	out := make([]string, len(plan.Files))
	for i, f := range plan.Files {
		n := index[f.Binding]
		index[f.Binding]++
		item := safeBase(f.Path)
		name := "dso-" + f.Binding + "-" + item + "-" + h
		if bases[f.Binding][item] > 1 || len(name) > maxSecretName || item == "" {
			item = strconv.Itoa(n)
			name = "dso-" + f.Binding + "-" + item + "-" + h
		}
		if len(name) > maxSecretName {
			b := f.Binding[:len(f.Binding)-(len(name)-maxSecretName)]
			name = "dso-" + strings.TrimRight(b, "-") + "-" + item + "-" + h
		}
		out[i] = name
	}
	return out
}

func safeBase(p string) string {
	b := unsafeName.ReplaceAllString(path.Base(p), "-")
	return strings.Trim(b, "-._")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
