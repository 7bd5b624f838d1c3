package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/dso-dev/dso/providers"
)

const (
	// FormatV1 names the container layout inside the age file. A store
	// written by a newer dso with another format is refused, not misread.
	FormatV1 = "dso.dev/local-store/v1"

	// AgentPath is the store the agent uses when run as a system service.
	AgentPath = "/var/lib/dso/vault.enc"

	// DefaultName is the store name used in error messages when the store
	// does not come from a SecretStore object.
	DefaultName = "local"

	// maxStoreFile bounds how much we read from disk. 1,000 keys at the 1 MiB
	// value limit would not fit, but a store that size is a misuse; the
	// bound keeps a corrupt or hostile file from exhausting memory.
	maxStoreFile = 256 << 20
)

// DefaultUserPath is the store used by the CLI when no config names one:
// ~/.dso/vault.enc.
func DefaultUserPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for the default store ~/.dso/vault.enc: %w; pass --path or name a local store in the config", err)
	}
	return filepath.Join(home, ".dso", "vault.enc"), nil
}

// DefaultKeyFile is the key file beside path when a store does not name one.
func DefaultKeyFile(path string) string { return path + ".key" }

// Entry is one secret of the store.
type Entry struct {
	Key string
	// Value is the exact bytes that were set. List leaves it nil.
	Value []byte
	// Version grows by one on every set of this key.
	Version int64
	// Updated is when the value was last set.
	Updated time.Time
}

// VersionID is Version as the provider version string.
func (e Entry) VersionID() string { return strconv.FormatInt(e.Version, 10) }

// entry is one secret inside the container.
type entry struct {
	Value   []byte
	Version int64
	Updated time.Time
}

// container is the plaintext inside the age file (see codec.go).
type container struct {
	Entries map[string]*entry
	// Deleted keeps the last version of removed keys (see package doc).
	Deleted map[string]int64
}

// Store is an open local store. It re-reads the file on every operation, so
// several processes can use one store; it holds no plaintext between calls.
type Store struct {
	name     string
	path     string
	keyFile  string
	identity *age.X25519Identity
	now      func() time.Time
}

// Option adjusts a Store.
type Option func(*Store)

// WithName sets the store name used in error messages (the SecretStore name).
func WithName(name string) Option { return func(s *Store) { s.name = name } }

// WithClock replaces time.Now (tests use it for stable output).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

func newStore(path, keyFile string, opts []Option) *Store {
	if keyFile == "" {
		keyFile = DefaultKeyFile(path)
	}
	s := &Store{name: DefaultName, path: path, keyFile: keyFile, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Path is the store file.
func (s *Store) Path() string { return s.path }

// KeyFile is the key file.
func (s *Store) KeyFile() string { return s.keyFile }

// LockFile is the file writers flock.
func (s *Store) LockFile() string { return s.path + ".lock" }

// Open loads the key of an existing store. keyFile "" means `<path>.key`.
// It does not read the store file; Get, List and Validate do.
func Open(path, keyFile string, opts ...Option) (*Store, error) {
	s := newStore(path, keyFile, opts)
	if path == "" {
		return nil, providers.Errorf(providers.KindInvalidConfig, s.name, "", "no store path given: set spec.local.path")
	}
	id, err := s.readKey()
	if err != nil {
		return nil, err
	}
	s.identity = id
	return s, nil
}

// readKey loads and checks the key file. Parse errors are not wrapped: their
// text could quote part of the key.
func (s *Store) readKey() (*age.X25519Identity, error) {
	fi, err := os.Stat(s.keyFile) //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(s.path); errors.Is(serr, fs.ErrNotExist) { //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
			return nil, providers.Errorf(providers.KindInvalidConfig, s.name, "",
				"store %s does not exist: run `docker dso init` to create it", s.path)
		}
		return nil, providers.Errorf(providers.KindInvalidConfig, s.name, "",
			"key file %s is missing, so store %s cannot be decrypted: restore the key file from a backup or set spec.local.keyFile", s.keyFile, s.path)
	}
	if err != nil {
		return nil, providers.Wrap(providers.KindPermissionDenied, s.name, "", err, "cannot read key file "+s.keyFile)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, providers.Errorf(providers.KindPermissionDenied, s.name, "",
			"key file %s is accessible by group or others (mode %04o): run `chmod 600 %s`", s.keyFile, perm, s.keyFile)
	}
	raw, err := os.ReadFile(s.keyFile) //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
	if err != nil {
		return nil, providers.Wrap(providers.KindPermissionDenied, s.name, "", err, "cannot read key file "+s.keyFile)
	}
	defer clear(raw)
	ids, err := age.ParseIdentities(bytes.NewReader(raw))
	if err != nil || len(ids) != 1 {
		return nil, providers.Errorf(providers.KindInvalidConfig, s.name, "",
			"key file %s does not hold exactly one age X25519 identity: restore it from a backup", s.keyFile)
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, providers.Errorf(providers.KindInvalidConfig, s.name, "",
			"key file %s holds an age identity that is not X25519: dso stores use X25519 keys", s.keyFile)
	}
	return id, nil
}

