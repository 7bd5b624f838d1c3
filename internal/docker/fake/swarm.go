package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/dso-dev/dso/internal/docker"
)

// The fake's Swarm: secrets (immutable, names unique, refused removal while
// a service spec references them) and services (versioned specs, an
// UpdateStatus the test scripts through OnServiceUpdate). Swarm's own
// orchestration is not modelled beyond that; the e2e tests run the real one.

// Service is the fake's model of one Swarm service.
type Service = swarm.Service

// SwarmUpdateOutcome is what the fake's "orchestrator" does with an update.
type SwarmUpdateOutcome int

const (
	// UpdateCompletes: UpdateStatus completed, the new spec stays.
	UpdateCompletes SwarmUpdateOutcome = iota
	// UpdateRollsBack: Swarm's failure action rollback — the previous spec
	// is restored (and the failed one becomes PreviousSpec).
	UpdateRollsBack
	// UpdatePauses: Swarm's failure action pause.
	UpdatePauses
	// UpdateHangs: UpdateStatus stays updating.
	UpdateHangs
	// UpdateRollbackPauses: Swarm rolls back (the previous spec restored,
	// none kept of the failed one) and the rollback itself fails, with the
	// rollback config's failure action pause: rollback_paused.
	UpdateRollbackPauses
)

func (e *Engine) swarmLocked() {
	if e.secrets == nil {
		e.secrets = map[string]*swarm.Secret{}
		e.secretData = map[string][]byte{}
		e.services = map[string]*swarm.Service{}
	}
}

// AddService preloads a service from spec (version 1, never updated).
func (e *Engine) AddService(spec swarm.ServiceSpec) swarm.Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	e.seq++
	s := &swarm.Service{ID: fakeID("service", spec.Name, e.seq), Spec: spec}
	s.Version.Index = 1
	s.CreatedAt = time.Now()
	e.services[s.ID] = s
	return *s
}

// RemoveService removes the named service (docker service rm).
func (e *Engine) RemoveService(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	if s := e.serviceLocked(name); s != nil {
		delete(e.services, s.ID)
	}
}

// noTasks reports whether a service wants no task at all (replicated with
// 0 replicas): Swarm's updater then finds no task to replace and never
// sets an UpdateStatus.
func noTasks(s *swarm.Service) bool {
	m := s.Spec.Mode.Replicated
	return m != nil && m.Replicas != nil && *m.Replicas == 0
}

// Service returns a copy of the named service (nil when absent).
func (e *Engine) Service(name string) *swarm.Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	if s := e.serviceLocked(name); s != nil {
		c := *s
		return &c
	}
	return nil
}

// Secrets returns every secret, sorted by name.
func (e *Engine) Secrets() []swarm.Secret {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	out := make([]swarm.Secret, 0, len(e.secrets))
	for _, s := range e.secrets {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out
}

// SecretData returns the data a secret was created with (tests only: the
// real engine never returns it).
func (e *Engine) SecretData(id string) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	return e.secretData[id]
}

// AddSecret preloads a secret (e.g. one an earlier, crashed run created).
func (e *Engine) AddSecret(name string, labels map[string]string, data []byte) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	return e.addSecretLocked(name, labels, data)
}

func (e *Engine) addSecretLocked(name string, labels map[string]string, data []byte) string {
	e.seq++
	id := fakeID("secret", name, e.seq)
	sec := &swarm.Secret{ID: id, Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: copyMap(labels)}}}
	sec.CreatedAt = time.Now()
	e.secrets[id] = sec
	e.secretData[id] = append([]byte(nil), data...)
	return id
}

func fakeID(kind, name string, seq int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%s-%d", kind, name, seq)))
	return hex.EncodeToString(sum[:])[:25]
}

func (e *Engine) serviceLocked(ref string) *swarm.Service {
	if s, ok := e.services[ref]; ok {
		return s
	}
	for _, s := range e.services {
		if s.Spec.Name == ref {
			return s
		}
	}
	return nil
}

func (e *Engine) SwarmInfo(context.Context) (docker.SwarmInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Swarm, nil
}

func (e *Engine) notManagerLocked() error {
	if !e.Swarm.Manager() {
		return errdefs.Unavailable(fmt.Errorf("this node is not a swarm manager"))
	}
	return nil
}

func (e *Engine) SecretCreate(_ context.Context, name string, labels map[string]string, data []byte) (string, error) {
	e.mu.Lock()
	e.swarmLocked()
	a := Action{Verb: "secret-create", Name: name}
	if err := e.notManagerLocked(); err != nil {
		e.mu.Unlock()
		return "", err
	}
	if err := e.record(a); err != nil {
		e.mu.Unlock()
		return "", err
	}
	for _, s := range e.secrets {
		if s.Spec.Name == name {
			e.mu.Unlock()
			return "", errdefs.Conflict(fmt.Errorf("secret %s already exists", name))
		}
	}
	id := e.addSecretLocked(name, labels, data)
	e.mu.Unlock()
	e.hook(a)
	return id, nil
}

