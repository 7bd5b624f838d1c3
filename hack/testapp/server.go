package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lookupFunc is os.LookupEnv; tests pass a map instead so they never touch
// the real process environment.
type lookupFunc func(string) (string, bool)

// hashMatch is a "NAME:SHA256HEX" switch: it fires while the named thing
// hashes to the given digest. Tests configure it with the hash of the bad
// value, so the bad value itself never has to be written into a container
// setting in plain text.
type hashMatch struct {
	name string
	hash string
}

// config is everything the serve mode reads from its environment.
type config struct {
	listen          string
	unhealthy       bool
	unhealthyIfEnv  *hashMatch
	unhealthyIfFile *hashMatch
	healthyAfter    time.Duration
	exitOnStart     bool
	watchFiles      []string
}

// parseConfig reads the TESTAPP_* switches. A malformed switch is an error
// rather than being ignored: a test that sets a switch wrongly must not pass
// because the switch silently did nothing.
func parseConfig(lookup lookupFunc) (config, error) {
	cfg := config{listen: ":8080"}
	var errs []error
	if v, ok := lookup("TESTAPP_LISTEN"); ok && v != "" {
		cfg.listen = v
	}
	boolSwitch := func(name string) bool {
		v, ok := lookup(name)
		if !ok || v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s must be a boolean such as 1 or 0, got %q", name, v))
		}
		return b
	}
	cfg.unhealthy = boolSwitch("TESTAPP_UNHEALTHY")
	cfg.exitOnStart = boolSwitch("TESTAPP_EXIT_ON_START")
	matchSwitch := func(name string) *hashMatch {
		v, ok := lookup(name)
		if !ok || v == "" {
			return nil
		}
		// Split at the last colon: file paths cannot contain one here in
		// practice, but a sha256 hex digest never does.
		i := strings.LastIndex(v, ":")
		if i <= 0 {
			errs = append(errs, fmt.Errorf("%s must look like NAME:SHA256HEX", name))
			return nil
		}
		m := &hashMatch{name: v[:i], hash: strings.ToLower(v[i+1:])}
		if b, err := hex.DecodeString(m.hash); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s: the part after the colon must be 64 hex digits (a sha256)", name))
			return nil
		}
		return m
	}
	cfg.unhealthyIfEnv = matchSwitch("TESTAPP_UNHEALTHY_IF_ENV")
	cfg.unhealthyIfFile = matchSwitch("TESTAPP_UNHEALTHY_IF_FILE")
	if v, ok := lookup("TESTAPP_HEALTHY_AFTER"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("TESTAPP_HEALTHY_AFTER must be a non-negative Go duration such as 3s, got %q", v))
		}
		cfg.healthyAfter = d
	}
	if v, ok := lookup("TESTAPP_WATCH_FILES"); ok && v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.watchFiles = append(cfg.watchFiles, p)
			}
		}
	}
	return cfg, errors.Join(errs...)
}

// say writes a diagnostic line. A failed write to stderr has nowhere
// better to be reported, so its error is dropped here, once.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// server holds the state behind the HTTP handlers.
type server struct {
	cfg      config
	lookup   lookupFunc
	now      func() time.Time
	started  time.Time
	hostname string
	pid      int

	mu      sync.Mutex
	sighups int
	watched map[string]string // path -> sha256 hex as of the last (re)load; missing files are absent
}

func newServer(cfg config, lookup lookupFunc, now func() time.Time) *server {
	host, _ := os.Hostname()
	s := &server{cfg: cfg, lookup: lookup, now: now, started: now(), hostname: host, pid: os.Getpid()}
	s.loadWatched()
	return s
}

// loadWatched re-reads every watched file. It is what a SIGHUP does, so a
// test can tell whether a "signal" rotation reached the process (the hashes
// at /sighup change) or only reached the disk (/file changes, /sighup not).
func (s *server) loadWatched() int {
	m := make(map[string]string, len(s.cfg.watchFiles))
	for _, p := range s.cfg.watchFiles {
		if b, err := os.ReadFile(p); err == nil {
			m[p] = sha256Hex(b)
		}
	}
	s.mu.Lock()
	s.watched = m
	s.mu.Unlock()
	return len(m)
}

// onSIGHUP counts the signal and reloads; it returns the new count.
func (s *server) onSIGHUP() int {
	s.loadWatched()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sighups++
	return s.sighups
}

