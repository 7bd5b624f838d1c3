package sources

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// fakeEngine scripts Docker: the containers a List returns, list failures,
// and one event subscription per Events call that the test drives.
type fakeEngine struct {
	mu         sync.Mutex
	containers []container.Summary
	listErrs   []error // consumed one per List call
	listTimes  []time.Time
	subs       []*subscription
}

type subscription struct {
	since time.Time
	msgs  chan events.Message
	errs  chan error
}

func (f *fakeEngine) List(_ context.Context, labels map[string]string) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if labels != nil {
		return nil, errors.New("informer must list everything (labels nil)")
	}
	f.listTimes = append(f.listTimes, time.Now())
	if len(f.listErrs) > 0 {
		err := f.listErrs[0]
		f.listErrs = f.listErrs[1:]
		if err != nil {
			return nil, err
		}
	}
	return append([]container.Summary(nil), f.containers...), nil
}

func (f *fakeEngine) Events(ctx context.Context, since time.Time) (<-chan events.Message, <-chan error) {
	s := &subscription{since: since, msgs: make(chan events.Message), errs: make(chan error, 1)}
	f.mu.Lock()
	f.subs = append(f.subs, s)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		select {
		case s.errs <- ctx.Err():
		default:
		}
	}()
	return s.msgs, s.errs
}

func (f *fakeEngine) set(cs ...container.Summary) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = cs
}

func (f *fakeEngine) counts() (lists, subs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.listTimes), len(f.subs)
}

func (f *fakeEngine) sub(n int) *subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[n]
}

// handlerLog records notifications in order.
type handlerLog struct {
	mu      sync.Mutex
	names   []string
	relists int
}

func (h *handlerLog) OnContainer(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names = append(h.names, name)
}

func (h *handlerLog) OnRelist() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.relists++
}

// take returns and clears the names seen so far, sorted.
func (h *handlerLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.names
	h.names = nil
	sort.Strings(out)
	return out
}

func (h *handlerLog) has(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.names {
		if n == name {
			return true
		}
	}
	return false
}

func (h *handlerLog) relistCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.relists
}

func summary(id, name, state string, labels map[string]string) container.Summary {
	return container.Summary{ID: id, Names: []string{"/" + name}, State: state, Labels: labels, Image: "app:1"}
}

func startInformer(t *testing.T, eng DockerEngine, opts DockerInformerOptions) (*DockerInformer, *handlerLog) {
	t.Helper()
	h := &handlerLog{}
	inf := NewDockerInformer(eng, h, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inf.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start = %v, want nil at context end", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("informer did not stop")
		}
	})
	return inf, h
}

func TestInformerFirstSyncWatchesFromListTime(t *testing.T) {
	eng := &fakeEngine{}
	eng.set(summary("id-b", "web", "running", nil), summary("id-a", "db", "exited", nil),
		container.Summary{ID: "id-l", Names: []string{"/web/link-alias", "/cache"}})
	inf, h := startInformer(t, eng, DockerInformerOptions{})
	eventually(t, 5*time.Second, "ready", inf.Ready)
	if got, want := h.take(), []string{"cache", "db", "web"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first sync notified %v, want every container %v", got, want)
	}
	if h.relistCount() != 1 {
		t.Fatalf("OnRelist called %d times, want 1", h.relistCount())
	}
	var names []string
	for _, c := range inf.List() {
		names = append(names, c.Names[len(c.Names)-1])
	}
	if !reflect.DeepEqual(names, []string{"/cache", "/db", "/web"}) {
		t.Fatalf("List() = %v, want sorted by name", names)
	}
	if s := eng.sub(0); s.since.IsZero() || s.since.After(eng.listTime(0)) {
		t.Fatalf("events watched from %v, want a time no later than the list (%v): no gap", s.since, eng.listTime(0))
	}
}

