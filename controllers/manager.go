package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Runnable is anything the Manager starts: controllers, event sources, the
// webhook server. Start blocks until ctx ends (or the runnable fails) and
// must return soon after ctx ends. Returning nil early is allowed (a one-shot
// job); returning an error stops the whole manager.
type Runnable interface {
	Start(ctx context.Context) error
}

// RunnableFunc adapts a function to Runnable.
type RunnableFunc func(ctx context.Context) error

// Start calls f.
func (f RunnableFunc) Start(ctx context.Context) error { return f(ctx) }

// readier is implemented by runnables that can say they are ready (synced
// caches, running workers); Manager.Ready asks every one that does.
type readier interface{ Ready() bool }

// DefaultStopTimeout bounds how long Manager.Start waits for its runnables
// after its context ended. It is longer than a controller's default drain
// timeout so that a controller can report its own timeout first.
const DefaultStopTimeout = DefaultDrainTimeout + 5*time.Second

// Manager starts a set of named Runnables and stops them together. The zero
// value is ready to use; set Log and StopTimeout before Start.
type Manager struct {
	// Log receives "starting"/"stopped" lines per runnable (default: discard).
	Log logr.Logger
	// StopTimeout bounds the graceful stop (default DefaultStopTimeout).
	StopTimeout time.Duration

	mu        sync.Mutex
	runnables []named
	started   bool
	stopped   bool            // set once Start began stopping: Add no longer launches
	ctx       context.Context // the running context, once started
	notify    chan struct{}   // signalled (cap 1) when a runnable returns
	finished  []result        // results not yet looked at by Start
	pending   map[string]bool // names still running
	wg        sync.WaitGroup
}

type named struct {
	name string
	r    Runnable
}

type result struct {
	name string
	err  error
}

// Add registers r under name. Added after Start, r is started at once under
// the manager's context.
func (m *Manager) Add(name string, r Runnable) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runnables = append(m.runnables, named{name, r})
	if m.started && !m.stopped {
		m.launchLocked(named{name, r})
	}
}

// Ready reports whether the manager is running (started, not stopping) and every runnable that has
// a Ready() bool method says it is ready.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started || m.stopped {
		return false
	}
	for _, n := range m.runnables {
		if rd, ok := n.r.(readier); ok && !rd.Ready() {
			return false
		}
	}
	return true
}

// NotReady lists the names of runnables that are not ready yet (for
// /healthz and doctor output), sorted.
func (m *Manager) NotReady() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, n := range m.runnables {
		if rd, ok := n.r.(readier); ok && !rd.Ready() {
			out = append(out, n.name)
		}
	}
	sort.Strings(out)
	return out
}

func (m *Manager) log() logr.Logger {
	if m.Log.GetSink() == nil {
		return logr.Discard()
	}
	return m.Log
}

// launchLocked starts one runnable; m.mu is held.
func (m *Manager) launchLocked(n named) {
	m.pending[n.name] = true
	m.wg.Add(1)
	ctx := m.ctx
	go func() {
		defer m.wg.Done()
		log := m.log().WithValues("runnable", n.name)
		log.Info("starting")
		err := safeStart(ctx, n.r)
		if err != nil && (ctx.Err() == nil || !isContextErr(err)) {
			log.Error(err, "stopped with an error")
		} else {
			log.Info("stopped")
		}
		m.mu.Lock()
		delete(m.pending, n.name)
		m.finished = append(m.finished, result{n.name, err})
		m.mu.Unlock()
		select {
		case m.notify <- struct{}{}:
		default:
		}
	}()
}

// safeStart keeps a panicking runnable from killing the process without the
// others being stopped: the panic becomes the runnable's error.
func safeStart(ctx context.Context, r Runnable) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return r.Start(ctx)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (m *Manager) takeFinished() []result {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.finished
	m.finished = nil
	return out
}

// Start starts every runnable and blocks. It returns nil when ctx has ended
// and all runnables have returned; when one runnable returns a non-nil error
// first, the others are cancelled and that error is returned (wrapped with the
// runnable's name). Either way the stop waits at most StopTimeout, then
// returns an error naming the runnables that did not stop.
func (m *Manager) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("manager was already started; a Manager can be started once")
	}
	m.started = true
	m.ctx = ctx
	m.pending = map[string]bool{}
	m.notify = make(chan struct{}, 1)
	for _, n := range m.runnables {
		m.launchLocked(n)
	}
	m.mu.Unlock()

	var firstErr error
	running := true
	for running {
		select {
		case <-ctx.Done():
			running = false
		case <-m.notify:
			for _, r := range m.takeFinished() {
				if r.err != nil && (ctx.Err() == nil || !isContextErr(r.err)) && firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", r.name, r.err)
					running = false
				}
			}
		}
	}
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	cancel()

	stopTimeout := m.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = DefaultStopTimeout
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	for {
		select {
		case <-done:
			// Collect errors of runnables that failed while stopping.
			var stopErrs []error
			for _, r := range m.takeFinished() {
				if r.err != nil && !isContextErr(r.err) {
					stopErrs = append(stopErrs, fmt.Errorf("%s: %w", r.name, r.err))
				}
			}
			if firstErr != nil {
				return firstErr
			}
			return errors.Join(stopErrs...)
		case <-timer.C:
			m.mu.Lock()
			var names []string
			for n := range m.pending {
				names = append(names, n)
			}
			m.mu.Unlock()
			sort.Strings(names)
			err := fmt.Errorf("these did not stop within %s: %s", stopTimeout, strings.Join(names, ", "))
			m.log().Error(err, "graceful stop timed out")
			return errors.Join(firstErr, err)
		}
	}
}
