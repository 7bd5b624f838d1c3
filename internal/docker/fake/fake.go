// Package fake is an in-memory docker.Engine that records every call, in the
// style of client-go's fake clientsets: reconciler tests preload containers,
// run one Reconcile, and compare the recorded actions with the expected
// ones. It models what the swap logic depends on — unique names, labels
// fixed at create, running/stopped state, health, restart policy — and
// nothing else. Behaviour on a real engine is covered by the e2e tests.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/dso-dev/dso/internal/docker"
)

// Action is one recorded call.
type Action struct {
	Verb string // create, start, stop, restart, signal, rename, remove, update, exec, secret-create, secret-remove, service-update
	Name string // container name at the time of the call (create: the new name)
	Arg  string // rename: new name; signal: signal; update: policy
}

func (a Action) String() string {
	if a.Arg != "" {
		return a.Verb + " " + a.Name + " " + a.Arg
	}
	return a.Verb + " " + a.Name
}

// Mutating reports whether the action changes Docker state.
func (a Action) Mutating() bool { return a.Verb != "exec" }

// Container is the fake's model of one container.
type Container struct {
	ID            string
	Name          string
	Config        container.Config
	HostConfig    container.HostConfig
	Networks      map[string]*network.EndpointSettings
	Running       bool
	Restarting    bool
	ExitCode      int
	Health        string // "", starting, healthy, unhealthy
	HealthLog     []*container.HealthcheckResult
	StartedAt     time.Time
	RestartCount  int
	SignalsServed []string
}

// Engine is the fake. The zero value is not usable; call New.
type Engine struct {
	mu         sync.Mutex
	containers map[string]*Container
	actions    []Action
	seq        int

	// OnStart decides the state of a container when it starts: its health
	// ("healthy", "unhealthy", "" for no HEALTHCHECK) and whether it exits at
	// once. Default: healthy when it has a HEALTHCHECK, running.
	OnStart func(c *Container) (health string, exits bool)
	// ExecResult scripts Exec (default: exit 0 when healthy, else 1).
	ExecResult func(c *Container, cmd []string) (int, string)
	// Fail makes the named verb fail for containers whose name has the prefix
	// (verb -> name prefix), to test error paths.
	Fail map[string]string
	// Hook runs after every recorded action (crash-point tests use it).
	Hook func(a Action)

	// Swarm is what SwarmInfo answers (zero: not in a swarm, so every
	// swarm call fails as on such an engine).
	Swarm docker.SwarmInfo
	// OnServiceUpdate decides what Swarm does with an accepted update
	// (default: it completes).
	OnServiceUpdate func(s *swarm.Service) SwarmUpdateOutcome

	secrets    map[string]*swarm.Secret
	secretData map[string][]byte
	services   map[string]*swarm.Service
}

// New returns an empty fake engine.
func New() *Engine { return &Engine{containers: map[string]*Container{}} }

// Add preloads a container and returns it (running when running is true).
func (e *Engine) Add(name string, cfg container.Config, hc container.HostConfig, running bool) *Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.newLocked(name, cfg, hc)
	c.Running = running
	if running {
		c.StartedAt = time.Now()
		if cfg.Healthcheck != nil {
			c.Health = "healthy"
		}
	}
	return c
}

func (e *Engine) newLocked(name string, cfg container.Config, hc container.HostConfig) *Container {
	e.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", name, e.seq)))
	c := &Container{ID: hex.EncodeToString(sum[:]), Name: name, Config: cfg, HostConfig: hc, Networks: map[string]*network.EndpointSettings{}}
	if c.Config.Labels == nil {
		c.Config.Labels = map[string]string{}
	}
	e.containers[c.ID] = c
	return c
}

// Actions returns the recorded actions.
func (e *Engine) Actions() []Action {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Action(nil), e.actions...)
}

// ActionStrings renders the recorded mutating actions, e.g. "rename api api-dso-retired-1a2b".
func (e *Engine) ActionStrings() []string {
	var out []string
	for _, a := range e.Actions() {
		if a.Mutating() {
			out = append(out, a.String())
		}
	}
	return out
}

// ResetActions forgets recorded actions.
func (e *Engine) ResetActions() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.actions = nil
}

// Containers returns a snapshot of all containers sorted by name.
func (e *Engine) Containers() []Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Container, 0, len(e.containers))
	for _, c := range e.containers {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ByName returns the container with that name, or nil.
func (e *Engine) ByName(name string) *Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byNameLocked(name)
}

