package providers

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// Registry maps provider names to providers. It refuses duplicates.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{providers: map[string]Provider{}} }

// Register adds p; it returns an error if the name is taken.
func (r *Registry) Register(p Provider) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.providers[p.Name()]; ok {
		return fmt.Errorf("provider %q is already registered", p.Name())
	}
	r.providers[p.Name()] = p
	return nil
}

// MustRegister is Register that panics on a duplicate (programming error).
func (r *Registry) MustRegister(p Provider) {
	if err := r.Register(p); err != nil {
		panic(err)
	}
}

// Get returns the provider registered under name.
func (r *Registry) Get(name string) (Provider, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.providers[name]
	return p, ok
}

// Names lists registered provider names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.providers))
	for n := range r.providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ProviderName returns the name of the single provider set in store's spec,
// or an error when none or several are set.
func ProviderName(store *v1alpha1.SecretStore) (string, error) {
	s := store.Spec
	var names []string
	if s.Local != nil {
		names = append(names, "local")
	}
	if s.Vault != nil {
		names = append(names, "vault")
	}
	if s.AWS != nil {
		names = append(names, "aws")
	}
	if s.Azure != nil {
		names = append(names, "azure")
	}
	if s.File != nil {
		names = append(names, "file")
	}
	if s.Env != nil {
		names = append(names, "env")
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", Errorf(KindInvalidConfig, store.Name, "", "spec sets no provider: set one of local, vault, aws, azure, file, env")
	default:
		return "", Errorf(KindInvalidConfig, store.Name, "", "spec sets several providers (%v): set exactly one", names)
	}
}

// NewClient builds a client for store with the provider its spec names.
func (r *Registry) NewClient(ctx context.Context, store *v1alpha1.SecretStore) (Client, error) {
	name, err := ProviderName(store)
	if err != nil {
		return nil, err
	}
	p, ok := r.Get(name)
	if !ok {
		return nil, Errorf(KindInvalidConfig, store.Name, "", "provider %q is not available in this build (have %v)", name, r.Names())
	}
	return p.NewClient(ctx, store)
}
