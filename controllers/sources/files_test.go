package sources

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type watchFixture struct {
	root, config, bindings string
	reloads                atomic.Int32
	sigs                   chan os.Signal
	w                      *FileWatcher
}

func startFileWatcher(t *testing.T, bindingsExist bool, bindings func(root string) string) *watchFixture {
	t.Helper()
	root := t.TempDir()
	f := &watchFixture{root: root, config: filepath.Join(root, "dso.yaml"), sigs: make(chan os.Signal, 1)}
	f.bindings = filepath.Join(root, "bindings.d")
	if bindings != nil {
		f.bindings = bindings(root)
	}
	write(t, f.config, "agent: {}\n")
	if bindingsExist {
		if err := os.MkdirAll(f.bindings, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := NewFileWatcher(f.config, []string{f.bindings}, func() { f.reloads.Add(1) },
		FileWatcherOptions{Debounce: 30 * time.Millisecond, Recheck: 50 * time.Millisecond, Signals: f.sigs})
	f.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("FileWatcher.Start = %v", err)
		}
	})
	// Let the watches be added before the test changes anything.
	time.Sleep(50 * time.Millisecond)
	return f
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// expectReload waits for at least one reload beyond before.
func (f *watchFixture) expectReload(t *testing.T, before int32, what string) {
	t.Helper()
	eventually(t, 10*time.Second, "reload after "+what, func() bool { return f.reloads.Load() > before })
}

func TestFileWatcherReloads(t *testing.T) {
	tests := []struct {
		name     string
		exists   bool
		bindings func(root string) string
		change   func(t *testing.T, f *watchFixture)
	}{
		{name: "config written in place", exists: true, change: func(t *testing.T, f *watchFixture) {
			write(t, f.config, "agent: {cache: {ttl: 1m}}\n")
		}},
		{name: "config replaced by rename (editor, git)", exists: true, change: func(t *testing.T, f *watchFixture) {
			tmp := filepath.Join(f.root, ".dso.yaml.swp")
			write(t, tmp, "agent: {}\n# new\n")
			if err := os.Rename(tmp, f.config); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "binding added", exists: true, change: func(t *testing.T, f *watchFixture) {
			write(t, filepath.Join(f.bindings, "web.yaml"), "kind: SecretBinding\n")
		}},
		{name: "bindings dir created later next to the config", exists: false, change: func(t *testing.T, f *watchFixture) {
			if err := os.Mkdir(f.bindings, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "bindings dir whose parent appears later (recheck)", exists: false,
			bindings: func(root string) string { return filepath.Join(root, "gitops", "checkout", "bindings") },
			change: func(t *testing.T, f *watchFixture) {
				if err := os.MkdirAll(f.bindings, 0o755); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "SIGHUP", exists: true, change: func(t *testing.T, f *watchFixture) { f.sigs <- syscall.SIGHUP }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFileWatcher(t, tc.exists, tc.bindings)
			if n := f.reloads.Load(); n != 0 {
				t.Fatalf("%d reloads before any change, want 0", n)
			}
			tc.change(t, f)
			f.expectReload(t, 0, tc.name)
		})
	}
}

func TestFileWatcherBindingLifecycle(t *testing.T) {
	f := startFileWatcher(t, true, nil)
	binding := filepath.Join(f.bindings, "web.yaml")
	steps := []struct {
		what string
		do   func()
	}{
		{"binding written", func() { write(t, binding, "v: 1\n") }},
		{"binding rewritten", func() { write(t, binding, "v: 2\n") }},
		{"binding removed", func() {
			if err := os.Remove(binding); err != nil {
				t.Fatal(err)
			}
		}},
		{"bindings dir removed", func() {
			if err := os.RemoveAll(f.bindings); err != nil {
				t.Fatal(err)
			}
		}},
		{"bindings dir re-created", func() {
			if err := os.Mkdir(f.bindings, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		// The new dir must be watched again, not only seen by its parent.
		{"binding written in the re-created dir", func() { write(t, binding, "v: 3\n") }},
	}
	for _, s := range steps {
		// Wait out the debounce of the previous step so each step is seen
		// on its own.
		time.Sleep(150 * time.Millisecond)
		before := f.reloads.Load()
		s.do()
		f.expectReload(t, before, s.what)
	}
}

func TestFileWatcherIgnoresUnrelatedAndCoalesces(t *testing.T) {
	f := startFileWatcher(t, true, nil)
	write(t, filepath.Join(f.root, "unrelated.txt"), "x")
	if err := os.Chmod(f.config, 0o640); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := f.reloads.Load(); n != 0 {
		t.Fatalf("%d reloads for an unrelated file and a chmod, want 0", n)
	}
	for i := range 20 {
		write(t, filepath.Join(f.bindings, fmt.Sprintf("b%d.yaml", i)), "x")
	}
	f.expectReload(t, 0, "a burst of 20 writes")
	time.Sleep(200 * time.Millisecond)
	// One reload is expected; a slow machine may split the burst once.
	if n := f.reloads.Load(); n > 2 {
		t.Fatalf("a burst of 20 writes caused %d reloads, want 1 (debounced)", n)
	}
}

// TestFileWatcherSetDirs: a reloaded config naming other bindings folders
// moves the watch: the new folder's changes reload, the old one's do not.
func TestFileWatcherSetDirs(t *testing.T) {
	f := startFileWatcher(t, true, nil)
	other := filepath.Join(f.root, "gitops")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	// The new folder's parent (root) is watched already for the config
	// file, so creating it may reload; wait for that to settle.
	time.Sleep(200 * time.Millisecond)
	f.w.SetDirs([]string{other})
	time.Sleep(200 * time.Millisecond)

	before := f.reloads.Load()
	write(t, filepath.Join(other, "web.yaml"), "kind: SecretBinding\n")
	f.expectReload(t, before, "a binding added in the new folder")

	time.Sleep(200 * time.Millisecond)
	before = f.reloads.Load()
	write(t, filepath.Join(f.bindings, "old.yaml"), "kind: SecretBinding\n")
	time.Sleep(500 * time.Millisecond) // 10x the debounce: long enough for a reload that should not come
	if n := f.reloads.Load(); n != before {
		t.Errorf("%d reloads after a change in the folder no longer named, want 0", n-before)
	}
}