func (e *Engine) SecretList(_ context.Context, labels map[string]string) ([]swarm.Secret, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	if err := e.notManagerLocked(); err != nil {
		return nil, err
	}
	var out []swarm.Secret
	for _, s := range e.secrets {
		if matchLabels(s.Spec.Labels, labels) {
			c := *s
			c.Spec.Labels = copyMap(s.Spec.Labels)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, nil
}

func (e *Engine) SecretRemove(_ context.Context, id string) error {
	e.mu.Lock()
	e.swarmLocked()
	s, ok := e.secrets[id]
	if !ok {
		e.mu.Unlock()
		return errdefs.NotFound(fmt.Errorf("secret %s not found", id))
	}
	a := Action{Verb: "secret-remove", Name: s.Spec.Name}
	if err := e.record(a); err != nil {
		e.mu.Unlock()
		return err
	}
	for _, svc := range e.services {
		for _, ref := range secretRefs(svc.Spec) {
			if ref.SecretID == id {
				e.mu.Unlock()
				return errdefs.InvalidParameter(fmt.Errorf("secret '%s' is in use by the following service: %s", s.Spec.Name, svc.Spec.Name))
			}
		}
	}
	delete(e.secrets, id)
	delete(e.secretData, id)
	e.mu.Unlock()
	e.hook(a)
	return nil
}

func (e *Engine) ServiceInspect(_ context.Context, ref string) (swarm.Service, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	if err := e.notManagerLocked(); err != nil {
		return swarm.Service{}, err
	}
	s := e.serviceLocked(ref)
	if s == nil {
		return swarm.Service{}, errdefs.NotFound(fmt.Errorf("service %s not found", ref))
	}
	return *s, nil
}

func (e *Engine) ServiceUpdate(_ context.Context, id string, version swarm.Version, spec swarm.ServiceSpec) error {
	e.mu.Lock()
	e.swarmLocked()
	s := e.serviceLocked(id)
	if s == nil {
		e.mu.Unlock()
		return errdefs.NotFound(fmt.Errorf("service %s not found", id))
	}
	a := Action{Verb: "service-update", Name: s.Spec.Name}
	if err := e.notManagerLocked(); err != nil {
		e.mu.Unlock()
		return err
	}
	if err := e.record(a); err != nil {
		e.mu.Unlock()
		return err
	}
	if version.Index != s.Version.Index {
		e.mu.Unlock()
		return errdefs.InvalidParameter(fmt.Errorf("update out of sequence"))
	}
	for _, ref := range secretRefs(spec) {
		if _, ok := e.secrets[ref.SecretID]; !ok {
			e.mu.Unlock()
			return errdefs.InvalidParameter(fmt.Errorf("secret %s not found", ref.SecretName))
		}
	}
	prev := s.Spec
	s.PreviousSpec = &prev
	s.Spec = spec
	s.Version.Index++
	now := time.Now()
	s.UpdatedAt = now
	outcome := UpdateCompletes
	if e.OnServiceUpdate != nil {
		outcome = e.OnServiceUpdate(s)
	}
	if noTasks(s) {
		// swarmkit resets the status on every update; with no task to
		// replace its updater never sets a new one.
		s.UpdateStatus = nil
		e.mu.Unlock()
		e.hook(a)
		return nil
	}
	switch outcome {
	case UpdateCompletes:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &now, CompletedAt: &now, Message: "update completed"}
	case UpdateRollsBack:
		// As swarmkit's updater: the previous spec comes back and no copy
		// of the failed one is kept.
		s.Spec = prev
		s.PreviousSpec = nil
		s.Version.Index++
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: &now, CompletedAt: &now, Message: "rollback completed"}
	case UpdatePauses:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, StartedAt: &now, Message: "update paused due to failure or early termination of task 1"}
	case UpdateHangs:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &now, Message: "update in progress"}
	case UpdateRollbackPauses:
		s.Spec = prev
		s.PreviousSpec = nil
		s.Version.Index++
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackPaused, StartedAt: &now, Message: "rollback paused due to failure or early termination of task 1"}
	}
	e.mu.Unlock()
	e.hook(a)
	return nil
}

func (e *Engine) TaskList(_ context.Context, serviceID string) ([]swarm.Task, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swarmLocked()
	s := e.serviceLocked(serviceID)
	if s == nil || noTasks(s) {
		return nil, nil
	}
	return []swarm.Task{{ID: "task-" + s.ID[:8], ServiceID: s.ID, Spec: s.Spec.TaskTemplate, DesiredState: swarm.TaskStateRunning,
		Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}}, nil
}

func secretRefs(spec swarm.ServiceSpec) []*swarm.SecretReference {
	if spec.TaskTemplate.ContainerSpec == nil {
		return nil
	}
	return spec.TaskTemplate.ContainerSpec.Secrets
}

func matchLabels(have, want map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