// Init creates a new empty store with a fresh key: the directory (0700 when
// it is created), the key file (0600), the store file (0600) and the lock
// file. It refuses to replace an existing key or store unless force is set:
// a new key makes every value of the old store unreadable.
func Init(path, keyFile string, force bool, opts ...Option) (*Store, error) {
	s := newStore(path, keyFile, opts)
	if path == "" {
		return nil, fmt.Errorf("no store path given: pass --path or name a local store in the config")
	}
	for _, dir := range uniq(filepath.Dir(s.path), filepath.Dir(s.keyFile)) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create directory %s for the local store: %w", dir, err)
		}
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !force {
		for _, f := range []string{s.path, s.keyFile} {
			if _, err := os.Lstat(f); err == nil {
				return nil, fmt.Errorf("%s already exists: refusing to replace it, because a new key makes the existing secrets unreadable; pass --force to start an empty store anyway", f)
			}
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate a key for the local store: %w", err)
	}
	keyText := fmt.Sprintf("# dso local store key for %s\n# created: %s\n# public key: %s\n%s\n",
		s.path, s.now().UTC().Format(time.RFC3339), id.Recipient(), id)
	if err := writeAtomic(s.keyFile, []byte(keyText)); err != nil {
		return nil, fmt.Errorf("write key file %s: %w", s.keyFile, err)
	}
	s.identity = id
	if err := s.write(&container{Entries: map[string]*entry{}}); err != nil {
		return nil, err
	}
	return s, nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// Get returns the current value of key.
func (s *Store) Get(key string) (Entry, error) {
	if err := providers.ValidateRef(s.name, providers.Ref{Key: key}); err != nil {
		return Entry{}, err
	}
	var e *entry
	var found bool
	err := s.decrypt(func(plain []byte) (err error) {
		e, found, err = find(plain, key)
		return err
	})
	if err != nil {
		return Entry{}, err
	}
	if !found {
		return Entry{}, providers.Errorf(providers.KindNotFound, s.name, key, "no such key in %s: add it with `docker dso secret set %s`", s.path, key)
	}
	return Entry{Key: key, Value: e.Value, Version: e.Version, Updated: e.Updated}, nil
}

// Set stores value under key and returns the new entry (without Value).
func (s *Store) Set(key string, value []byte) (Entry, error) {
	if err := providers.ValidateRef(s.name, providers.Ref{Key: key}); err != nil {
		return Entry{}, err
	}
	if err := providers.CheckSize(s.name, key, len(value)); err != nil {
		return Entry{}, err
	}
	var out Entry
	err := s.update(func(c *container) error {
		prev := c.Deleted[key]
		if e, ok := c.Entries[key]; ok {
			prev = e.Version
		}
		e := &entry{Value: bytes.Clone(value), Version: prev + 1, Updated: s.now().UTC()}
		c.Entries[key] = e
		delete(c.Deleted, key)
		out = Entry{Key: key, Version: e.Version, Updated: e.Updated}
		return nil
	})
	return out, err
}

// Delete removes key; a missing key is a KindNotFound error.
func (s *Store) Delete(key string) error {
	if err := providers.ValidateRef(s.name, providers.Ref{Key: key}); err != nil {
		return err
	}
	return s.update(func(c *container) error {
		e, ok := c.Entries[key]
		if !ok {
			return providers.Errorf(providers.KindNotFound, s.name, key, "no such key in %s", s.path)
		}
		if c.Deleted == nil {
			c.Deleted = map[string]int64{}
		}
		c.Deleted[key] = e.Version
		delete(c.Entries, key)
		return nil
	})
}

// List returns the entries whose key starts with prefix, sorted by key,
// without their values.
func (s *Store) List(prefix string) ([]Entry, error) {
	c, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(c.Entries))
	for k, e := range c.Entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Entry{Key: k, Version: e.Version, Updated: e.Updated})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Validate reads and decrypts the store.
