package delivery

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteUpdateAndRemove(t *testing.T) {
	w := New(t.TempDir())
	tick := int64(0)
	w.now = func() time.Time { tick++; return time.Unix(0, tick) }
	files := []File{
		{Path: "/run/secrets/tls.pem", Value: []byte("v1-tls"), Mode: 0o440, UID: -1, GID: -1},
		{Path: "/run/secrets/db", Value: []byte("v1-db"), UID: -1, GID: -1},
		{Path: "/etc/app/token", Value: []byte("v1-token"), UID: -1, GID: -1},
	}
	mounts, changed, err := w.Write("shop-api-1", "live", files)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	if len(mounts) != 2 || mounts[0].Target != "/etc/app" || mounts[1].Target != "/run/secrets" {
		t.Fatalf("mounts = %+v", mounts)
	}
	secrets := mounts[1].Source
	if got := read(t, secrets, "tls.pem"); got != "v1-tls" {
		t.Errorf("tls.pem = %q", got)
	}
	if link, _ := os.Readlink(filepath.Join(secrets, "db")); link != "..data/db" {
		t.Errorf("db link = %q, want relative ..data/db (it must resolve inside the container)", link)
	}
	st, _ := os.Stat(filepath.Join(secrets, "tls.pem"))
	if st.Mode().Perm() != 0o440 {
		t.Errorf("tls.pem mode = %v", st.Mode().Perm())
	}
	st, _ = os.Stat(filepath.Join(secrets, "db"))
	if st.Mode().Perm() != 0o400 {
		t.Errorf("default mode = %v, want 0400", st.Mode().Perm())
	}

	// Same content again: nothing changes.
	if _, changed, err := w.Write("shop-api-1", "live", files); err != nil || changed {
		t.Fatalf("rewrite of same content: changed=%v err=%v", changed, err)
	}

	// New value, one file dropped.
	old, _ := os.Readlink(filepath.Join(secrets, "..data"))
	files2 := []File{{Path: "/run/secrets/tls.pem", Value: []byte("v2-tls"), Mode: 0o440, UID: -1, GID: -1}}
	if _, changed, err := w.Write("shop-api-1", "live", files2); err != nil || !changed {
		t.Fatalf("update: changed=%v err=%v", changed, err)
	}
	if got := read(t, secrets, "tls.pem"); got != "v2-tls" {
		t.Errorf("after update tls.pem = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(secrets, "db")); !os.IsNotExist(err) {
		t.Errorf("dropped file still present: %v", err)
	}
	if _, err := os.Stat(filepath.Join(secrets, old)); !os.IsNotExist(err) {
		t.Errorf("previous data dir %s not removed", old)
	}

	// RemoveSets keeps only the named set.
	if _, _, err := w.Write("shop-api-1", "abc123", files2); err != nil {
		t.Fatal(err)
	}
	if err := w.RemoveSets("shop-api-1", "abc123"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(w.TargetDir("shop-api-1"), "live")); !os.IsNotExist(err) {
		t.Errorf("set live not removed")
	}
}

func TestWriteRejectsBadPaths(t *testing.T) {
	w := New(t.TempDir())
	// Names beginning with ".." are the writer's own (..data, ..data_tmp,
	// ..dso_*): a file named so would break or hide the directory's files.
	for _, p := range []string{"relative", "/", "/a/../b", "/a//b", "/run/secrets/..data", "/run/secrets/..data_tmp", "/run/secrets/..dso_1"} {
		if _, _, err := w.Write("t", "live", []File{{Path: p, Value: []byte("x"), UID: -1, GID: -1}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	if _, _, err := w.Write("t", "../x", nil); err == nil {
		t.Errorf("set ../x accepted")
	}
}

// TestReadersNeverSeeAMix updates two files together while readers read
// both through the mount directory: every read pair must come from one version.
func TestReadersNeverSeeAMix(t *testing.T) {
	w := New(t.TempDir())
	mk := func(v int) []File {
		s := []byte(fmt.Sprint(v))
		return []File{{Path: "/s/a", Value: s, UID: -1, GID: -1}, {Path: "/s/b", Value: s, UID: -1, GID: -1}}
	}
	mounts, _, err := w.Write("t", "live", mk(0))
	if err != nil {
		t.Fatal(err)
	}
	dir := mounts[0].Source
	var stop atomic.Bool
	var mixed, reads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				// Resolve ..data once, as a reader opening both files of one
				// version would (the visible names follow ..data per open).
				cur, err := os.Readlink(filepath.Join(dir, "..data"))
				if err != nil {
					continue
				}
				a, errA := os.ReadFile(filepath.Join(dir, cur, "a"))
				b, errB := os.ReadFile(filepath.Join(dir, cur, "b"))
				if errA != nil || errB != nil {
					continue // that version was just removed; a real reader retries
				}
				reads.Add(1)
				if string(a) != string(b) {
					mixed.Add(1)
				}
			}
		}()
	}
	for v := 1; v <= 200; v++ {
		if _, _, err := w.Write("t", "live", mk(v)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if mixed.Load() != 0 {
		t.Fatalf("%d of %d reads saw files from two versions", mixed.Load(), reads.Load())
	}
	if got := read(t, dir, "a"); got != "200" {
		t.Fatalf("final a = %q", got)
	}
}

func TestEnsureTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	w := New(dir)
	mounted, err := w.EnsureTmpfs()
	if err != nil {
		t.Skipf("cannot mount tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unmount(dir) })
	if !mounted {
		t.Fatal("EnsureTmpfs did not mount on a disk directory")
	}
	if ok, _ := IsTmpfs(dir); !ok {
		t.Fatal("not a tmpfs after EnsureTmpfs")
	}
	again, err := w.EnsureTmpfs()
	if err != nil || again {
		t.Fatalf("second EnsureTmpfs: mounted=%v err=%v, want no-op", again, err)
	}
}

// RemoveSets wipes a removed set's file content before unlinking it (a
// reader that still holds the file open sees zeros), and never follows a
// symlink out of the set.
func TestRemoveSetsZeroesContentAndStaysInside(t *testing.T) {
	w := New(t.TempDir())
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := []byte("s3cret-value")
	mounts, _, err := w.Write("web-1", "old", []File{{Path: "/run/secrets/db", Value: secret, UID: -1, GID: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(mounts[0].Source, "planted")); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(filepath.Join(mounts[0].Source, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	if err := w.RemoveSets("web-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mounts[0].Source); !os.IsNotExist(err) {
		t.Errorf("set directory %s still exists: %v", mounts[0].Source, err)
	}
	got := make([]byte, 64)
	n, _ := held.ReadAt(got, 0)
	if want := make([]byte, len(secret)); string(got[:n]) != string(want) {
		t.Errorf("held file reads %q after removal, want %d zero bytes", got[:n], len(secret))
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "not ours" {
		t.Errorf("file outside the set = %q, %v; want it untouched", b, err)
	}
}

func TestPredictablePaths(t *testing.T) {
	w := New("/run/dso/secrets")
	for _, tc := range []struct{ target, dir, want string }{
		{"shop-web-1", "/run/secrets", "/run/dso/secrets/shop-web-1/live/run__secrets"},
		{"/api", "/etc/app/conf.d", "/run/dso/secrets/api/live/etc__app__conf.d"},
	} {
		if got := w.DirFor(tc.target, tc.dir); got != tc.want {
			t.Errorf("DirFor(%q, %q) = %q, want %q", tc.target, tc.dir, got, tc.want)
		}
	}
	// Unsafe or ambiguous names get a hash, never a shared directory.
	if a, b := DirName("/a__b"), DirName("/a/b"); a == b {
		t.Errorf("DirName collision: %q", a)
	}
	if d := w.TargetDir("../../etc"); filepath.Dir(d) != "/run/dso/secrets" {
		t.Errorf("TargetDir escapes the root: %q", d)
	}
	files := []File{{Path: "/run/secrets/a", UID: -1, GID: -1}, {Path: "/etc/x/b", UID: -1, GID: -1}}
	root := t.TempDir()
	w = New(root)
	got := w.Mounts("t", "live", files)
	written, _, err := w.Write("t", "live", files)
	if err != nil || len(got) != 2 || got[0] != written[0] || got[1] != written[1] {
		t.Fatalf("Mounts = %v, Write = %v (%v)", got, written, err)
	}
}
