// Package file is the "file" secret provider: each key is a file under one
// directory (spec.file.dir). It exists for development and for Docker/Swarm
// secret files (/run/secrets), which the engine already writes to a tmpfs.
//
// Every read opens the directory as an os.Root, so the path is resolved by
// the kernel relative to that directory: a key, or a symlink inside the
// directory, that points outside it is refused instead of followed. The root
// is opened per read rather than once so that a directory replaced under the
// agent (a git checkout, a re-created tmpfs) is picked up instead of serving
// from the old, unlinked inode; one extra open is nothing next to the cache
// in front of every provider. Keys are
// also checked with providers.ValidateRef before any file is touched.
//
// Files have no provider versions, so Version is derived from the content:
// the first 16 hex digits (64 bits) of the SHA-256 of the file. A content
// hash was chosen over mtime+size because an editor or `docker secret`
// rewrite can keep the size and land within one mtime tick, and a missed
// change is the one failure a secret operator must not have. Hashing a
// value of at most 1 MiB costs far less than the read itself. A pinned
// ref.Version must equal that hash, otherwise the key is reported not found
// (the file no longer holds that version).
package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// Name is the provider name, the SecretStore spec field "file".
const Name = "file"

// Provider builds file clients. Register it with providers.Registry.
type Provider struct{}

// Name implements providers.Provider.
func (Provider) Name() string { return Name }

// NewClient opens spec.file.dir. The directory must exist when the store is
// loaded; a missing directory is a configuration error naming the field.
func (Provider) NewClient(_ context.Context, store *v1alpha1.SecretStore) (providers.Client, error) {
	if store == nil || store.Spec.File == nil {
		name := ""
		if store != nil {
			name = store.Name
		}
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.file is not set")
	}
	return Open(store.Name, store.Spec.File.Dir)
}

// Client reads secrets from files under one directory.
type Client struct {
	store string
	dir   string
}

// Open returns a client for the files under dir. dir must be an absolute
// path: the agent's working directory is not something a config should
// depend on.
func Open(store, dir string) (*Client, error) {
	if dir == "" {
		return nil, providers.Errorf(providers.KindInvalidConfig, store, "", "spec.file.dir is empty: set it to the directory holding the secret files")
	}
	if !filepath.IsAbs(dir) {
		return nil, providers.Errorf(providers.KindInvalidConfig, store, "", "spec.file.dir %q is not an absolute path: write it starting with /", dir)
	}
	c := &Client{store: store, dir: dir}
	root, err := c.open()
	if err != nil {
		return nil, providers.Wrap(providers.KindInvalidConfig, store, "", err, fmt.Sprintf("cannot open spec.file.dir %q: create it or fix the path", dir))
	}
	// Only probing that the directory opens; nothing was written through
	// the root, so its close has nothing to report.
	_ = root.Close()
	return c, nil
}

func (c *Client) open() (*os.Root, error) { return os.OpenRoot(c.dir) }

// Get reads the file named by ref.Key.
func (c *Client) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	if err := providers.ValidateRef(c.store, ref); err != nil {
		return providers.Secret{}, err
	}
	if err := ctx.Err(); err != nil {
		return providers.Secret{}, providers.Wrap(providers.KindUnavailable, c.store, ref.Key, err, "request cancelled before the file was read")
	}
	raw, err := c.read(ref.Key)
	if err != nil {
		return providers.Secret{}, err
	}
	sum := sha256.Sum256(raw)
	version := hex.EncodeToString(sum[:8])
	if ref.Version != "" && ref.Version != version {
		clear(raw)
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, c.store, ref.Key, "version %q is not the current content of the file (it is %q): file stores keep only the current version", ref.Version, version)
	}
	s, err := providers.Finish(c.store, ref, raw, version)
	if ref.Property != "" || err != nil {
		// Finish copied the field out (or failed): the whole file is ours
		// to wipe.
		clear(raw)
	}
	return s, err
}

// read opens key through the root, refuses non-regular files and reads at
// most one byte more than the size limit so an oversized file is detected
// without reading all of it.
func (c *Client) read(key string) ([]byte, error) {
	root, err := c.open()
	if err != nil {
		return nil, providers.Wrap(providers.KindUnavailable, c.store, key, err, fmt.Sprintf("cannot open spec.file.dir %q", c.dir))
	}
	// Read-only handles: a close error cannot lose data.
	defer func() { _ = root.Close() }()
	f, err := root.Open(key)
	if err != nil {
		return nil, c.mapErr(key, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, c.mapErr(key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, providers.Errorf(providers.KindNotFound, c.store, key, "%s is not a regular file", filepath.Join(c.dir, key))
	}
	raw, err := io.ReadAll(io.LimitReader(f, providers.MaxValueSize+1))
	if err != nil {
		clear(raw)
		return nil, c.mapErr(key, err)
	}
	if err := providers.CheckSize(c.store, key, len(raw)); err != nil {
		clear(raw)
		return nil, err
	}
	return raw, nil
}

// mapErr turns filesystem errors into provider error kinds. os.Root reports
// an escape with an unexported error whose text is stable ("path escapes
// from parent"); matching that text is the only way to tell it apart.
func (c *Client) mapErr(key string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return providers.Errorf(providers.KindNotFound, c.store, key, "no file %s", filepath.Join(c.dir, key))
	case errors.Is(err, fs.ErrPermission):
		return providers.Errorf(providers.KindPermissionDenied, c.store, key, "the agent may not read %s: fix its owner or mode", filepath.Join(c.dir, key))
	case errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent":
		return providers.Errorf(providers.KindInvalidRef, c.store, key, "key resolves outside %s (through a symlink or ..): file stores only serve files inside their directory", c.dir)
	default:
		return providers.Wrap(providers.KindUnknown, c.store, key, err, "reading the file failed")
	}
}

// Validate checks that the directory is still there and listable.
func (c *Client) Validate(_ context.Context) error {
	root, err := c.open()
	if err != nil {
		return providers.Wrap(providers.KindUnavailable, c.store, "", err, fmt.Sprintf("spec.file.dir %q is not readable", c.dir))
	}
	return root.Close()
}

// Close does nothing: the client holds no handle between reads.
func (c *Client) Close() error { return nil }
