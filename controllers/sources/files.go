package sources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/controllers"
)

// FileWatcherOptions tune a FileWatcher; zero values take the defaults.
type FileWatcherOptions struct {
	// Debounce coalesces a burst of file events (a git pull, an editor's
	// write-rename-chmod) into one reload (default 200ms).
	Debounce time.Duration
	// Recheck is how often directories that are missing (or were removed)
	// are looked for again (default 3s).
	Recheck time.Duration
	// Signals, when set, replaces the SIGHUP subscription (tests inject a
	// channel); every value received reloads.
	Signals <-chan os.Signal
	Log     logr.Logger
}

// FileWatcher calls OnReload when the config file or anything in the
// bindings folders changes, or on SIGHUP, so that a changed or removed
// binding is picked up without a restart. It watches parent directories
// rather than the files: editors and git replace a file by renaming a new
// one over it, which ends a watch on the file itself.
type FileWatcher struct {
	configFile string
	onReload   func()
	opts       FileWatcherOptions
	log        logr.Logger

	mu          sync.Mutex
	dirs        []string
	dirsChanged chan struct{}
}

// NewFileWatcher watches configFile (may be "") and the bindings dirs (which
// need not exist yet). onReload is called from the watcher's goroutine, never
// twice at once.
func NewFileWatcher(configFile string, dirs []string, onReload func(), opts FileWatcherOptions) *FileWatcher {
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.Recheck <= 0 {
		opts.Recheck = 3 * time.Second
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	if configFile != "" {
		configFile = filepath.Clean(configFile)
	}
	return &FileWatcher{configFile: configFile, dirs: cleanDirs(dirs), onReload: onReload, opts: opts,
		log: opts.Log.WithValues("source", "files"), dirsChanged: make(chan struct{}, 1)}
}

func cleanDirs(dirs []string) []string {
	clean := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if d != "" {
			clean = append(clean, filepath.Clean(d))
		}
	}
	return clean
}

// SetDirs replaces the bindings folders being watched (a reloaded config
// may name others in bindings.dirs): new folders are watched from now on,
// folders no longer named stop being watched. When a new folder gets its
// watch, one more reload follows (a file written between the caller's load
// and the new watch would otherwise be missed).
func (w *FileWatcher) SetDirs(dirs []string) {
	clean := cleanDirs(dirs)
	w.mu.Lock()
	w.dirs = clean
	w.mu.Unlock()
	select {
	case w.dirsChanged <- struct{}{}:
	default:
	}
}

func (w *FileWatcher) currentDirs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dirs
}

// wanted lists the directories to hold a watch on: the config file's
// folder, each bindings dir, and each bindings dir's parent (to see the dir
// itself created, removed or swapped).
func (w *FileWatcher) wanted() []string {
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	if w.configFile != "" {
		add(filepath.Dir(w.configFile))
	}
	for _, d := range w.currentDirs() {
		add(d)
		add(filepath.Dir(d))
	}
	return out
}

// relevant says whether an event on path concerns the config.
func (w *FileWatcher) relevant(path string) bool {
	path = filepath.Clean(path)
	if path == w.configFile {
		return true
	}
	parent := filepath.Dir(path)
	for _, d := range w.currentDirs() {
		if path == d || parent == d {
			return true
		}
	}
	return false
}

// Start watches until ctx ends. It fails only if no watcher can be made.
func (w *FileWatcher) Start(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config files: cannot create an inotify watcher (raise fs.inotify.max_user_instances?): %w", err)
	}
	defer func() { _ = fw.Close() }()

	sigs := w.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}

	// Reloads go through one channel so onReload never runs twice at once.
	reload := make(chan struct{}, 1)
	request := func() {
		select {
		case reload <- struct{}{}:
		default:
		}
	}
	deb := controllers.NewDebouncer(w.opts.Debounce, 5*w.opts.Debounce, func(struct{}) { request() })
	dctx, stopDeb := context.WithCancel(ctx)
	defer stopDeb()
	go func() { _ = deb.Start(dctx) }()

	watched := map[string]bool{}
	// sync adds missing watches; a directory that appeared since the last
	// look may hold new bindings, so it reloads.
	sync := func(initial bool) {
		appeared := false
		for _, d := range w.wanted() {
			if watched[d] {
				continue
			}
			if err := fw.Add(d); err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					w.log.Info("cannot watch directory; will retry", "dir", d, "error", err.Error())
				}
				continue
			}
			watched[d] = true
			appeared = true
			w.log.V(1).Info("watching directory", "dir", d)
		}
		if appeared && !initial {
			deb.Add(struct{}{})
		}
	}
	sync(true)

	recheck := time.NewTicker(w.opts.Recheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-recheck.C:
			sync(false)
		case <-w.dirsChanged:
			want := w.wantedSet()
			for d := range watched {
				if _, ok := want[d]; !ok {
					delete(watched, d)
					_ = fw.Remove(d)
					w.log.V(1).Info("no longer watching directory", "dir", d)
				}
			}
			// The config naming them was just loaded; a folder watched only
			// now may have changed in between, so sync reloads once if a
			// new watch was added.
			sync(false)
		case <-sigs:
			w.log.Info("SIGHUP received; reloading configuration")
			request()
		case <-reload:
			w.onReload()
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("watch config files: the inotify watcher closed unexpectedly")
			}
			name := filepath.Clean(ev.Name)
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				// A watched directory that went away loses its watch; the
				// recheck (or its re-creation below) adds it again.
				if watched[name] {
					delete(watched, name)
					_ = fw.Remove(name)
				}
			}
			if ev.Has(fsnotify.Create) {
				if _, isWanted := w.wantedSet()[name]; isWanted {
					sync(false)
				}
			}
			// Chmod alone is noise (indexers, touch); content changes come
			// as Write, Create or Rename.
			if ev.Op == fsnotify.Chmod || !w.relevant(name) {
				continue
			}
			deb.Add(struct{}{})
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("watch config files: the inotify watcher closed unexpectedly")
			}
			// An overflow means events were lost: reload to be safe.
			w.log.Info("file watch error; reloading to be safe", "error", err.Error())
			deb.Add(struct{}{})
		}
	}
}

func (w *FileWatcher) wantedSet() map[string]struct{} {
	out := map[string]struct{}{}
	for _, d := range w.wanted() {
		out[d] = struct{}{}
	}
	return out
}