func (e *Engine) byNameLocked(name string) *Container {
	name = strings.TrimPrefix(name, "/")
	for _, c := range e.containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (e *Engine) findLocked(ref string) (*Container, error) {
	if c, ok := e.containers[ref]; ok {
		return c, nil
	}
	if c := e.byNameLocked(ref); c != nil {
		return c, nil
	}
	for id, c := range e.containers {
		if len(ref) >= 12 && strings.HasPrefix(id, ref) {
			return c, nil
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("no such container: %s", ref))
}

func (e *Engine) record(a Action) error {
	e.actions = append(e.actions, a)
	if p, ok := e.Fail[a.Verb]; ok && strings.HasPrefix(a.Name, p) {
		return fmt.Errorf("fake: %s %s failed", a.Verb, a.Name)
	}
	return nil
}

func (e *Engine) hook(a Action) {
	if e.Hook != nil {
		e.Hook(a)
	}
}

func (e *Engine) Version(context.Context) (string, string, error) {
	return "1.41", "20.10.24-fake", nil
}

func (e *Engine) List(_ context.Context, labels map[string]string) ([]container.Summary, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []container.Summary
	for _, c := range e.containers {
		match := true
		for k, v := range labels {
			got, ok := c.Config.Labels[k]
			if !ok || (v != "" && got != v) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		state := "exited"
		if c.Running {
			state = "running"
		}
		status := "Exited (0)"
		if c.Running {
			status = "Up"
			switch c.Health {
			case "healthy", "unhealthy":
				status += " (" + c.Health + ")"
			case "starting":
				status += " (health: starting)"
			}
		}
		sum := container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, Labels: copyMap(c.Config.Labels), State: state, Status: status}
		sum.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Names[0] < out[j].Names[0] })
	return out, nil
}

func (e *Engine) Inspect(_ context.Context, id string) (container.InspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.findLocked(id)
	if err != nil {
		return container.InspectResponse{}, err
	}
	cfg := c.Config
	cfg.Labels = copyMap(c.Config.Labels)
	cfg.Env = append([]string(nil), c.Config.Env...)
	hc := c.HostConfig
	st := &container.State{Running: c.Running, Restarting: c.Restarting, ExitCode: c.ExitCode, StartedAt: c.StartedAt.Format(time.RFC3339Nano)}
	if c.Running {
		st.Status = container.StateRunning
	} else {
		st.Status = container.StateExited
	}
	if c.Health != "" {
		st.Health = &container.Health{Status: c.Health, Log: c.HealthLog}
	}
	nets := map[string]*network.EndpointSettings{}
	for n, ep := range c.Networks {
		cp := *ep
		nets[n] = &cp
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.ID, Name: "/" + c.Name, Image: c.Config.Image, State: st, HostConfig: &hc, RestartCount: c.RestartCount},
		Config:            &cfg,
		NetworkSettings:   &container.NetworkSettings{Networks: nets},
	}, nil
}

func (e *Engine) Create(_ context.Context, spec docker.CreateSpec) (string, error) {
	e.mu.Lock()
	a := Action{Verb: "create", Name: spec.Name}
	if err := e.record(a); err != nil {
		e.mu.Unlock()
		return "", err
	}
	if e.byNameLocked(spec.Name) != nil {
		e.mu.Unlock()
		return "", errdefs.Conflict(fmt.Errorf("name %q is already in use", spec.Name))
	}
	c := e.newLocked(spec.Name, *spec.Config, *spec.HostConfig)
	c.Config.Labels = copyMap(spec.Config.Labels)
	for _, n := range spec.Networks {
		cp := *n.Endpoint
		c.Networks[n.Name] = &cp
	}
	id := c.ID
	e.mu.Unlock()
	e.hook(a)
	return id, nil
}

func (e *Engine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	c, err := e.findLocked(id)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	a := Action{Verb: "start", Name: c.Name}
	if err := e.record(a); err != nil {
		e.mu.Unlock()
		return err
	}
	for _, o := range e.containers {
		if o != c && o.Running && sharesHostPort(o, c) {
			e.mu.Unlock()
			return fmt.Errorf("fake: port is already allocated (container %s)", o.Name)
		}
	}
	health, exits := "", false
	if c.Config.Healthcheck != nil {
		health = "healthy"
	}
	if e.OnStart != nil {
		health, exits = e.OnStart(c)
	}
	c.Health = health
	c.Running = !exits
	if exits {
		c.ExitCode = 3
	}
	c.StartedAt = time.Now()
	if health == "unhealthy" {
		c.HealthLog = append(c.HealthLog, &container.HealthcheckResult{ExitCode: 1, Output: "probe: status 503"})
	}
	e.mu.Unlock()
	e.hook(a)
	return nil
}

