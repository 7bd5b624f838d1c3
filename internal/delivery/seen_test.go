package delivery

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSeenBy looks through this test process's own /proc/PID/root (the
// same mount namespace): a directory is seen as itself, a different
// directory is not, and a missing process or path is "cannot tell".
func TestSeenBy(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pid := os.Getpid()
	if ok, err := SeenBy(pid, a, a); err != nil || !ok {
		t.Errorf("SeenBy(a, a) = %v, %v; want true", ok, err)
	}
	if ok, err := SeenBy(pid, a, b); err != nil || ok {
		t.Errorf("SeenBy(a, b) = %v, %v; want false", ok, err)
	}
	// Missing on either side: not what the container has.
	if ok, err := SeenBy(pid, filepath.Join(dir, "missing"), a); err != nil || ok {
		t.Errorf("missing target = %v, %v; want false", ok, err)
	}
	if ok, err := SeenBy(pid, a, filepath.Join(dir, "missing")); err != nil || ok {
		t.Errorf("missing source = %v, %v; want false", ok, err)
	}
	// No process to look through: cannot tell.
	if _, err := SeenBy(0, a, a); err == nil {
		t.Error("pid 0: want an error")
	}
	if _, err := SeenBy(1<<22+7, a, a); err == nil {
		t.Error("a pid that does not exist: want an error")
	}
}