func TestInformerEvents(t *testing.T) {
	ev := func(action events.Action, id string, attrs map[string]string) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}}
	}
	tests := []struct {
		name       string
		event      events.Message
		wantNotify []string
		check      func(t *testing.T, inf *DockerInformer)
	}{
		{name: "create adds the container with its labels",
			event:      ev(events.ActionCreate, "id-new", map[string]string{"name": "api", "image": "api:2", "dso.dev/managed": "true"}),
			wantNotify: []string{"api"},
			check: func(t *testing.T, inf *DockerInformer) {
				c, ok := inf.Get("api")
				if !ok || c.ID != "id-new" || c.Labels["dso.dev/managed"] != "true" || c.Labels["name"] != "" || c.State != "created" {
					t.Errorf("cache after create = %+v, %v", c, ok)
				}
			}},
		{name: "start marks running", event: ev(events.ActionStart, "id-db", map[string]string{"name": "db"}), wantNotify: []string{"db"},
			check: func(t *testing.T, inf *DockerInformer) {
				if c, _ := inf.Get("db"); c.State != "running" {
					t.Errorf("State = %q, want running", c.State)
				}
			}},
		{name: "die marks exited", event: ev(events.ActionDie, "id-web", map[string]string{"name": "web", "exitCode": "137"}), wantNotify: []string{"web"},
			check: func(t *testing.T, inf *DockerInformer) {
				if c, _ := inf.Get("web"); c.State != "exited" {
					t.Errorf("State = %q, want exited", c.State)
				}
			}},
		{name: "health_status with its suffix", event: ev("health_status: unhealthy", "id-web", map[string]string{"name": "web"}), wantNotify: []string{"web"},
			check: func(t *testing.T, inf *DockerInformer) {
				if c, _ := inf.Get("web"); c.Status != "(unhealthy)" {
					t.Errorf("Status = %q, want (unhealthy)", c.Status)
				}
			}},
		{name: "destroy removes, name found by id when the attribute is missing", event: ev(events.ActionDestroy, "id-web", nil), wantNotify: []string{"web"},
			check: func(t *testing.T, inf *DockerInformer) {
				if _, ok := inf.Get("web"); ok {
					t.Error("web still cached after destroy")
				}
			}},
		{name: "rename notifies old and new names", event: ev(events.ActionRename, "id-web", map[string]string{"name": "web", "oldName": "/web_dso_candidate"}),
			wantNotify: []string{"web", "web_dso_candidate"}},
		{name: "rename moves the cache entry", event: ev(events.ActionRename, "id-web", map[string]string{"name": "web-retired", "oldName": "/web"}),
			wantNotify: []string{"web", "web-retired"},
			check: func(t *testing.T, inf *DockerInformer) {
				_, old := inf.Get("web")
				c, ok := inf.Get("web-retired")
				if old || !ok || c.ID != "id-web" || c.State != "running" {
					t.Errorf("after rename: old present %v, new %+v %v", old, c, ok)
				}
			}},
		{name: "exec events are ignored", event: ev("exec_start: /bin/probe", "id-web", map[string]string{"name": "web"})},
		{name: "non-container events are ignored", event: events.Message{Type: events.NetworkEventType, Action: events.ActionConnect, Actor: events.Actor{ID: "n1", Attributes: map[string]string{"name": "web"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{}
			eng.set(summary("id-web", "web", "running", nil), summary("id-db", "db", "exited", nil))
			inf, h := startInformer(t, eng, DockerInformerOptions{})
			eventually(t, 5*time.Second, "ready", inf.Ready)
			h.take()
			eng.sub(0).msgs <- tc.event
			// A marker event proves the event under test was handled.
			eng.sub(0).msgs <- ev(events.ActionStart, "id-db", map[string]string{"name": "marker"})
			eventually(t, 5*time.Second, "marker handled", func() bool { return h.has("marker") })
			got := h.take()
			want := append(append([]string(nil), tc.wantNotify...), "marker")
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("notified %v, want %v", got, want)
			}
			if tc.check != nil {
				tc.check(t, inf)
			}
		})
	}
}

