package containerswap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/reconcilers"
)

// Reconciler converges targets. Its zero value is not usable: set Engine,
// Planner, Files and Locks (Slots nil means unlimited parallelism).
type Reconciler struct {
	Engine  docker.Engine
	Planner Planner
	Files   FileWriter
	Locks   *Locks
	// Slots bounds concurrent swaps (agent.rotation.parallelism).
	Slots chan struct{}
	// Timeout is the default health gate bound (agent.rotation.timeout).
	Timeout  time.Duration
	Log      logr.Logger
	Observer Observer
	// Fault is called at named crash points (tests, and the faultinject
	// build used by the e2e crash matrix). Nil means no-op.
	Fault func(point string)
	// StablePeriod: without a HEALTHCHECK, a candidate is healthy once it
	// has run this long without restarting. Default 2s.
	StablePeriod time.Duration
	// PollInterval of the health gate. Default 200ms.
	PollInterval time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// LockContention is the lock wait above which a warning is logged (1s).
	LockContention time.Duration
	// AgentID is written on every candidate (dso.dev/agent); recovery acts
	// only on candidates carrying it. Empty: act on every dso candidate.
	AgentID string

	convergedMu sync.Mutex
	converged   map[string]time.Time // target -> start of its last no-op reconcile
}

// markConverged records that a reconcile of name that began at began found
// nothing to change (label hash equal, or in-place files already current).
func (r *Reconciler) markConverged(name string, began time.Time) {
	r.convergedMu.Lock()
	defer r.convergedMu.Unlock()
	if r.converged == nil {
		r.converged = map[string]time.Time{}
	}
	r.converged[name] = began
}

// ConvergedSince reports whether a reconcile of name that began at or after
// t found the target already running its current secrets. `rotate --wait`
// uses it for targets whose convergence leaves no label to compare, such as
// Compose containers that pre-mount their live secret directory.
func (r *Reconciler) ConvergedSince(name string, t time.Time) bool {
	r.convergedMu.Lock()
	defer r.convergedMu.Unlock()
	began, ok := r.converged[name]
	return ok && !began.Before(t)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) stablePeriod() time.Duration {
	if r.StablePeriod > 0 {
		return r.StablePeriod
	}
	return 2 * time.Second
}

func (r *Reconciler) pollInterval() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return 200 * time.Millisecond
}

func (r *Reconciler) observer() Observer {
	if r.Observer != nil {
		return r.Observer
	}
	return NopObserver{}
}

func (r *Reconciler) fault(point string) {
	if r.Fault != nil {
		r.Fault(point)
	}
}

// ErrGateFailed wraps every health gate failure.
var ErrGateFailed = errors.New("health gate failed")

