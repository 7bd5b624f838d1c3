package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openT opens a store in a fresh directory and closes it at the end.
func openT(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "dso", "state")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if got, want := s.Path(), filepath.Join(dir, FileName); got != want {
		t.Errorf("Path() = %s, want %s", got, want)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.Path(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %04o, want %04o", path, got, want)
		}
	}
	if s.opts.HistoryMaxAge != DefaultHistoryMaxAge || s.opts.HistoryMaxEntries != DefaultHistoryMaxEntries || s.opts.LockTimeout != DefaultLockTimeout || s.opts.Clock == nil {
		t.Errorf("defaults not applied: %+v", s.opts)
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // prepares dir (already created)
		dir     func(dir string) string
		wantIs  error
		wantMsg []string
	}{
		{
			name:    "empty dir",
			dir:     func(string) string { return "" },
			wantMsg: []string{"state.dir"},
		},
		{
			name: "group readable file",
			setup: func(t *testing.T, dir string) {
				writeDB(t, dir, 0o640)
			},
			wantIs:  ErrUnsafeMode,
			wantMsg: []string{"0640", "chmod 600"},
		},
		{
			name: "world readable file",
			setup: func(t *testing.T, dir string) {
				writeDB(t, dir, 0o644)
			},
			wantIs:  ErrUnsafeMode,
			wantMsg: []string{"0644", "chmod 600"},
		},
		{
			name: "not a regular file",
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, FileName), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantMsg: []string{"not a regular file"},
		},
		{
			name: "not a bbolt file",
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantMsg: []string{"open state store"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			if tt.dir != nil {
				dir = tt.dir(dir)
			}
			s, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// writeDB creates a valid store in dir and leaves its file with mode.
func writeDB(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, FileName), mode); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInUse(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := Open(dir, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("second Open succeeded while the first holds the store")
	}
	if waited := time.Since(start); waited < 100*time.Millisecond || waited > 5*time.Second {
		t.Errorf("second Open gave up after %v, want about the 200ms lock timeout (bbolt retries every 50ms)", waited)
	}
	if !errors.Is(err, ErrInUse) {
		t.Errorf("error %q is not ErrInUse", err)
	}
	for _, m := range []string{"in use by another process", filepath.Join(dir, FileName), "state.dir"} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
	// Once the first lets go, the store opens again with its data.
	if _, err := first.PutObject(KindSecretBinding, "api-db", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer again.Close()
	if _, ok, _ := again.GetObject(KindSecretBinding, "api-db"); !ok {
		t.Error("object written before Close is gone")
	}
}

func TestSchemaVersion(t *testing.T) {
	tests := []struct {
		name    string
		stored  string
		wantErr []string
		wantIs  error
	}{
		{name: "current", stored: "1"},
		{name: "newer", stored: "2", wantIs: ErrNewerSchema, wantErr: []string{"schema version 2", "up to 1", "upgrade dso"}},
		{name: "garbage", stored: "one", wantErr: []string{"unreadable schema version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDB(t, dir, 0o600)
			db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, []byte(tt.stored))
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want a refusal")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			for _, m := range tt.wantErr {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			// A refused file is left exactly as it was (no downgrade write).
			db, err = bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			_ = db.View(func(tx *bolt.Tx) error {
				if got := string(tx.Bucket(bucketMeta).Get(keySchema)); got != tt.stored {
					t.Errorf("schema after refused Open = %q, want %q untouched", got, tt.stored)
				}
				return nil
			})
		})
	}
}

func TestStats(t *testing.T) {
	s := openT(t, Options{})
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mustNil(t, func() error { _, err := s.PutObject(KindSecretBinding, "a", []byte(`{}`)); return err }())
	mustNil(t, func() error { _, err := s.PutObject(KindSecretBinding, "b", []byte(`{}`)); return err }())
	mustNil(t, func() error { _, err := s.PutObject(KindSecretStore, "vault", []byte(`{}`)); return err }())
	mustNil(t, s.PutStatus(KindSecretBinding, "a", []byte(`{}`)))
	for i := range 3 {
		mustNil(t, s.AppendRotation(t0.Add(time.Duration(i)*time.Second), "t", []string{"a", "b"}, []byte(`{}`)))
	}
	mustNil(t, s.AppendRecovery(t0, []byte(`{}`)))
	mustNil(t, s.AppendEvent(t0, "a", []byte(`{}`)))
	mustNil(t, s.AppendEvent(t0, "", []byte(`{}`)))

	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"objects": 3, "statuses": 1, "rotations": 3, "recovery": 1, "events": 2}
	for k, v := range want {
		if st.Counts[k] != v {
			t.Errorf("Counts[%s] = %d, want %d (all: %v)", k, st.Counts[k], v, st.Counts)
		}
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.SizeBytes <= 0 || st.SizeBytes > fi.Size() || st.Path != s.Path() || st.SchemaVersion != SchemaVersion {
		t.Errorf("Stats = %+v, file size %d", st, fi.Size())
	}
}

func mustNil(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