// health reports whether the app is healthy and, if not, why. The reason
// names switches and paths only, never a value.
func (s *server) health() (bool, string) {
	if s.cfg.unhealthy {
		return false, "TESTAPP_UNHEALTHY is set"
	}
	if elapsed := s.now().Sub(s.started); elapsed < s.cfg.healthyAfter {
		return false, fmt.Sprintf("starting: healthy after %s, %s elapsed", s.cfg.healthyAfter, elapsed.Truncate(time.Millisecond))
	}
	if m := s.cfg.unhealthyIfEnv; m != nil {
		if v, ok := s.lookup(m.name); ok && sha256Hex([]byte(v)) == m.hash {
			return false, fmt.Sprintf("env %s has the hash named in TESTAPP_UNHEALTHY_IF_ENV", m.name)
		}
	}
	if m := s.cfg.unhealthyIfFile; m != nil {
		// Re-read on every check so that rewriting the file in place flips
		// the health, as a file rotation would.
		if b, err := os.ReadFile(m.name); err == nil && sha256Hex(b) == m.hash {
			return false, fmt.Sprintf("file %s has the hash named in TESTAPP_UNHEALTHY_IF_FILE", m.name)
		}
	}
	return true, "ok"
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /env/{name}", s.handleEnv)
	mux.HandleFunc("GET /file", s.handleFile)
	mux.HandleFunc("GET /version", s.handleVersion)
	mux.HandleFunc("GET /sighup", s.handleSighup)
	return mux
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	if ok, reason := s.health(); !ok {
		writeText(w, http.StatusServiceUnavailable, reason)
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func (s *server) handleEnv(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := s.lookup(name)
	if !ok {
		writeText(w, http.StatusNotFound, "env "+name+" is not set")
		return
	}
	writeText(w, http.StatusOK, sha256Hex([]byte(v)))
}

func (s *server) handleFile(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query().Get("path")
	if p == "" {
		writeText(w, http.StatusBadRequest, "query parameter path is required")
		return
	}
	// Read on every request: tests change files under a running container
	// and must see the content the process would see now.
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeText(w, http.StatusNotFound, "file "+p+" does not exist")
	case err != nil:
		// os.ReadFile errors carry the path and the cause, not content.
		writeText(w, http.StatusInternalServerError, err.Error())
	default:
		writeText(w, http.StatusOK, sha256Hex(b))
	}
}

// versionInfo identifies one process: a test compares it before and after a
// rotation to tell a restart (new started/pid) from a new container (new
// hostname) from nothing at all.
type versionInfo struct {
	Hostname string    `json:"hostname"`
	Started  time.Time `json:"started"`
	PID      int       `json:"pid"`
}

func (s *server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, versionInfo{Hostname: s.hostname, Started: s.started, PID: s.pid})
}

type sighupInfo struct {
	Count int               `json:"count"`
	Files map[string]string `json:"files"`
}

func (s *server) handleSighup(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	info := sighupInfo{Count: s.sighups, Files: make(map[string]string, len(s.watched))}
	for k, v := range s.watched {
		info.Files[k] = v
	}
	s.mu.Unlock()
	writeJSON(w, info)
}

// serve runs the HTTP server on ln until a SIGTERM or SIGINT arrives on sigs
// (then it shuts down gracefully, letting in-flight requests finish) or the
// listener fails. SIGHUP reloads the watched files.
func (s *server) serve(ln net.Listener, sigs <-chan os.Signal, logw io.Writer) error {
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	say(logw, "testapp: serving on %s (pid %d)\n", ln.Addr(), s.pid)
	for {
		select {
		case err := <-done:
			return fmt.Errorf("http server on %s stopped: %w", ln.Addr(), err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				n := s.onSIGHUP()
				say(logw, "testapp: SIGHUP %d: re-read %d watched files\n", n, len(s.cfg.watchFiles))
				continue
			}
			say(logw, "testapp: %s: shutting down\n", sig)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("graceful shutdown did not finish: %w", err)
			}
			return nil
		}
	}
}

func serveMain(lookup lookupFunc) int {
	cfg, err := parseConfig(lookup)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: invalid settings: %v\n", err)
		return 2
	}
	if cfg.exitOnStart {
		fmt.Fprintln(os.Stderr, "testapp: TESTAPP_EXIT_ON_START is set: exiting with status 3")
		return 3
	}
	// Register for signals before listening so that a SIGTERM sent right
	// after start is not lost to the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: cannot listen on %s (set TESTAPP_LISTEN to a free address): %v\n", cfg.listen, err)
		return 1
	}
	if err := newServer(cfg, lookup, time.Now).serve(ln, sigs, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	return 0
}