// Reconcile converges the target named name.
func (r *Reconciler) Reconcile(ctx context.Context, name string) (reconcilers.Result, error) {
	unlock, wait, err := r.Locks.Lock(ctx, name)
	if err != nil {
		return reconcilers.Result{}, err
	}
	defer unlock()
	r.observer().LockWait(name, wait)
	limit := r.LockContention
	if limit == 0 {
		limit = time.Second
	}
	if wait > limit {
		r.Log.Info("lock contention", "container", name, "wait", wait.String())
	}

	if err := r.recoverLocked(ctx, name); err != nil {
		return reconcilers.Result{}, err
	}
	began := r.now()
	cur, err := r.Engine.Inspect(ctx, name)
	if docker.IsNotFound(err) {
		return reconcilers.Result{}, nil
	}
	if err != nil {
		return reconcilers.Result{}, err
	}
	if strings.TrimPrefix(cur.Name, "/") != name {
		// Inspect also answers to ids and id prefixes; the key is a name.
		return reconcilers.Result{}, nil
	}
	// A container some dso candidate replaces is mid-swap or retired: the
	// swap (or recovery) of its target owns it, never a swap of its own.
	if repl, err := r.Engine.List(ctx, map[string]string{docker.LabelManaged: "true", docker.LabelReplaces: cur.ID}); err != nil {
		return reconcilers.Result{}, err
	} else if len(repl) > 0 {
		return reconcilers.Result{}, nil
	}
	if t := cur.Config.Labels[docker.LabelTargetName]; t != "" && t != name && cur.Config.Labels[docker.LabelManaged] == "true" {
		return reconcilers.Result{}, nil // a candidate: recovery owns it
	}
	plan, selected, err := r.Planner.Plan(ctx, cur)
	if err != nil || !selected {
		return reconcilers.Result{}, err
	}
	actual := cur.Config.Labels[docker.LabelSecretHash]
	if actual == plan.Hash {
		if plan.InPlace() && len(plan.Files) > 0 {
			return reconcilers.Result{}, r.updateInPlace(ctx, name, cur, plan, began)
		}
		r.markConverged(name, began)
		return reconcilers.Result{}, nil // converged: nothing at all happens
	}
	if plan.InPlace() && len(plan.Env) == 0 && premounted(cur, r.Files.Mounts(name, "live", plan.Files)) {
		// The container already bind-mounts its live secret directories
		// (declared in its compose file): files are updated in place, no
		// swap is ever needed, even though dso did not create it.
		return reconcilers.Result{}, r.updateInPlace(ctx, name, cur, plan, began)
	}
	if cur.HostConfig != nil && cur.HostConfig.NetworkMode.IsContainer() {
		return reconcilers.Result{}, reconcilers.TerminalError(fmt.Errorf("container %s: %w", name, docker.ErrSharedNamespace))
	}
	if all, err := r.Engine.List(ctx, nil); err != nil {
		return reconcilers.Result{}, err
	} else if kids := docker.NamespaceChildren(all, cur.ID); len(kids) > 0 {
		return reconcilers.Result{}, reconcilers.TerminalError(fmt.Errorf("container %s (joined by %s): %w", name, strings.Join(kids, ", "), docker.ErrNamespaceParent))
	}

	// A swap is needed: take a parallelism slot.
	if r.Slots != nil {
		select {
		case r.Slots <- struct{}{}:
			defer func() { <-r.Slots }()
		case <-ctx.Done():
			return reconcilers.Result{}, ctx.Err()
		}
	}
	return reconcilers.Result{}, r.swap(ctx, name, cur, plan)
}

// healthFields puts the last health observation (exit code and output,
// which the gate captured) on the "rotation failed" log line.
func healthFields(ps []HealthProbe) []any {
	if len(ps) == 0 {
		return nil
	}
	p := ps[len(ps)-1]
	out := strings.TrimSpace(p.Output)
	if len(out) > 200 {
		out = out[:200]
	}
	return []any{"step", StepHealth, "health_exit_code", p.ExitCode, "health_output", out, "health_source", p.Source}
}

// premounted reports whether c bind-mounts every one of mounts at its target.
func premounted(c container.InspectResponse, mounts []delivery.Mount) bool {
	if len(mounts) == 0 {
		return false
	}
	have := map[string]string{}
	for _, m := range c.Mounts {
		have[path.Clean(m.Destination)] = path.Clean(m.Source)
	}
	if c.HostConfig != nil {
		for _, m := range c.HostConfig.Mounts {
			have[path.Clean(m.Target)] = path.Clean(m.Source)
		}
		for _, b := range c.HostConfig.Binds {
			if parts := strings.Split(b, ":"); len(parts) >= 2 {
				have[path.Clean(parts[1])] = path.Clean(parts[0])
			}
		}
	}
	for _, m := range mounts {
		if have[path.Clean(m.Target)] != path.Clean(m.Source) {
			return false
		}
		// The path matches; make sure the container really sees the live
		// directory (it does not when it was created before the agent
		// mounted its tmpfs). When that cannot be checked (no pid, no
		// access to /proc), the declaration is trusted.
		if c.State != nil && c.State.Pid > 0 {
			if seen, err := delivery.SeenBy(c.State.Pid, m.Target, m.Source); err == nil && !seen {
				return false
			}
		}
	}
	return true
}

func newTraceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// swapStrategy picks how a new container replaces cur.
func swapStrategy(plan Plan, cur container.InspectResponse) v1alpha1.RotationStrategy {
	switch plan.Strategy {
	case v1alpha1.RotationRolling, v1alpha1.RotationRecreate:
		if plan.Strategy == v1alpha1.RotationRolling && docker.HasHostPorts(cur) {
			// Two containers cannot bind one host port: rolling would never start.
			return v1alpha1.RotationRecreate
		}
		return plan.Strategy
	}
	// In-place strategies still need one swap to add the mounts or env.
	if docker.HasHostPorts(cur) {
		return v1alpha1.RotationRecreate
	}
	return v1alpha1.RotationRolling
}

type rotation struct {
	*Rotation
	log      logr.Logger
	stepFrom time.Time
}

