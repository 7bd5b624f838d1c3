// Package delivery writes secret files where containers can read them
// without the values ever touching disk or `docker inspect`: a tmpfs owned
// by the agent (default /run/dso/secrets), one directory tree per target,
// bind-mounted read-only into the container.
//
// Directories are mounted, never single files: a file bind mount pins the
// inode, so an atomic rename would never reach the container. Each mounted
// directory therefore shadows the target path's parent directory in the
// container (validation and docs say so).
//
// Inside a mounted directory the layout is the one Kubernetes uses for
// projected volumes: the files live in a timestamped hidden directory,
// "..data" is a symlink to it, and each visible name is a relative symlink
// "name -> ..data/name". An update writes a new hidden directory, then
// atomically renames a new "..data" symlink over the old one, so a reader
// sees either every old file or every new one, never a mix.
package delivery

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// File is one file to deliver.
type File struct {
	// Path is absolute inside the container.
	Path  string
	Value []byte
	Mode  os.FileMode
	UID   int // -1: leave as the agent's
	GID   int // -1: leave as the agent's
}

// Mount is a host directory to bind-mount read-only at Target.
type Mount struct {
	Source string
	Target string
}

// Writer owns the delivery root.
type Writer struct {
	Root string
	now  func() time.Time
}

// New returns a Writer rooted at root. It does not touch the filesystem;
// call EnsureTmpfs before writing.
func New(root string) *Writer { return &Writer{Root: root, now: time.Now} }

// EnsureTmpfs creates Root and mounts a tmpfs there unless Root already is
// on a tmpfs. It refuses to deliver onto a disk-backed directory, because
// plaintext would then reach the disk.
func (w *Writer) EnsureTmpfs() (mounted bool, err error) {
	// 0755 like the tmpfs mounted below: the parents (/run/dso) also hold
	// the API socket, which the dso group must reach.
	if err := os.MkdirAll(w.Root, 0o755); err != nil { //nolint:gosec // G301: see above
		return false, fmt.Errorf("create secrets dir %s: %w", w.Root, err)
	}
	ok, err := IsTmpfs(w.Root)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	if err := unix.Mount("tmpfs", w.Root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=64m"); err != nil {
		return false, fmt.Errorf("%s is not a tmpfs and mounting one failed (the agent needs root or CAP_SYS_ADMIN): %w", w.Root, err)
	}
	return true, nil
}

// IsTmpfs reports whether dir is on a tmpfs (or ramfs).
func IsTmpfs(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == 0x858458f6 /* RAMFS_MAGIC */, nil
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// readable returns s when it is a safe path element, else a slug of it
// with a short hash (so two different inputs never share a directory).
func readable(s string) string {
	if s != "" && s != "." && s != ".." && !strings.HasPrefix(s, "..") && !unsafeChars.MatchString(s) && len(s) <= 64 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	slug := unsafeChars.ReplaceAllString(s, "_")
	slug = strings.TrimLeft(slug, ".")
	if len(slug) > 40 {
		slug = slug[:40]
	}
	return slug + "-" + hex.EncodeToString(sum[:4])
}

// TargetDir is the directory of one target: <root>/<container name>. The
// path is predictable on purpose, so a compose file can bind-mount a
// target's live directory up front (see DirFor).
func (w *Writer) TargetDir(target string) string {
	return filepath.Join(w.Root, readable(strings.TrimPrefix(target, "/")))
}

// DirName is the directory name a container directory gets inside a set:
// the path without its leading slash, "/" replaced by "__"
// (/run/secrets -> run__secrets). Paths with other characters get a slug
// and a hash.
func DirName(containerDir string) string {
	if strings.Contains(containerDir, "__") {
		return readable(containerDir + "\x00") // never readable: slug + hash
	}
	return readable(strings.ReplaceAll(strings.TrimPrefix(path.Clean(containerDir), "/"), "/", "__"))
}

// DirFor is the host directory holding target's files for containerDir in
// the "live" set, i.e. what to bind-mount in a compose file:
// <root>/<container name>/live/<DirName(containerDir)>.
func (w *Writer) DirFor(target, containerDir string) string {
	return filepath.Join(w.TargetDir(target), "live", DirName(containerDir))
}

// Mounts returns the mounts Write would return, without writing.
func (w *Writer) Mounts(target, set string, files []File) []Mount {
	seen := map[string]bool{}
	var dirs []string
	for _, f := range files {
		d := path.Dir(f.Path)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	out := make([]Mount, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, Mount{Source: filepath.Join(w.TargetDir(target), set, DirName(d)), Target: d})
	}
	return out
}

// Write delivers files for target into the set named set ("live" for
// in-place updates, or a hash prefix for a swap candidate), grouping them by
// parent directory. It returns the mounts to give the container, in a
// stable order, and whether any file content changed.
func (w *Writer) Write(target, set string, files []File) ([]Mount, bool, error) {
	if set == "" || strings.ContainsAny(set, "/\x00") || set == "." || set == ".." {
		return nil, false, fmt.Errorf("invalid delivery set %q", set)
	}
	groups := map[string][]File{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || path.Dir(f.Path) == f.Path {
			return nil, false, fmt.Errorf("file path %q must be absolute, clean and not /", f.Path)
		}
		if strings.HasPrefix(path.Base(f.Path), "..") {
			// ..data, ..data_tmp and ..dso_* are the writer's own: a file
			// named so would loop or hide every file of its directory.
			return nil, false, fmt.Errorf("file path %q: a name beginning with '..' is reserved for dso's own links", f.Path)
		}
		dir := path.Dir(f.Path)
		groups[dir] = append(groups[dir], f)
	}
	dirs := make([]string, 0, len(groups))
	for d := range groups {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	base := filepath.Join(w.TargetDir(target), set)
	var mounts []Mount
	changed := false
	for _, d := range dirs {
		// Named by the target directory, so a source stays stable when the
		// set of directories changes (and can be mounted up front).
		src := filepath.Join(base, DirName(d))
		c, err := w.writeDir(src, groups[d])
		if err != nil {
			return nil, false, err
		}
		changed = changed || c
		mounts = append(mounts, Mount{Source: src, Target: d})
	}
	return mounts, changed, nil
}

// writeDir makes dir hold exactly files, atomically.
//
// dir and its data directories are 0755 on purpose: dir is bind-mounted as
// the container's secrets directory, and the container's user (any uid)
// must be able to list and traverse it. Each file's own mode and owner are
// what keep its content private.
func (w *Writer) writeDir(dir string, files []File) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: the container's user must traverse it (see above)
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	if same(dir, files) {
		return false, nil
	}
	ts := "..dso_" + strconv.FormatInt(w.now().UnixNano(), 10)
	tsDir := filepath.Join(dir, ts)
	if err := os.Mkdir(tsDir, 0o755); err != nil { //nolint:gosec // G301: the container's user must traverse it (see above)
		return false, fmt.Errorf("create %s: %w", tsDir, err)
	}
	for _, f := range files {
		name := path.Base(f.Path)
		p := filepath.Join(tsDir, name)
		mode := f.Mode
		if mode == 0 {
			mode = 0o400
		}
		if err := writeFile(p, f.Value, mode, f.UID, f.GID); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, err
		}
	}
	// Swap ..data atomically: a new symlink renamed over the old one.
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(ts, tmpLink); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("symlink in %s: %w", dir, err)
	}
	oldTarget, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("swap ..data in %s: %w", dir, err)
	}
	want := map[string]bool{}
	for _, f := range files {
		name := path.Base(f.Path)
		want[name] = true
		link := filepath.Join(dir, name)
		if cur, err := os.Readlink(link); err == nil && cur == filepath.Join("..data", name) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return true, fmt.Errorf("symlink %s: %w", link, err)
		}
	}
	// Drop names no longer delivered and the previous data directory.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "..data" || n == ts:
		case strings.HasPrefix(n, ".."):
			// Not zeroed: a reader may still hold the previous version open,
			// and must get its bytes, not zeros. Unlinked tmpfs pages are
			// freed when the last reader closes them.
			if n == oldTarget || strings.HasPrefix(n, "..dso_") {
				_ = os.RemoveAll(filepath.Join(dir, n))
			}
		case !want[n]:
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	return true, nil
}

