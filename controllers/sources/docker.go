// Package sources holds the event sources that feed dso's controllers: a
// Docker informer (list, watch, relist), a watcher of the config file and
// bindings folders (fsnotify and SIGHUP), jittered poll timers per provider
// key, and an inbound refresh webhook. Sources only say "look at this key";
// they never carry what happened — the reconcilers re-read actual state
// (DESIGN.md §3, level-triggered). Every source is a controllers.Runnable.
package sources

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/go-logr/logr"
)

// DockerEngine is the part of the Docker adapter the informer needs;
// internal/docker.Engine satisfies it.
type DockerEngine interface {
	// List returns all containers (running or not) carrying labels (nil: all).
	List(ctx context.Context, labels map[string]string) ([]container.Summary, error)
	// Events streams container events from since on. The error channel
	// reports the end of the stream (including ctx's end).
	Events(ctx context.Context, since time.Time) (<-chan events.Message, <-chan error)
}

// ContainerHandler receives the informer's notifications. Both methods are
// called from the informer's goroutine, one at a time, and should return
// quickly (enqueue a key and return).
type ContainerHandler interface {
	// OnContainer says the container of that name (without "/") may have
	// changed, appeared or gone.
	OnContainer(name string)
	// OnRelist follows every full list: the time to scan for orphans.
	OnRelist()
}

// DockerInformerOptions tune the informer; zero values take the defaults.
type DockerInformerOptions struct {
	// ResyncPeriod is the time between full relists (default 5m): the event
	// stream is lossy (a ring of 256 per subscriber), a relist heals it.
	ResyncPeriod time.Duration
	// MinBackoff and MaxBackoff bound the wait before relisting after the
	// event stream or a list failed (default 1s..30s, doubling).
	MinBackoff, MaxBackoff time.Duration
	Log                    logr.Logger
}

// DockerInformer keeps a cache of all containers, by name, in step with the
// engine, and tells a handler which names to look at.
type DockerInformer struct {
	engine  DockerEngine
	handler ContainerHandler
	opts    DockerInformerOptions
	log     logr.Logger

	mu     sync.RWMutex
	byName map[string]container.Summary
	idName map[string]string // container ID -> name

	synced   atomic.Bool
	watching atomic.Bool
}

// NewDockerInformer returns an informer; Start runs it.
func NewDockerInformer(engine DockerEngine, handler ContainerHandler, opts DockerInformerOptions) *DockerInformer {
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = 5 * time.Minute
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	return &DockerInformer{
		engine: engine, handler: handler, opts: opts,
		log:    opts.Log.WithValues("source", "docker"),
		byName: map[string]container.Summary{}, idName: map[string]string{},
	}
}

// Synced reports whether the first full list has completed.
func (i *DockerInformer) Synced() bool { return i.synced.Load() }

// Ready reports whether the cache is synced and the event stream is up: during
// a Docker outage the agent is not ready, and says so.
func (i *DockerInformer) Ready() bool { return i.synced.Load() && i.watching.Load() }

// List is a snapshot of the cached containers, sorted by name.
func (i *DockerInformer) List() []container.Summary {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make([]container.Summary, 0, len(i.byName))
	for _, c := range i.byName {
		out = append(out, c)
	}
	sort.Slice(out, func(a, b int) bool { return containerName(out[a]) < containerName(out[b]) })
	return out
}

// Get returns the cached container of that name.
func (i *DockerInformer) Get(name string) (container.Summary, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	c, ok := i.byName[name]
	return c, ok
}

// Start lists, then watches events from the time of the list, relisting
// every ResyncPeriod and after any stream error (with backoff). It returns
// nil when ctx ends.
func (i *DockerInformer) Start(ctx context.Context) error {
	backoff := i.opts.MinBackoff
	wait := func(reason string, err error) bool {
		i.log.Info(reason+"; relisting after backoff", "error", err.Error(), "backoff", backoff.String())
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, i.opts.MaxBackoff)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for {
		since, err := i.relist(ctx)
		if ended(ctx) {
			return nil
		}
		if err != nil {
			if !wait("listing containers failed", err) {
				return nil
			}
			continue
		}
		watchedFor, err := i.watch(ctx, since)
		if ended(ctx) {
			return nil
		}
		// A stream that lived for a while was healthy: start the backoff
		// over. One that fails at once keeps doubling, so a broken engine
		// is not relisted in a tight loop.
		if watchedFor >= i.opts.MaxBackoff {
			backoff = i.opts.MinBackoff
		}
		if !wait("docker event stream ended", err) {
			return nil
		}
	}
}

// ended reports whether ctx is done: errors seen after that are the
// cancellation itself, not failures.
func ended(ctx context.Context) bool { return ctx.Err() != nil }

// watch consumes one event subscription until it fails or ctx ends; a
// periodic relist runs alongside without resubscribing.
func (i *DockerInformer) watch(ctx context.Context, since time.Time) (time.Duration, error) {
	began := time.Now()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := i.engine.Events(wctx, since)
	i.watching.Store(true)
	defer i.watching.Store(false)
	resync := time.NewTicker(i.opts.ResyncPeriod)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(began), ctx.Err()
		case m, ok := <-msgs:
			if !ok {
				return time.Since(began), errors.New("the event channel was closed")
			}
			i.handle(m)
		case err, ok := <-errs:
			if !ok || err == nil {
				err = errors.New("the event stream ended without an error")
			}
			return time.Since(began), err
		case <-resync.C:
			if _, err := i.relist(ctx); err != nil && ctx.Err() == nil {
				// The stream still works; the next resync tries again.
				i.log.Info("periodic relist failed; keeping the event stream", "error", err.Error())
			}
		}
	}
}