func TestInformerStreamFailureRelistsAndResubscribes(t *testing.T) {
	tests := []struct {
		name string
		fail func(s *subscription)
	}{
		{name: "stream error", fail: func(s *subscription) { s.errs <- errors.New("unexpected EOF") }},
		{name: "channel closed", fail: func(s *subscription) { close(s.msgs) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{}
			eng.set(summary("id-web", "web", "running", nil))
			inf, h := startInformer(t, eng, DockerInformerOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			eventually(t, 5*time.Second, "ready", inf.Ready)
			h.take()
			// While the stream is down a container appears and one goes.
			eng.set(summary("id-api", "api", "running", nil))
			tc.fail(eng.sub(0))
			eventually(t, 5*time.Second, "resubscribed", func() bool { _, subs := eng.counts(); return subs == 2 && inf.Ready() })
			lists, _ := eng.counts()
			if lists != 2 {
				t.Fatalf("lists = %d, want 2 (one relist after the failure)", lists)
			}
			if got := h.take(); !reflect.DeepEqual(got, []string{"api", "web"}) {
				t.Fatalf("relist notified %v, want the appeared and vanished containers [api web]", got)
			}
			if s := eng.sub(1); s.since.After(eng.listTime(1)) {
				t.Fatal("resubscribed from after the relist: events in between would be lost")
			}
		})
	}
}

func TestInformerResyncHealsLostEvents(t *testing.T) {
	eng := &fakeEngine{}
	eng.set(summary("id-web", "web", "running", nil), summary("id-db", "db", "running", map[string]string{"a": "1"}),
		container.Summary{ID: "id-old", Names: []string{"/old"}, State: "running", Status: "Up 1 second"})
	inf, h := startInformer(t, eng, DockerInformerOptions{ResyncPeriod: 30 * time.Millisecond})
	eventually(t, 5*time.Second, "ready", inf.Ready)
	h.take()
	// No events at all: web was replaced (new ID), db's labels changed,
	// old only aged (Status text), and new appeared.
	eng.set(summary("id-web2", "web", "running", nil), summary("id-db", "db", "running", map[string]string{"a": "2"}),
		container.Summary{ID: "id-old", Names: []string{"/old"}, State: "running", Status: "Up 2 minutes"},
		summary("id-new", "new", "created", nil))
	eventually(t, 5*time.Second, "resync noticed", func() bool { return h.relistCount() >= 2 })
	if got := h.take(); !reflect.DeepEqual(got, []string{"db", "new", "web"}) {
		t.Fatalf("resync notified %v, want the changed containers [db new web]", got)
	}
	if _, subs := eng.counts(); subs != 1 {
		t.Fatalf("subscriptions = %d, want 1: a periodic relist keeps the stream", subs)
	}
	if c, _ := inf.Get("web"); c.ID != "id-web2" {
		t.Fatalf("cache not replaced by the resync: web = %s", c.ID)
	}
}

func TestInformerListFailureBacksOff(t *testing.T) {
	eng := &fakeEngine{listErrs: []error{errors.New("connection refused"), errors.New("connection refused")}}
	eng.set(summary("id-web", "web", "running", nil))
	inf, h := startInformer(t, eng, DockerInformerOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second})
	if inf.Synced() {
		t.Fatal("synced before any list")
	}
	eventually(t, 5*time.Second, "synced after the engine came back", inf.Synced)
	if lists, _ := eng.counts(); lists != 3 {
		t.Fatalf("lists = %d, want 3 (two failures, one success)", lists)
	}
	// Backoff doubles: 20ms then 40ms between attempts.
	if gap := eng.listTime(2).Sub(eng.listTime(1)); gap < 40*time.Millisecond {
		t.Errorf("second retry after %s, want >= 40ms (doubling backoff)", gap)
	}
	if got := h.take(); !reflect.DeepEqual(got, []string{"web"}) {
		t.Fatalf("notified %v, want [web]", got)
	}
}

func (f *fakeEngine) listTime(n int) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listTimes[n]
}