// same reports whether dir already holds exactly files (content, mode, owner).
func same(dir string, files []File) bool {
	cur, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		return false
	}
	entries, err := os.ReadDir(filepath.Join(dir, cur))
	if err != nil || len(entries) != len(files) {
		return false
	}
	for _, f := range files {
		p := filepath.Join(dir, cur, path.Base(f.Path))
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() {
			return false
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o400
		}
		if st.Mode().Perm() != mode.Perm() {
			return false
		}
		if sys, ok := st.Sys().(*unix.Stat_t); ok {
			if (f.UID >= 0 && int(sys.Uid) != f.UID) || (f.GID >= 0 && int(sys.Gid) != f.GID) {
				return false
			}
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != string(f.Value) {
			zero(b)
			return false
		}
		zero(b)
	}
	return true
}

func writeFile(p string, v []byte, mode os.FileMode, uid, gid int) error {
	fd, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if _, err := fd.Write(v); err != nil {
		_ = fd.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if uid >= 0 || gid >= 0 {
		if err := fd.Chown(uid, gid); err != nil {
			_ = fd.Close()
			return fmt.Errorf("chown %s to %d:%d: %w", p, uid, gid, err)
		}
	}
	if err := fd.Chmod(mode.Perm()); err != nil {
		_ = fd.Close()
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	return fd.Close()
}

// RemoveSets deletes every set of target except keep (zeroing file content
// first). It is called after a cutover, when no container mounts them.
func (w *Writer) RemoveSets(target string, keep ...string) error {
	dir := w.TargetDir(target)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	k := map[string]bool{}
	for _, s := range keep {
		k[s] = true
	}
	for _, e := range entries {
		if !k[e.Name()] {
			zeroAndRemove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// zeroAndRemove overwrites regular files under p with zeros, then removes p.
// On tmpfs this is the closest thing to wiping the pages. It is best effort:
// what cannot be read or opened is skipped, and RemoveAll still removes it.
//
// The walk goes through an os.Root on p's parent, so that an entry swapped
// for a symlink between the walk and the open cannot make the agent (root)
// zero a file outside that directory.
func zeroAndRemove(p string) {
	if r, err := os.OpenRoot(filepath.Dir(p)); err == nil {
		_ = fs.WalkDir(r.FS(), filepath.Base(p), func(name string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				zeroFile(r, name)
			}
			return nil
		})
		_ = r.Close()
	}
	_ = os.RemoveAll(p)
}

// zeroFile overwrites the regular file name (relative to r) with zeros.
func zeroFile(r *os.Root, name string) {
	st, err := r.Lstat(name)
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return
	}
	// Delivered files are 0400: make the file writable for an agent that
	// is not root. The mode no longer matters, the file is removed next.
	_ = r.Chmod(name, 0o600)
	f, err := r.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	_, _ = f.Write(make([]byte, st.Size()))
	_ = f.Close()
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