func (r *Reconciler) step(rot *rotation, name string, err error) {
	d := r.now().Sub(rot.stepFrom)
	st := StepTiming{Step: name, Duration: d}
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

func (r *Reconciler) swap(ctx context.Context, name string, cur container.InspectResponse, plan Plan) error {
	strategy := swapStrategy(plan, cur)
	trace := newTraceID()
	rot := &rotation{Rotation: &Rotation{
		TraceID: trace, Target: name, Bindings: plan.Bindings, Strategy: string(strategy),
		OldID: cur.ID, Started: r.now(), FromHash: cur.Config.Labels[docker.LabelSecretHash], ToHash: plan.Hash,
	}}
	rot.stepFrom = rot.Started
	rot.log = r.Log.WithValues("trace_id", trace, "container", name, "binding", strings.Join(plan.Bindings, ","), "strategy", string(strategy))
	r.observer().RotationStarted(rot.Rotation)
	if len(plan.Env) > 0 {
		rot.log.Info("delivering env vars: their values are visible to anyone who can run docker inspect on this container", "env", strings.Join(sortedKeys(plan.Env), ","))
	}
	rot.log.Info("rotation started", "from_hash", short(rot.FromHash), "to_hash", short(plan.Hash))

	err := r.runSwap(ctx, rot, name, cur, plan, strategy)
	rot.Finished = r.now()
	if err != nil {
		if rot.Result == "" {
			rot.Result = "failed"
		}
		rot.Reason = err.Error()
		rot.log.Error(err, "rotation failed", append([]any{"reason", err.Error(), "duration_ms", rot.Duration().Milliseconds()}, healthFields(rot.Health)...)...)
		if errors.Is(err, ErrGateFailed) {
			r.observer().Degraded(plan.Bindings, name, err.Error(), true)
		}
	} else {
		rot.Result = "succeeded"
		rot.log.Info("rotation complete", "duration_ms", rot.Duration().Milliseconds(), "duration", rot.Duration().String())
		r.observer().Degraded(plan.Bindings, name, "", false)
	}
	r.observer().RotationFinished(rot.Rotation)
	return err
}

func (r *Reconciler) runSwap(ctx context.Context, rot *rotation, name string, cur container.InspectResponse, plan Plan, strategy v1alpha1.RotationStrategy) error {
	// prepare: files for the candidate (a set of its own, so the old
	// container keeps its files until cutover), and the create call.
	set := short(plan.ContentHash)
	if plan.InPlace() {
		set = "live"
	}
	var mounts []docker.SecretMount
	if len(plan.Files) > 0 {
		ms, _, err := r.Files.Write(name, set, plan.Files)
		if err != nil {
			r.step(rot, StepPrepare, err)
			return fmt.Errorf("write secret files: %w", err)
		}
		for _, m := range ms {
			mounts = append(mounts, docker.SecretMount{Source: m.Source, Target: m.Target})
		}
	}
	candName := name + "-dso-" + rot.TraceID[:8]
	labels := map[string]string{
		docker.LabelManaged:    "true",
		docker.LabelSecretHash: plan.Hash,
		docker.LabelReplaces:   cur.ID,
		docker.LabelTargetName: name,
		docker.LabelRotation:   rot.TraceID,
		docker.LabelBinding:    strings.Join(plan.Bindings, ","),
	}
	if r.AgentID != "" {
		labels[docker.LabelAgent] = r.AgentID
	}
	spec, err := docker.CandidateSpec(cur, docker.CandidateOptions{
		Name: candName, Env: plan.Env, Mounts: mounts, Labels: labels,
		KeepPorts: strategy == v1alpha1.RotationRecreate,
	})
	r.step(rot, StepPrepare, err)
	if err != nil {
		return err
	}
	// Join the networks without service aliases: Docker's DNS would send
	// traffic to an unhealthy candidate. Aliases are added after the gate.
	aliases := map[string][]string{}
	for _, n := range spec.Networks {
		aliases[n.Name] = n.Endpoint.Aliases
	}
	bare := spec
	bare.Networks = make([]docker.NetworkAttachment, len(spec.Networks))
	for i, n := range spec.Networks {
		ep := *n.Endpoint
		ep.Aliases = nil
		bare.Networks[i] = docker.NetworkAttachment{Name: n.Name, Endpoint: &ep}
	}

	candID, err := r.Engine.Create(ctx, bare)
	r.step(rot, StepCreate, err)
	if err != nil {
		if candID != "" {
			r.removeCandidate(ctx, rot, candID)
		}
		return err
	}
	rot.NewID = candID
	r.fault("after-create")

	timeout := plan.HealthTimeout
	if timeout <= 0 {
		timeout = r.Timeout
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}

	if strategy == v1alpha1.RotationRecreate {
		err := r.Engine.Stop(ctx, cur.ID)
		r.step(rot, StepStop, err)
		if err != nil {
			r.removeCandidate(ctx, rot, candID)
			return fmt.Errorf("stop old container: %w", err)
		}
		r.fault("after-stop-old")
	}

	err = r.Engine.Start(ctx, candID)
	r.step(rot, StepStart, err)
	if err == nil {
		r.fault("after-start")
		var probes []HealthProbe
		probes, err = r.gate(ctx, candID, timeout)
		rot.Health = probes
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrGateFailed, err)
		}
		r.step(rot, StepHealth, err)
		rot.log.Info("health check finished", "step", StepHealth, "healthy", err == nil, "probes", len(probes))
	}
	if err != nil {
		r.revert(ctx, rot, cur, candID, strategy)
		rot.Result = "rolled-back"
		return err
	}
	r.fault("after-health")

	// swap: aliases, then the two renames. Old keeps serving until it stops.
	if err := r.connectAliases(ctx, candID, aliases); err != nil {
		r.step(rot, StepSwap, err)
		r.revert(ctx, rot, cur, candID, strategy)
		rot.Result = "rolled-back"
		return err
	}
	retired := name + "-dso-retired-" + rot.TraceID[:8]
	if err := r.Engine.Rename(ctx, cur.ID, retired); err != nil {
		r.step(rot, StepSwap, err)
		r.revert(ctx, rot, cur, candID, strategy)
		rot.Result = "rolled-back"
		return fmt.Errorf("rename old container: %w", err)
	}
	r.fault("after-rename-old")
	if err := r.Engine.Rename(ctx, candID, name); err != nil {
		r.step(rot, StepSwap, err)
		// Put the old name back; the candidate goes.
		_ = r.Engine.Rename(ctx, cur.ID, name)
		r.revert(ctx, rot, cur, candID, strategy)
		rot.Result = "rolled-back"
		return fmt.Errorf("rename candidate: %w", err)
	}
	r.fault("after-rename-candidate")
	r.step(rot, StepSwap, nil)
	rot.log.Info("swap step done: candidate took the name", "step", StepSwap)

	// cleanup: restore the restart policy, stop and remove the old one.
	if p, perr := docker.ParseRestartPolicy(spec.Config.Labels[docker.LabelRestartPolicy]); perr == nil && p.Name != container.RestartPolicyDisabled {
		if err := r.Engine.SetRestartPolicy(ctx, candID, p); err != nil {
			r.step(rot, StepCleanup, err)
			return fmt.Errorf("restore restart policy: %w", err)
		}
	}
	if strategy != v1alpha1.RotationRecreate {
		if err := r.Engine.Stop(ctx, cur.ID); err != nil && !docker.IsNotFound(err) {
			r.step(rot, StepCleanup, err)
			return fmt.Errorf("stop old container: %w", err)
		}
		r.fault("after-stop-old")
	}
	if err := r.Engine.Remove(ctx, cur.ID); err != nil && !docker.IsNotFound(err) {
		r.step(rot, StepCleanup, err)
		return fmt.Errorf("remove old container: %w", err)
	}
	r.fault("after-remove-old")
	if !plan.InPlace() {
		_ = r.Files.RemoveSets(name, set)
	}
	r.step(rot, StepCleanup, nil)

	// verify: what Docker shows now is the plan.
	got, err := r.Engine.Inspect(ctx, name)
	if err == nil && (got.ID != candID || got.Config.Labels[docker.LabelSecretHash] != plan.Hash || got.State == nil || !got.State.Running) {
		err = fmt.Errorf("container %s is not the healthy candidate after cutover", name)
	}
	r.step(rot, StepVerify, err)
	rot.log.Info("verify step done", "step", StepVerify, "ok", err == nil)
	return err
}

