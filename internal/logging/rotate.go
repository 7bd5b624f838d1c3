package logging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// RotatingFile is an append-only log file that is rotated when the next
// write would make it larger than a size bound: agent.log becomes
// agent.log.1, agent.log.1 becomes agent.log.2, and so on; the oldest is
// dropped. It is written here rather than taken from a library because the
// whole need is forty lines: size-based, count-bounded, no compression, no
// time-based rules. Rotation by size (not age) bounds the disk the agent can
// take even during an error storm.
type RotatingFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
}

// OpenRotatingFile opens path for appending (created 0640, parent
// directories 0750). maxBytes <= 0 and maxFiles <= 0 take the defaults.
func OpenRotatingFile(path string, maxBytes int64, maxFiles int) (*RotatingFile, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFileBytes
	}
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	if err := ensureDir(path); err != nil {
		return nil, err
	}
	r := &RotatingFile{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	// 0640: the dso group reads the log for `docker dso system logs`; the
	// log holds no secret values by design.
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640) //nolint:gosec // group-readable on purpose, see above

	if err != nil {
		return fmt.Errorf("cannot open log file %s: %w (fix logging.file or its directory's permissions)", r.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("cannot stat log file %s: %w", r.path, err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would push the file past the
// bound. A single line larger than the bound is still written whole (into
// a fresh file): splitting a JSON line would make it unreadable.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fmt.Errorf("log file %s is closed", r.path)
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate shifts the numbered files up by one and reopens an empty active
// file. Renames are atomic, so a reader sees either the old or the new name.
func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("cannot close log file %s for rotation: %w", r.path, err)
	}
	r.f = nil
	oldest := rotatedName(r.path, r.maxFiles-1)
	if err := os.Remove(oldest); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove old log file %s: %w", oldest, err)
	}
	for i := r.maxFiles - 2; i >= 0; i-- {
		from, to := rotatedName(r.path, i), rotatedName(r.path, i+1)
		if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot rotate log file %s to %s: %w", from, to, err)
		}
	}
	return r.open()
}

// Sync flushes the active file to disk.
func (r *RotatingFile) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	return r.f.Sync()
}

// Close closes the active file. Later writes fail.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
