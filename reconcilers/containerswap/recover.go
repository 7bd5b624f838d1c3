package containerswap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/internal/docker"
)

// Recover finishes or reverts every interrupted swap of target, from what
// Docker shows. It is what the orphan cleanup reconciler calls on start
// and on every relist; Reconcile runs it first too.
//
// Only containers carrying dso.dev/managed=true and dso.dev/replaces are
// candidates; the container they replace is found by the id in that label,
// never by a name pattern, so containers dso did not create are never
// touched, whatever they are called.
func (r *Reconciler) Recover(ctx context.Context, target string) error {
	unlock, wait, err := r.Locks.Lock(ctx, target)
	if err != nil {
		return err
	}
	defer unlock()
	r.observer().LockWait(target, wait)
	return r.recoverLocked(ctx, target)
}

// Interrupted lists the targets with candidates that are not yet cut over
// (or whose replaced container still exists).
func (r *Reconciler) Interrupted(ctx context.Context) ([]string, error) {
	list, err := r.Engine.List(ctx, r.ownLabels(map[string]string{docker.LabelManaged: "true", docker.LabelReplaces: ""}))
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, c := range list {
		ids[c.ID] = true
	}
	all, err := r.Engine.List(ctx, nil)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, c := range all {
		exists[c.ID] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range list {
		t := c.Labels[docker.LabelTargetName]
		if t == "" || seen[t] {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		if name != t || exists[c.Labels[docker.LabelReplaces]] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ownLabels adds this agent's id to a label filter.
func (r *Reconciler) ownLabels(m map[string]string) map[string]string {
	if r.AgentID != "" {
		m[docker.LabelAgent] = r.AgentID
	}
	return m
}

func (r *Reconciler) recoverLocked(ctx context.Context, target string) error {
	list, err := r.Engine.List(ctx, r.ownLabels(map[string]string{docker.LabelManaged: "true", docker.LabelTargetName: target}))
	if err != nil {
		return fmt.Errorf("list candidates of %s: %w", target, err)
	}
	for _, s := range list {
		if s.Labels[docker.LabelReplaces] == "" {
			continue
		}
		c, err := r.Engine.Inspect(ctx, s.ID)
		if docker.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := r.recoverOne(ctx, target, c); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) act(target, trace, action, detail string, err error) {
	a := RecoveryAction{Time: r.now(), Target: target, TraceID: trace, Action: action, Detail: detail}
	log := r.Log.WithValues("trace_id", trace, "container", target, "action", action)
	if err != nil {
		a.Error = err.Error()
		log.Error(err, "Automatic recovery: "+action+" failed: "+detail)
	} else {
		log.Info("Automatic recovery: " + action + ": " + detail)
	}
	r.observer().Recovery(a)
}

func (r *Reconciler) recoverOne(ctx context.Context, target string, cand container.InspectResponse) error {
	trace := cand.Config.Labels[docker.LabelRotation]
	oldID := cand.Config.Labels[docker.LabelReplaces]
	candName := strings.TrimPrefix(cand.Name, "/")
	old, err := r.Engine.Inspect(ctx, oldID)
	oldExists := err == nil && old.ID == oldID
	if err != nil && !docker.IsNotFound(err) {
		return err
	}

	if candName == target {
		// Cutover happened. Finish: restart policy, old container gone.
		if err := r.restorePolicy(ctx, target, trace, cand); err != nil {
			return err
		}
		if oldExists {
			err := r.stopRemove(ctx, old.ID)
			r.act(target, trace, "removed-retired", fmt.Sprintf("removed replaced container %s (%s)", strings.TrimPrefix(old.Name, "/"), short(old.ID)), err)
			return err
		}
		return nil
	}

	healthy := cand.State != nil && cand.State.Running && !cand.State.Restarting &&
		(cand.State.Health == nil || cand.State.Health.Status == container.Healthy)
	if !healthy && oldExists && cand.State != nil && cand.State.Running && cand.State.Health != nil &&
		cand.State.Health.Status == container.Starting && hasHealthcheck(cand) {
		// Docker has not run its first check yet (it waits a whole
		// interval); the gate had run the check itself. Do the same now.
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		code, _, err := r.Engine.Exec(pctx, cand.ID, execCommand(cand.Config.Healthcheck.Test))
		cancel()
		healthy = err == nil && code == 0
	}
	switch {
	case oldExists && strings.TrimPrefix(old.Name, "/") == target:
		// Cutover never started: the old container is the truth. A later
		// reconcile rotates again, through the health gate.
		err := r.stopRemove(ctx, cand.ID)
		r.act(target, trace, "removed-candidate", fmt.Sprintf("removed candidate %s of an interrupted rotation", candName), err)
		if err != nil {
			return err
		}
		return r.ensureRunning(ctx, target, trace, old)

	case oldExists && healthy:
		// Crashed between the renames with a healthy candidate: finish.
		if err := r.renameFree(ctx, target, cand.ID); err != nil {
			r.act(target, trace, "finished-cutover", "rename candidate", err)
			return err
		}
		if err := r.restorePolicy(ctx, target, trace, cand); err != nil {
			return err
		}
		err := r.stopRemove(ctx, old.ID)
		r.act(target, trace, "finished-cutover", fmt.Sprintf("candidate %s is healthy: renamed it to %s and removed the replaced container", candName, target), err)
		return err

	case oldExists:
		// Candidate not healthy: revert to the old container.
		if err := r.stopRemove(ctx, cand.ID); err != nil {
			r.act(target, trace, "removed-candidate", candName, err)
			return err
		}
		if err := r.renameFree(ctx, target, old.ID); err != nil {
			r.act(target, trace, "restored-old", "rename", err)
			return err
		}
		r.act(target, trace, "restored-old", fmt.Sprintf("candidate %s was not healthy: removed it and gave %s its name back", candName, short(old.ID)), nil)
		old.Name = "/" + target
		return r.ensureRunning(ctx, target, trace, old)

	default:
		// The replaced container is gone: the candidate is all there is.
		if err := r.renameFree(ctx, target, cand.ID); err != nil {
			r.act(target, trace, "finished-cutover", "rename candidate", err)
			return err
		}
		if cand.State == nil || !cand.State.Running {
			if err := r.Engine.Start(ctx, cand.ID); err != nil {
				r.act(target, trace, "finished-cutover", "start candidate", err)
				return err
			}
		}
		if err := r.restorePolicy(ctx, target, trace, cand); err != nil {
			return err
		}
		r.act(target, trace, "finished-cutover", fmt.Sprintf("replaced container is gone: candidate %s now runs as %s", candName, target), nil)
		return nil
	}
}

// renameFree renames id to name unless another container holds the name,
// in which case it fails (dso never removes a container it cannot prove it
// made).
func (r *Reconciler) renameFree(ctx context.Context, name, id string) error {
	if c, err := r.Engine.Inspect(ctx, name); err == nil {
		if c.ID == id {
			return nil
		}
		return fmt.Errorf("name %s is held by container %s that this swap did not create", name, short(c.ID))
	}
	return r.Engine.Rename(ctx, id, name)
}

func (r *Reconciler) ensureRunning(ctx context.Context, target, trace string, c container.InspectResponse) error {
	if c.State != nil && c.State.Running {
		return nil
	}
	err := r.Engine.Start(ctx, c.ID)
	r.act(target, trace, "restarted-old", fmt.Sprintf("started %s again", target), err)
	return err
}

func (r *Reconciler) restorePolicy(ctx context.Context, target, trace string, c container.InspectResponse) error {
	want, perr := docker.ParseRestartPolicy(c.Config.Labels[docker.LabelRestartPolicy])
	if perr != nil {
		// A label dso did not write (or an older format): leave the policy
		// as Docker has it rather than guess.
		r.Log.Info("ignoring unreadable restart-policy label", "container", target, "error", perr.Error())
		return nil
	}
	if c.HostConfig == nil || c.HostConfig.RestartPolicy == want || want.Name == "" {
		return nil
	}
	if want.Name == container.RestartPolicyDisabled && c.HostConfig.RestartPolicy.Name == "" {
		return nil
	}
	err := r.Engine.SetRestartPolicy(ctx, c.ID, want)
	r.act(target, trace, "restored-restart-policy", "restart policy "+docker.FormatRestartPolicy(want), err)
	return err
}

func (r *Reconciler) stopRemove(ctx context.Context, id string) error {
	if err := r.Engine.Stop(ctx, id); err != nil && !docker.IsNotFound(err) {
		return err
	}
	if err := r.Engine.Remove(ctx, id); err != nil && !docker.IsNotFound(err) {
		return err
	}
	return nil
}