// relist replaces the cache with a full list and notifies the handler of
// every name that appeared, changed or vanished (every name on the first
// sync), then OnRelist. It returns the time taken just before the list, from
// which events are watched so that nothing between list and watch is lost.
func (i *DockerInformer) relist(ctx context.Context) (time.Time, error) {
	since := time.Now()
	list, err := i.engine.List(ctx, nil)
	if err != nil {
		return since, fmt.Errorf("list containers: %w", err)
	}
	fresh := make(map[string]container.Summary, len(list))
	ids := make(map[string]string, len(list))
	for _, c := range list {
		name := containerName(c)
		if name == "" {
			continue
		}
		fresh[name] = c
		ids[c.ID] = name
	}
	first := !i.synced.Load()
	i.mu.Lock()
	var changed []string
	for name, c := range fresh {
		old, ok := i.byName[name]
		if first || !ok || summaryChanged(old, c) {
			changed = append(changed, name)
		}
	}
	for name := range i.byName {
		if _, ok := fresh[name]; !ok {
			changed = append(changed, name)
		}
	}
	i.byName, i.idName = fresh, ids
	i.mu.Unlock()
	i.synced.Store(true)

	sort.Strings(changed)
	for _, name := range changed {
		i.handler.OnContainer(name)
	}
	i.handler.OnRelist()
	i.log.V(1).Info("relisted containers", "containers", len(fresh), "changed", len(changed))
	return since, nil
}

// summaryChanged says whether a relist saw a difference worth a look. The
// Status text ("Up 5 minutes") changes all the time and is ignored.
func summaryChanged(a, b container.Summary) bool {
	if a.ID != b.ID || a.State != b.State || a.Image != b.Image || len(a.Labels) != len(b.Labels) {
		return true
	}
	if healthOf(a.Status) != healthOf(b.Status) {
		return true
	}
	for k, v := range a.Labels {
		if w, ok := b.Labels[k]; !ok || w != v {
			return true
		}
	}
	return false
}

// healthOf extracts "(healthy)" / "(unhealthy)" / "(health: starting)".
func healthOf(status string) string {
	if i := strings.LastIndex(status, "("); i >= 0 {
		return status[i:]
	}
	return ""
}

// handle applies one event to the cache (as far as the event tells) and
// notifies the handler. Events that do not matter to a swap (exec, attach,
// top, ...) are ignored; the periodic relist corrects anything missed.
func (i *DockerInformer) handle(m events.Message) {
	if m.Type != "" && m.Type != events.ContainerEventType {
		return
	}
	action := m.Action
	if strings.HasPrefix(string(action), string(events.ActionHealthStatus)) {
		action = events.ActionHealthStatus
	}
	id := m.Actor.ID
	name := strings.TrimPrefix(m.Actor.Attributes["name"], "/")
	var notify []string

	i.mu.Lock()
	if name == "" {
		name = i.idName[id]
	}
	switch action {
	case events.ActionCreate:
		if name != "" {
			c := i.byName[name]
			c.ID, c.Names = id, []string{"/" + name}
			c.State = "created"
			if img := m.Actor.Attributes["image"]; img != "" {
				c.Image = img
			}
			c.Labels = labelsFromAttributes(m.Actor.Attributes)
			i.byName[name], i.idName[id] = c, name
			notify = append(notify, name)
		}
	case events.ActionStart, events.ActionDie, events.ActionHealthStatus:
		if c, ok := i.byName[name]; ok && c.ID == id {
			switch action {
			case events.ActionStart:
				c.State = "running"
			case events.ActionDie:
				c.State = "exited"
			case events.ActionHealthStatus:
				c.Status = "(" + strings.TrimSpace(strings.TrimPrefix(string(m.Action), string(events.ActionHealthStatus)+":")) + ")"
			}
			i.byName[name] = c
		}
		if name != "" {
			notify = append(notify, name)
		}
	case events.ActionDestroy:
		if c, ok := i.byName[name]; ok && c.ID == id {
			delete(i.byName, name)
		}
		delete(i.idName, id)
		if name != "" {
			notify = append(notify, name)
		}
	case events.ActionRename:
		oldName := strings.TrimPrefix(m.Actor.Attributes["oldName"], "/")
		c, ok := i.byName[oldName]
		if ok && c.ID == id {
			delete(i.byName, oldName)
		} else {
			c = container.Summary{ID: id, Labels: labelsFromAttributes(m.Actor.Attributes)}
		}
		if name != "" {
			c.Names = []string{"/" + name}
			i.byName[name], i.idName[id] = c, name
		}
		for _, n := range []string{oldName, name} {
			if n != "" {
				notify = append(notify, n)
			}
		}
	}
	i.mu.Unlock()
	for _, n := range notify {
		i.handler.OnContainer(n)
	}
}

// labelsFromAttributes keeps the container labels of an event's attributes:
// Docker puts the labels there next to "name", "image" and (for exits)
// "exitCode", so the few non-label keys it adds are dropped.
func labelsFromAttributes(attrs map[string]string) map[string]string {
	out := make(map[string]string, len(attrs))
	for k, v := range attrs {
		switch k {
		case "name", "image", "oldName", "exitCode", "signal", "execID", "execDuration":
			continue
		}
		out[k] = v
	}
	return out
}

// containerName is the container's own name without "/". Docker also lists
// legacy link aliases ("/other/alias"); those are skipped.
func containerName(c container.Summary) string {
	for _, n := range c.Names {
		n = strings.TrimPrefix(n, "/")
		if n != "" && !strings.Contains(n, "/") {
			return n
		}
	}
	return ""
}
