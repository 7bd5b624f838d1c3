package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the state file inside state.dir.
const FileName = "dso.db"

// SchemaVersion is the layout this binary writes. A store written by a newer
// dso is refused rather than half-understood: a downgrade would otherwise
// silently drop or misread what the newer version recorded.
const SchemaVersion = 1

// Defaults for Options.
const (
	DefaultHistoryMaxAge     = 30 * 24 * time.Hour
	DefaultHistoryMaxEntries = 10000
	DefaultLockTimeout       = time.Second
)

// Kinds of applied objects.
const (
	KindSecretStore   = "SecretStore"
	KindSecretBinding = "SecretBinding"
)

// Results of PutObject, as `docker dso apply` prints them.
const (
	Created    = "created"
	Configured = "configured"
	Unchanged  = "unchanged"
)

var (
	// ErrInUse means another process holds the state file's lock.
	ErrInUse = errors.New("state store is in use by another process")
	// ErrNewerSchema means the file was written by a newer dso.
	ErrNewerSchema = errors.New("state store was written by a newer dso")
	// ErrUnsafeMode means the file is readable by group or others.
	ErrUnsafeMode = errors.New("state store file is readable by group or others")
)

var (
	bucketMeta         = []byte("meta")
	bucketObjects      = []byte("objects")
	bucketStatuses     = []byte("statuses")
	bucketRotations    = []byte("rotations")
	bucketRotationIdx  = []byte("rotations_by_binding")
	bucketRotationRefs = []byte("rotation_bindings")
	bucketRecovery     = []byte("recovery")
	bucketEvents       = []byte("events")
	bucketEventIdx     = []byte("events_by_binding")
	bucketEventRefs    = []byte("event_bindings")

	keySchema = []byte("schema")
)

// Options tune the store. Zero values take the defaults.
type Options struct {
	// HistoryMaxAge is how long rotations, recovery records and events are
	// kept (default 30 days).
	HistoryMaxAge time.Duration
	// HistoryMaxEntries bounds each history bucket (default 10000), so a
	// flapping container cannot grow the file without limit inside the age
	// window.
	HistoryMaxEntries int
	// Clock is the time source for Prune (default time.Now); tests inject one.
	Clock func() time.Time
	// LockTimeout is how long Open waits for the file lock (default 1s).
	LockTimeout time.Duration
}

// Store is the open state file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	opts Options
}

// Stats describe the store for `status` and `doctor`.
type Stats struct {
	Path          string         `json:"path"`
	SizeBytes     int64          `json:"sizeBytes"`
	SchemaVersion int            `json:"schemaVersion"`
	Counts        map[string]int `json:"counts"` // objects, statuses, rotations, recovery, events
}

// Open opens (creating if needed) dir/dso.db.
func Open(dir string, opts Options) (*Store, error) {
	if opts.HistoryMaxAge <= 0 {
		opts.HistoryMaxAge = DefaultHistoryMaxAge
	}
	if opts.HistoryMaxEntries <= 0 {
		opts.HistoryMaxEntries = DefaultHistoryMaxEntries
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if dir == "" {
		return nil, errors.New("state directory is empty: set state.dir in dso.yaml (default /var/lib/dso/state)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory %s (state.dir): %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("state store %s is not a regular file: move it away or point state.dir elsewhere", path)
		}
		// bbolt keeps the mode of an existing file, so a copy restored with a
		// careless umask would stay readable; refuse and say how to fix it
		// rather than chmod behind the operator's back.
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("state store %s has mode %04o: %w; fix it with: chmod 600 %s", path, perm, ErrUnsafeMode, path)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("check state store %s: %w", path, err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			// bbolt's flock cannot report the holder's pid.
			return nil, fmt.Errorf("%w: %s is locked (another dso agent?): see `docker dso system status`, stop the other agent (`docker dso system disable`) or give this one another state.dir: %w", ErrInUse, path, err)
		}
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, opts: opts}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the schema version and creates the buckets.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("create meta bucket in %s: %w", s.path, err)
		}
		if raw := meta.Get(keySchema); raw != nil {
			v, err := strconv.Atoi(string(raw))
			if err != nil {
				return fmt.Errorf("state store %s has an unreadable schema version: restore a backup or move the file away", s.path)
			}
			if v > SchemaVersion {
				return fmt.Errorf("%w: %s has schema version %d, this dso understands up to %d: upgrade dso, or restore a backup made by this version", ErrNewerSchema, s.path, v, SchemaVersion)
			}
			// v < SchemaVersion would run migrations here; version 1 is the first.
		}
		if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("write schema version to %s: %w", s.path, err)
		}
		for _, b := range [][]byte{bucketObjects, bucketStatuses, bucketRotations, bucketRotationIdx, bucketRotationRefs, bucketRecovery, bucketEvents, bucketEventIdx, bucketEventRefs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s in %s: %w", b, s.path, err)
			}
		}
		return nil
	})
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state store %s: %w", s.path, err)
	}
	return nil
}

// Backup writes a consistent copy of the whole file to w while writers go on
// (a read transaction sees one snapshot). The copy is a valid dso.db: restore
// it by putting it in place of state.dir/dso.db (mode 0600) while the agent is
// stopped.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up state store %s: %w", s.path, err)
	}
	return n, nil
}

// BackupFile writes a backup to path atomically (temporary file, fsync,
// rename), mode 0600, so a half-written backup never looks complete.
func (s *Store) BackupFile(path string) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("create backup file in %s: %w", dir, err)
	}
	tmp := f.Name()
	fail := func(err error) (int64, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return 0, err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(fmt.Errorf("set mode of backup file %s: %w", tmp, err))
	}
	n, err := s.Backup(f)
	if err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("flush backup file %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("close backup file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("move backup into place at %s: %w", path, err)
	}
	return n, nil
}

// Stats reports the file's size and the number of records per bucket.
func (s *Store) Stats() (Stats, error) {
	st := Stats{Path: s.path, SchemaVersion: SchemaVersion, Counts: map[string]int{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		st.SizeBytes = tx.Size()
		for _, name := range []string{"objects", "statuses"} {
			n := 0
			err := tx.Bucket([]byte(name)).ForEachBucket(func(kind []byte) error {
				n += tx.Bucket([]byte(name)).Bucket(kind).Stats().KeyN
				return nil
			})
			if err != nil {
				return err
			}
			st.Counts[name] = n
		}
		for _, b := range [][]byte{bucketRotations, bucketRecovery, bucketEvents} {
			st.Counts[string(b)] = tx.Bucket(b).Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("read state store statistics of %s: %w", s.path, err)
	}
	return st, nil
}