// connectAliases gives the candidate its service aliases (reconnecting each
// network that has any).
func (r *Reconciler) connectAliases(ctx context.Context, id string, aliases map[string][]string) error {
	names := make([]string, 0, len(aliases))
	for n, a := range aliases {
		if len(a) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c, err := r.Engine.Inspect(ctx, id)
		if err != nil {
			return err
		}
		ep := c.NetworkSettings.Networks[n]
		if ep == nil {
			return fmt.Errorf("candidate is not on network %s", n)
		}
		nep := *ep
		nep.Aliases = aliases[n]
		nep.EndpointID, nep.IPAddress, nep.Gateway, nep.MacAddress, nep.NetworkID = "", "", "", "", ""
		if err := r.Engine.NetworkDisconnect(ctx, n, id); err != nil {
			return fmt.Errorf("network %s: %w", n, err)
		}
		if err := r.Engine.NetworkConnect(ctx, n, id, &nep); err != nil {
			return fmt.Errorf("network %s: %w", n, err)
		}
	}
	return nil
}

// revert removes the candidate and makes sure the old container runs.
func (r *Reconciler) revert(ctx context.Context, rot *rotation, old container.InspectResponse, candID string, strategy v1alpha1.RotationStrategy) {
	// Use a fresh context: the rotation's may have timed out, and leaving a
	// half-swapped target is worse than a late revert.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	r.removeCandidate(rctx, rot, candID)
	var err error
	if strategy == v1alpha1.RotationRecreate {
		err = r.Engine.Start(rctx, old.ID)
	}
	r.step(rot, StepRevert, err)
	rot.log.Info("reverted: old container keeps serving", "step", StepRevert)
}