func (s *Store) Validate() error {
	_, err := s.read()
	return err
}

// update runs fn on the current container under the writer lock and writes
// the result. Reading inside the lock is what makes concurrent sets safe.
func (s *Store) update(fn func(*container) error) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	c, err := s.read()
	if err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	return s.write(c)
}

// lock takes the exclusive inter-process lock. flock locks belong to the
// open file description, so two goroutines of one process that each open the
// lock file exclude each other as two processes do. The kernel drops the
// lock when a holder dies, so a crashed `secret set` never wedges the store.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(s.LockFile(), os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", s.LockFile(), err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	// Nothing is ever written to the lock file, so closing it cannot fail
	// in a way that matters; closing also releases the lock.
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", s.LockFile(), err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
	}, nil
}

// read decrypts and parses the whole store file.
func (s *Store) read() (*container, error) {
	var c *container
	err := s.decrypt(func(plain []byte) (err error) {
		c, err = decode(plain)
		return err
	})
	return c, err
}

// decrypt opens the store file, decrypts it and hands the plaintext to
// parse; the plaintext is zeroed afterwards, so parse must copy what it
// keeps. Errors never wrap parser errors: a parser's message can quote bytes
// of the plaintext.
func (s *Store) decrypt(parse func(plain []byte) error) error {
	f, err := os.Open(s.path) //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
	if errors.Is(err, fs.ErrNotExist) {
		return providers.Errorf(providers.KindInvalidConfig, s.name, "",
			"store %s does not exist: run `docker dso init` to create it", s.path)
	}
	if err != nil {
		return providers.Wrap(providers.KindPermissionDenied, s.name, "", err, "cannot open store file "+s.path)
	}
	defer func() { _ = f.Close() }() // read-only: a close error cannot lose data
	r, err := age.Decrypt(io.LimitReader(f, maxStoreFile), s.identity)
	if err != nil {
		return s.decryptError()
	}
	// Size the buffer from the file so ReadAll does not grow it step by step
	// (each step would leave an unzeroed copy of the plaintext behind).
	size := 512
	if fi, err := f.Stat(); err == nil && fi.Size() < maxStoreFile {
		size = int(fi.Size())
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err = buf.ReadFrom(r)
	plain := buf.Bytes()
	defer clear(plain[:cap(plain)])
	if err != nil {
		// A failed chunk authentication: tampered or truncated file.
		return s.decryptError()
	}
	err = parse(plain)
	if errors.Is(err, errNewerFormat) {
		return providers.Errorf(providers.KindInvalidConfig, s.name, "",
			"store %s was written in a newer format than this dso reads (%s): upgrade dso", s.path, FormatV1)
	}
	if err != nil {
		return providers.Errorf(providers.KindInvalidConfig, s.name, "",
			"store %s decrypted but its content is not a dso store: restore it from a backup", s.path)
	}
	return nil
}

func (s *Store) decryptError() error {
	return providers.Errorf(providers.KindPermissionDenied, s.name, "",
		"store %s cannot be decrypted with key file %s: the key does not match or the file is damaged; use the key file that `docker dso init` created for this store", s.path, s.keyFile)
}

// write encrypts c and replaces the store file atomically.
func (s *Store) write(c *container) error {
	plain := encode(c)
	defer clear(plain)
	var buf bytes.Buffer
	buf.Grow(len(plain) + len(plain)/32 + 256)
	w, err := age.Encrypt(&buf, s.identity.Recipient())
	if err != nil {
		return fmt.Errorf("encrypt store %s: %w", s.path, err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("encrypt store %s: %w", s.path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypt store %s: %w", s.path, err)
	}
	if buf.Len() > maxStoreFile {
		return fmt.Errorf("store %s would grow past %d MiB, the most dso reads back: remove secrets you no longer need", s.path, maxStoreFile>>20)
	}
	if err := writeAtomic(s.path, buf.Bytes()); err != nil {
		return fmt.Errorf("write store %s: %w", s.path, err)
	}
	return nil
}

// writeAtomic writes data to a 0600 temp file beside path, fsyncs it, renames
// it over path and fsyncs the directory so the rename itself is durable.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Best effort cleanup: err is what the caller needs to see.
			_ = tmp.Close()
			_ = os.Remove(tmp.Name()) //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that detail.
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil { //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
		return err
	}
	d, err := os.Open(dir) //nolint:gosec // G703: store, key and lock paths are the operator's configuration, like G304
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