func sharesHostPort(a, b *Container) bool {
	for p, bs := range b.HostConfig.PortBindings {
		if len(bs) > 0 && len(a.HostConfig.PortBindings[p]) > 0 {
			return true
		}
	}
	return false
}

func (e *Engine) simple(id, verb, arg string, apply func(c *Container) error) error {
	e.mu.Lock()
	c, err := e.findLocked(id)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	a := Action{Verb: verb, Name: c.Name, Arg: arg}
	if err := e.record(a); err != nil {
		e.mu.Unlock()
		return err
	}
	if err := apply(c); err != nil {
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	e.hook(a)
	return nil
}

func (e *Engine) Stop(_ context.Context, id string) error {
	return e.simple(id, "stop", "", func(c *Container) error { c.Running = false; c.Health = ""; return nil })
}

func (e *Engine) Restart(_ context.Context, id string) error {
	return e.simple(id, "restart", "", func(c *Container) error { c.Running = true; c.StartedAt = time.Now(); return nil })
}

func (e *Engine) Signal(_ context.Context, id, sig string) error {
	return e.simple(id, "signal", sig, func(c *Container) error {
		if !c.Running {
			return errdefs.Conflict(fmt.Errorf("container %s is not running", c.Name))
		}
		c.SignalsServed = append(c.SignalsServed, sig)
		return nil
	})
}

func (e *Engine) Rename(_ context.Context, id, name string) error {
	e.mu.Lock()
	if o := e.byNameLocked(name); o != nil && o.ID != id && !strings.HasPrefix(o.ID, id) {
		e.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("name %q is already in use", name))
	}
	e.mu.Unlock()
	return e.simple(id, "rename", name, func(c *Container) error { c.Name = name; return nil })
}

func (e *Engine) Remove(_ context.Context, id string) error {
	return e.simple(id, "remove", "", func(c *Container) error {
		if c.Running {
			return errdefs.Conflict(fmt.Errorf("container %s is running: stop it first", c.Name))
		}
		delete(e.containers, c.ID)
		return nil
	})
}

func (e *Engine) SetRestartPolicy(_ context.Context, id string, p container.RestartPolicy) error {
	return e.simple(id, "update", docker.FormatRestartPolicy(p), func(c *Container) error { c.HostConfig.RestartPolicy = p; return nil })
}

func (e *Engine) NetworkConnect(_ context.Context, networkName, id string, ep *network.EndpointSettings) error {
	return e.simple(id, "connect", networkName, func(c *Container) error {
		if _, ok := c.Networks[networkName]; ok {
			return errdefs.Conflict(fmt.Errorf("container %s is already on network %s", c.Name, networkName))
		}
		cp := *ep
		c.Networks[networkName] = &cp
		return nil
	})
}

func (e *Engine) NetworkDisconnect(_ context.Context, networkName, id string) error {
	return e.simple(id, "disconnect", networkName, func(c *Container) error {
		if _, ok := c.Networks[networkName]; !ok {
			return errdefs.NotFound(fmt.Errorf("container %s is not on network %s", c.Name, networkName))
		}
		delete(c.Networks, networkName)
		return nil
	})
}

func (e *Engine) Exec(_ context.Context, id string, cmd []string) (int, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.findLocked(id)
	if err != nil {
		return -1, "", err
	}
	e.actions = append(e.actions, Action{Verb: "exec", Name: c.Name, Arg: strings.Join(cmd, " ")})
	if !c.Running {
		return -1, "", errdefs.Conflict(fmt.Errorf("container %s is not running", c.Name))
	}
	if e.ExecResult != nil {
		code, out := e.ExecResult(c, cmd)
		return code, out, nil
	}
	if c.Health == "unhealthy" {
		return 1, "probe: status 503", nil
	}
	return 0, "ok", nil
}

func (e *Engine) Events(ctx context.Context, _ time.Time) (<-chan events.Message, <-chan error) {
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	go func() {
		<-ctx.Done()
		errs <- ctx.Err()
	}()
	return msgs, errs
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var _ docker.Engine = (*Engine)(nil)
