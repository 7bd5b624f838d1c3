package local

import (
	"context"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// Provider is the "local" provider: SecretStores with spec.local.
type Provider struct{}

// New returns the local provider, ready for providers.Registry.Register.
func New() providers.Provider { return Provider{} }

// Name implements providers.Provider.
func (Provider) Name() string { return "local" }

// NewClient opens the store named by store.Spec.Local. It loads the key now,
// so a missing or unreadable key is reported when the store is configured,
// not on the first fetch.
func (Provider) NewClient(ctx context.Context, store *v1alpha1.SecretStore) (providers.Client, error) {
	if store == nil || store.Spec.Local == nil {
		name := ""
		if store != nil {
			name = store.Name
		}
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.local is not set")
	}
	spec := store.Spec.Local
	if spec.Path == "" {
		return nil, providers.Errorf(providers.KindInvalidConfig, store.Name, "", "spec.local.path is empty: set it to the store file, e.g. %s", AgentPath)
	}
	s, err := Open(spec.Path, spec.KeyFile, WithName(store.Name))
	if err != nil {
		return nil, err
	}
	return &Client{store: s}, nil
}

// Client reads one local store. It implements providers.Client and
// providers.WatchableClient.
type Client struct {
	store *Store
}

var (
	_ providers.Client          = (*Client)(nil)
	_ providers.WatchableClient = (*Client)(nil)
)

// NewClientFor wraps an already open Store.
func NewClientFor(s *Store) *Client { return &Client{store: s} }

// Get implements providers.Client. The local store keeps only the latest
// value of a key, so a pinned version other than the current one is not found.
func (c *Client) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	if err := providers.ValidateRef(c.store.name, ref); err != nil {
		return providers.Secret{}, err
	}
	if err := ctx.Err(); err != nil {
		return providers.Secret{}, providers.Wrap(providers.KindUnavailable, c.store.name, ref.Key, err, "request cancelled")
	}
	e, err := c.store.Get(ref.Key)
	if err != nil {
		return providers.Secret{}, err
	}
	if ref.Version != "" && ref.Version != e.VersionID() {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, c.store.name, ref.Key,
			"version %q not available: the local store keeps only the current version (%s)", ref.Version, e.VersionID())
	}
	return providers.Finish(c.store.name, ref, e.Value, e.VersionID())
}

// Validate implements providers.Client: it opens and decrypts the store.
func (c *Client) Validate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.store.Validate()
}

// Close implements providers.Client; the client holds no resources.
func (c *Client) Close() error { return nil }

// Watch implements providers.WatchableClient. It watches the store's
// directory, not the file: every write replaces the file by rename, which
// would end a watch on the file's old inode. Events for other files of the
// directory (the temp file, the lock, the key) are ignored. A burst of events
// is coalesced: the channel has room for one notification and a send never
// blocks, so a slow reader sees "changed since you last looked" once. The
// channel closes when ctx ends.
func (c *Client) Watch(ctx context.Context) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, providers.Wrap(providers.KindUnavailable, c.store.name, "", err, "cannot watch the store file")
	}
	target := filepath.Clean(c.store.path)
	if err := w.Add(filepath.Dir(target)); err != nil {
		_ = w.Close() // the Add error is the one to report
		return nil, providers.Wrap(providers.KindInvalidConfig, c.store.name, "", err, "cannot watch directory "+filepath.Dir(target))
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		// Nobody is left to hear about a failed close once ctx has ended.
		defer func() { _ = w.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != target {
					continue
				}
				// A rename onto the store shows up as Create; editors and
				// restores may Write in place or Remove it.
				if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Remove) {
					continue
				}
				select {
				case out <- struct{}{}:
				default:
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow loses events; signal a change so the reader
				// re-reads (level-triggered: a spurious signal is harmless).
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}