func (r *Reconciler) removeCandidate(ctx context.Context, rot *rotation, id string) {
	if err := r.Engine.Stop(ctx, id); err != nil && !docker.IsNotFound(err) {
		rot.log.Info("stopping candidate failed", "error", err.Error())
	}
	if err := r.Engine.Remove(ctx, id); err != nil && !docker.IsNotFound(err) {
		rot.log.Info("removing candidate failed", "error", err.Error())
	}
}

// updateInPlace rewrites a file-only target's files under its existing
// mounts, then restarts, signals or leaves it.
func (r *Reconciler) updateInPlace(ctx context.Context, name string, cur container.InspectResponse, plan Plan, began time.Time) error {
	_, changed, err := r.Files.Write(name, "live", plan.Files)
	if err != nil || !changed {
		if err == nil {
			r.markConverged(name, began)
		}
		return err
	}
	trace := newTraceID()
	rot := &rotation{Rotation: &Rotation{TraceID: trace, Target: name, Bindings: plan.Bindings, Strategy: string(plan.Strategy),
		OldID: cur.ID, NewID: cur.ID, Started: r.now(), FromHash: cur.Config.Labels[docker.LabelSecretHash], ToHash: plan.ContentHash}}
	rot.stepFrom = rot.Started
	rot.log = r.Log.WithValues("trace_id", trace, "container", name, "binding", strings.Join(plan.Bindings, ","), "strategy", string(plan.Strategy))
	r.observer().RotationStarted(rot.Rotation)
	r.step(rot, StepPrepare, nil)
	switch plan.Strategy {
	case v1alpha1.RotationRestart:
		err = r.Engine.Restart(ctx, cur.ID)
		r.step(rot, StepReload, err)
		if err == nil {
			timeout := plan.HealthTimeout
			if timeout <= 0 {
				timeout = r.Timeout
			}
			rot.Health, err = r.gate(ctx, cur.ID, max(timeout, time.Second))
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrGateFailed, err)
			}
			r.step(rot, StepHealth, err)
		}
	case v1alpha1.RotationSignal:
		sig := plan.Signal
		if sig == "" {
			sig = "SIGHUP"
		}
		err = r.Engine.Signal(ctx, cur.ID, sig)
		r.step(rot, StepReload, err)
	}
	rot.Finished = r.now()
	if err != nil {
		rot.Result, rot.Reason = "failed", err.Error()
		rot.log.Error(err, "rotation failed", append([]any{"reason", err.Error(), "duration_ms", rot.Duration().Milliseconds()}, healthFields(rot.Health)...)...)
		if errors.Is(err, ErrGateFailed) {
			r.observer().Degraded(plan.Bindings, name, err.Error(), true)
		}
	} else {
		rot.Result = "succeeded"
		rot.log.Info("rotation complete", "duration_ms", rot.Duration().Milliseconds(), "duration", rot.Duration().String(), "in_place", true)
	}
	r.observer().RotationFinished(rot.Rotation)
	return err
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
