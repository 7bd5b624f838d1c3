package agent

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/reconcilers/secretfetch"
)

// FetchKey is the secretfetch reconciler's key: one secret of one store.
// Properties are extracted after the fetch, so every binding using any
// field of a secret shares one provider call.
type FetchKey = secretfetch.Key

// Model is the agent's current set of declarations.
type Model struct {
	mu       sync.RWMutex
	stores   map[string]*v1alpha1.SecretStore
	bindings []*v1alpha1.SecretBinding // sorted by name
	defPoll  time.Duration
}

// NewModel returns an empty model.
func NewModel(defaultPoll time.Duration) *Model {
	return &Model{stores: map[string]*v1alpha1.SecretStore{}, defPoll: defaultPoll}
}

// Set replaces the declarations.
func (m *Model) Set(stores []v1alpha1.SecretStore, bindings []v1alpha1.SecretBinding, defaultPoll time.Duration) {
	st := make(map[string]*v1alpha1.SecretStore, len(stores))
	for i := range stores {
		s := stores[i].DeepCopy()
		st[s.Name] = s
	}
	bs := make([]*v1alpha1.SecretBinding, 0, len(bindings))
	for i := range bindings {
		bs = append(bs, bindings[i].DeepCopy())
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	m.mu.Lock()
	m.stores, m.bindings, m.defPoll = st, bs, defaultPoll
	m.mu.Unlock()
}

// Stores returns the stores, sorted by name.
func (m *Model) Stores() []*v1alpha1.SecretStore {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*v1alpha1.SecretStore, 0, len(m.stores))
	for _, s := range m.stores {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Bindings returns the bindings, sorted by name.
func (m *Model) Bindings() []*v1alpha1.SecretBinding {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*v1alpha1.SecretBinding(nil), m.bindings...)
}

// Store returns the named store.
func (m *Model) Store(name string) (*v1alpha1.SecretStore, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.stores[name]
	return s, ok
}

// Select returns the bindings that select a container.
func (m *Model) Select(name string, labels map[string]string) []*v1alpha1.SecretBinding {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*v1alpha1.SecretBinding
	for _, b := range m.bindings {
		if Matches(b.Spec.Target.Selector, name, labels) {
			out = append(out, b)
		}
	}
	return out
}

// Matches reports whether a selector matches a container: any of the set
// criteria (container names, compose project/service, labels) matches;
// within labels, every label must match.
func Matches(sel v1alpha1.Selector, name string, labels map[string]string) bool {
	name = strings.TrimPrefix(name, "/")
	for _, n := range sel.Containers {
		if n == name {
			return true
		}
	}
	if c := sel.Compose; c != nil && c.Project != "" {
		if labels["com.docker.compose.project"] == c.Project && (c.Service == "" || labels["com.docker.compose.service"] == c.Service) &&
			labels["com.docker.compose.oneoff"] != "True" {
			return true
		}
	}
	if len(sel.Labels) > 0 {
		for k, v := range sel.Labels {
			if got, ok := labels[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	return false
}

// SelectService returns the bindings that select the Swarm service.
func (m *Model) SelectService(service string) []*v1alpha1.SecretBinding {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*v1alpha1.SecretBinding
	for _, b := range m.bindings {
		if sw := b.Spec.Target.Selector.Swarm; sw != nil && sw.Service == service {
			out = append(out, b)
		}
	}
	return out
}

// Services returns the Swarm services the bindings select, sorted.
func (m *Model) Services() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, b := range m.bindings {
		if sw := b.Spec.Target.Selector.Swarm; sw != nil && !seen[sw.Service] {
			seen[sw.Service] = true
			out = append(out, sw.Service)
		}
	}
	sort.Strings(out)
	return out
}

// IsSwarmTask reports whether a container is a task of a Swarm service.
// Swarm owns those containers (it replaces one it did not start itself), so
// they are never container targets: a binding reaches them through
// target.selector.swarm.
func IsSwarmTask(labels map[string]string) bool {
	return labels["com.docker.swarm.task.id"] != "" || labels["com.docker.swarm.service.id"] != ""
}

// IsSwapArtifact reports whether a container is a dso candidate not yet cut
// over (its target-name label names another container). Such containers are
// never targets themselves; the orphan cleanup reconciler owns them.
func IsSwapArtifact(name string, labels map[string]string) bool {
	t := labels[docker.LabelTargetName]
	return labels[docker.LabelManaged] == "true" && t != "" && t != strings.TrimPrefix(name, "/")
}

// Keys returns every secret the bindings consume, with its poll interval
// (the shortest of the bindings' refreshInterval, else the store's, else the
// agent default).
func (m *Model) Keys() map[FetchKey]time.Duration {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[FetchKey]time.Duration{}
	for _, b := range m.bindings {
		iv := m.intervalLocked(b)
		for _, k := range bindingKeys(b) {
			if cur, ok := out[k]; !ok || iv < cur {
				out[k] = iv
			}
		}
	}
	return out
}

func (m *Model) intervalLocked(b *v1alpha1.SecretBinding) time.Duration {
	if b.Spec.RefreshInterval != nil {
		return b.Spec.RefreshInterval.D()
	}
	if s, ok := m.stores[b.Spec.StoreRef.Name]; ok && s.Spec.RefreshInterval != nil {
		return s.Spec.RefreshInterval.D()
	}
	return m.defPoll
}

// BindingsUsing returns the bindings that consume k.
func (m *Model) BindingsUsing(k FetchKey) []*v1alpha1.SecretBinding {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*v1alpha1.SecretBinding
	for _, b := range m.bindings {
		for _, bk := range bindingKeys(b) {
			if bk == k {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// KeysOfStore returns the consumed keys of one store.
func (m *Model) KeysOfStore(store string) []FetchKey {
	var out []FetchKey
	for k := range m.Keys() {
		if k.Store == store {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func bindingKeys(b *v1alpha1.SecretBinding) []FetchKey {
	var out []FetchKey
	for _, d := range b.Spec.Data {
		out = append(out, FetchKey{Store: b.Spec.StoreRef.Name, Key: d.RemoteRef.Key, Version: d.RemoteRef.Version})
	}
	for _, d := range b.Spec.DataFrom {
		out = append(out, FetchKey{Store: b.Spec.StoreRef.Name, Key: d.RemoteRef.Key, Version: d.RemoteRef.Version})
	}
	return out
}
