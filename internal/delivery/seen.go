package delivery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// SeenBy reports whether the process pid (a container's init) sees, at
// target inside its mount namespace, the very directory source is on the
// host: same device and inode. A path string alone cannot tell: a
// container created before the agent mounted its tmpfs bind-mounted the
// on-disk directory that the tmpfs now hides, and would never see a file
// the agent writes. It reads /proc/PID/root, so it needs the privileges the
// agent runs with; an error means "cannot tell", not "no".
func SeenBy(pid int, target, source string) (bool, error) {
	if pid <= 0 {
		return false, fmt.Errorf("no process to look through (pid %d)", pid)
	}
	var in, host syscall.Stat_t
	if err := syscall.Stat(source, &host); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Docker creates a bind's missing source when it creates the
			// container; gone now, it is not what the container has.
			return false, nil
		}
		return false, &os.PathError{Op: "stat", Path: source, Err: err}
	}
	proc := filepath.Join("/proc", fmt.Sprint(pid))
	if _, err := os.Stat(proc); err != nil {
		return false, err // the process is gone (or /proc is not ours): cannot tell
	}
	p := filepath.Join(proc, "root", filepath.Clean("/"+target))
	if err := syscall.Stat(p, &in); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // nothing mounted there at all
		}
		return false, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return in.Dev == host.Dev && in.Ino == host.Ino, nil
}
