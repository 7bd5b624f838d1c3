// Package supervisor keeps the dso agent running in the background for
// `docker dso system enable|disable|restart|status`.
//
// Two hosts need two answers. Where systemd is PID 1 the agent belongs in
// the hardened dso-agent unit, and this package only installs the unit and
// drives systemctl (systemd.go). Containers and CI machines have no
// systemd, yet the operations guide still says `system enable` and `system
// restart`; there Direct starts the agent itself as a detached process with a
// pidfile, the way a small init script would. Both paths start the agent with
// the config file the CLI resolved, so `DSO_CONFIG=/x.yaml docker dso system
// enable` runs /x.yaml.
//
// Stopping goes through one safety check: a pid from a pidfile is signalled
// only while /proc/PID/cmdline is still `dso agent` — a stale pidfile must
// never make disable kill whatever process reused the number.
package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Files of the direct supervisor, under the run directory.
const (
	PIDFileName    = "agent.pid"
	EnabledName    = "agent.enabled"
	OutputLogName  = "agent.supervisor.log"
	lockName       = "agent.lock"
	DefaultRunDir  = "/run/dso"
	RunDirEnv      = "DSO_RUN_DIR"
	defaultTimeout = 30 * time.Second
)

// RunDirFromEnv returns $DSO_RUN_DIR, or /run/dso when it is unset.
func RunDirFromEnv(getenv func(string) string) string {
	if d := getenv(RunDirEnv); d != "" {
		return d
	}
	return DefaultRunDir
}

// Target is the agent to start: its config file and the two addresses of
// the resolved config that the supervisor watches.
type Target struct {
	// ConfigPath is the absolute config file ("" = built-in defaults).
	ConfigPath string
	// MetricsListen is agent.metrics.listen, where /readyz answers.
	MetricsListen string
	// LogFile is logging.file, shown when the agent fails to start.
	LogFile string
}

// Direct supervises the agent without systemd.
type Direct struct {
	// RunDir holds the pidfile, the enabled marker and the output log.
	RunDir string
	// Bin is the dso binary to start ("" = this executable).
	Bin string
	// ReadyTimeout bounds the wait for /readyz; StopTimeout the wait for
	// the process to exit after SIGTERM before SIGKILL. 0 means 30s.
	ReadyTimeout time.Duration
	StopTimeout  time.Duration
	// Tail returns the last lines of the agent's log file for error
	// messages (the CLI passes its human renderer); nil shows none.
	Tail func(logFile string, n int) []string
}

// PIDFile, EnabledFile and OutputLog are the supervisor's paths.
func (d *Direct) PIDFile() string     { return filepath.Join(d.RunDir, PIDFileName) }
func (d *Direct) EnabledFile() string { return filepath.Join(d.RunDir, EnabledName) }
func (d *Direct) OutputLog() string   { return filepath.Join(d.RunDir, OutputLogName) }

func (d *Direct) readyTimeout() time.Duration {
	if d.ReadyTimeout > 0 {
		return d.ReadyTimeout
	}
	return defaultTimeout
}

func (d *Direct) stopTimeout() time.Duration {
	if d.StopTimeout > 0 {
		return d.StopTimeout
	}
	return defaultTimeout
}

// Started describes an agent that answered /readyz.
type Started struct {
	PID     int
	Version string
	// AlreadyRunning is set when Enable found the agent running and left
	// it alone.
	AlreadyRunning bool
}

// Status is what Status found.
type Status struct {
	Running bool
	// Enabled: the enabled marker exists (enable ran, disable did not).
	Enabled bool
	// PID of the running agent (0 when stopped).
	PID     int
	Started time.Time
	// ConfigPath the agent was enabled with (from the marker; "" = defaults
	// or not enabled).
	ConfigPath string
	// StalePID is set when the pidfile names a process that is not a
	// running dso agent.
	StalePID int
}

// Status reports the agent's state from the pidfile, /proc and the marker.
func (d *Direct) Status() (Status, error) {
	var st Status
	cfg, enabled, err := d.Enabled()
	if err != nil {
		return st, err
	}
	st.Enabled, st.ConfigPath = enabled, cfg
	p, pid, err := d.running()
	if err != nil {
		return st, err
	}
	if p != nil {
		st.Running, st.PID, st.Started = true, p.PID, p.Started
	} else {
		st.StalePID = pid
	}
	return st, nil
}

// Enabled reads the enabled marker: the config path it holds and whether it
// exists.
func (d *Direct) Enabled() (configPath string, enabled bool, err error) {
	b, err := os.ReadFile(d.EnabledFile())
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the enabled marker %s: %w", d.EnabledFile(), err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// running returns the agent process named by the pidfile when it is alive
// and is a dso agent. Otherwise it returns nil and the pidfile's pid (0
// without a pidfile), which is then stale.
func (d *Direct) running() (*Process, int, error) {
	pid, err := d.readPID()
	if err != nil || pid == 0 {
		return nil, 0, err
	}
	p, err := ReadProcess(pid)
	if errors.Is(err, ErrNoProcess) {
		return nil, pid, nil
	}
	if err != nil {
		return nil, pid, err
	}
	if !p.Alive() || !p.IsDSOAgent() {
		return nil, pid, nil
	}
	return &p, pid, nil
}

func (d *Direct) readPID() (int, error) {
	b, err := os.ReadFile(d.PIDFile())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the pidfile %s: %w", d.PIDFile(), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %s does not hold a pid (%q): remove it if no agent is running", d.PIDFile(), strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// lock serialises enable/disable/restart on this host: two concurrent
// enables would otherwise both start an agent. The lock is an flock, so it
// is released when the process dies, never left behind.
func (d *Direct) lock() (unlock func(), err error) {
	// 0755 like /run/dso under systemd: the dso group reaches the API
	// socket there, and status reads the pidfile without root.
	if err := os.MkdirAll(d.RunDir, 0o755); err != nil { //nolint:gosec // G301: see above
		return nil, fmt.Errorf("creating the run directory %s: %w (run as root or set %s)", d.RunDir, err, RunDirEnv)
	}
	p := filepath.Join(d.RunDir, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the supervisor lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return func() { _ = f.Close() }, nil
}

// Enable starts the agent for t unless it already runs, marks it enabled and
// waits for /readyz.
func (d *Direct) Enable(ctx context.Context, t Target) (Started, error) {
	unlock, err := d.lock()
	if err != nil {
		return Started{}, err
	}
	defer unlock()
	if p, _, err := d.running(); err != nil {
		return Started{}, err
	} else if p != nil {
		if err := d.writeEnabled(t.ConfigPath); err != nil {
			return Started{}, err
		}
		v, _ := ReadyVersion(ctx, t.MetricsListen)
		return Started{PID: p.PID, Version: v, AlreadyRunning: true}, nil
	}
	if err := d.writeEnabled(t.ConfigPath); err != nil {
		return Started{}, err
	}
	s, err := d.start(ctx, t)
	if err != nil {
		// A failed enable leaves nothing behind that claims otherwise.
		_ = os.Remove(d.EnabledFile())
	}
	return s, err
}

// Disable stops the agent (SIGTERM, SIGKILL after StopTimeout) and removes
// the pidfile and the marker. It returns the pid it stopped (0 when none
// ran) and, for a pidfile that named some other process, a warning: that
// process is left alone.
func (d *Direct) Disable(ctx context.Context) (stopped int, warning string, err error) {
	unlock, err := d.lock()
	if err != nil {
		return 0, "", err
	}
	defer unlock()
	stopped, warning, err = d.stop(ctx)
	if err != nil {
		return stopped, warning, err
	}
	if err := os.Remove(d.EnabledFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return stopped, warning, fmt.Errorf("removing the enabled marker %s: %w", d.EnabledFile(), err)
	}
	return stopped, warning, nil
}

// Restart stops the agent if it runs and starts it for t, marking it
// enabled.
func (d *Direct) Restart(ctx context.Context, t Target) (Started, string, error) {
	unlock, err := d.lock()
	if err != nil {
		return Started{}, "", err
	}
	defer unlock()
	_, warning, err := d.stop(ctx)
	if err != nil {
		return Started{}, warning, err
	}
	if err := d.writeEnabled(t.ConfigPath); err != nil {
		return Started{}, warning, err
	}
	s, err := d.start(ctx, t)
	return s, warning, err
}

func (d *Direct) writeEnabled(configPath string) error {
	return writeAtomic(d.EnabledFile(), configPath+"\n")
}

// writeAtomic writes a small state file by rename so that a reader (or a
// crash) never sees half of it.
func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil { //nolint:gosec // pid and config path are not secret; status reads them unprivileged
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// stop signals the pidfile's agent and waits for it to exit.
func (d *Direct) stop(ctx context.Context) (int, string, error) {
	pid, err := d.readPID()
	if err != nil || pid == 0 {
		return 0, "", err
	}
	p, err := ReadProcess(pid)
	switch {
	case errors.Is(err, ErrNoProcess) || (err == nil && !p.Alive()):
		return 0, "", d.removePID()
	case err != nil:
		return 0, "", err
	case !p.IsDSOAgent():
		// The agent died and the pid was reused. Signalling it would hit an
		// innocent process; the pidfile is ours and simply stale.
		w := fmt.Sprintf("pidfile %s named pid %d, which is not a dso agent (%q): left that process alone and removed the stale pidfile",
			d.PIDFile(), pid, strings.Join(p.Args, " "))
		return 0, w, d.removePID()
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return 0, "", fmt.Errorf("sending SIGTERM to the agent (pid %d): %w (run as root)", pid, err)
	}
	if !waitGone(ctx, pid, p.Started, d.stopTimeout()) {
		// Only a process that is still this same agent gets SIGKILL.
		if q, err := ReadProcess(pid); err == nil && q.Alive() && q.IsDSOAgent() && q.Started.Equal(p.Started) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !waitGone(ctx, pid, p.Started, 5*time.Second) {
				return pid, "", fmt.Errorf("the agent (pid %d) did not exit after SIGKILL", pid)
			}
		}
	}
	return pid, "", d.removePID()
}

func (d *Direct) removePID() error {
	if err := os.Remove(d.PIDFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the pidfile %s: %w", d.PIDFile(), err)
	}
	return nil
}

// waitGone polls until pid has exited (or became a zombie, or is a
// different process than the one started at started).
func waitGone(ctx context.Context, pid int, started time.Time, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		p, err := ReadProcess(pid)
		if errors.Is(err, ErrNoProcess) || (err == nil && (!p.Alive() || !p.Started.Equal(started))) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start launches `<bin> agent --config PATH --quiet` detached and waits for
// /readyz.
func (d *Direct) start(ctx context.Context, t Target) (Started, error) {
	bin := d.Bin
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return Started{}, fmt.Errorf("finding the dso binary to start: %w", err)
		}
	}
	args := []string{"agent"}
	if t.ConfigPath != "" {
		args = append(args, "--config", t.ConfigPath)
	}
	// --quiet: the JSON lines go to logging.file only; the output log
	// catches what is printed before the logger exists (a bad config) and
	// panics.
	args = append(args, "--quiet")
	// 0640 like the agent log: group-readable for the dso group.
	out, err := os.OpenFile(d.OutputLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640) //nolint:gosec // G302: see above
	if err != nil {
		return Started{}, fmt.Errorf("opening the agent output log %s: %w", d.OutputLog(), err)
	}
	defer func() { _ = out.Close() }() // the child holds its own copy
	offset, _ := out.Seek(0, io.SeekEnd)

	// Not exec.CommandContext: the agent must outlive this CLI process and
	// its context.
	cmd := exec.Command(bin, args...) //nolint:gosec // our own binary with fixed arguments
	cmd.Stdin = nil                   // /dev/null
	cmd.Stdout, cmd.Stderr = out, out
	// The working directory is /, as under systemd: the agent must not pin
	// whatever directory the operator happened to run enable from.
	cmd.Dir = "/"
	// Setsid: a new session without a controlling terminal, so closing the
	// operator's terminal (SIGHUP) or Ctrl-C in it never reaches the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Started{}, fmt.Errorf("starting %s agent: %w", bin, err)
	}
	pid := cmd.Process.Pid
	// While this CLI lives, collect the child's exit: an agent that dies
	// during startup is then seen at once (instead of after the timeout) and
	// leaves no zombie. Once the CLI exits, init adopts the agent.
	// exited is closed when the child has exited; waitErr is set before.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	if err := writeAtomic(d.PIDFile(), strconv.Itoa(pid)+"\n"); err != nil {
		_ = cmd.Process.Kill()
		return Started{}, err
	}

	version, err := d.waitReady(ctx, t, exited, func() error { return waitErr })
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(d.stopTimeout()):
			_ = cmd.Process.Kill()
		}
		_ = d.removePID()
		return Started{}, fmt.Errorf("%w%s", err, d.failureLog(t, offset))
	}
	return Started{PID: pid, Version: version}, nil
}

func (d *Direct) waitReady(ctx context.Context, t Target, exited <-chan struct{}, waitErr func() error) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.readyTimeout())
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if v, err := ReadyVersion(ctx, t.MetricsListen); err == nil {
			return v, nil
		}
		select {
		case <-exited:
			err := waitErr()
			if err == nil {
				err = errors.New("exit status 0")
			}
			return "", fmt.Errorf("the agent exited during startup (%w): fix the cause below, then run enable again", err)
		case <-ctx.Done():
			return "", fmt.Errorf("the agent did not answer %s within %s", ReadyURL(t.MetricsListen), d.readyTimeout())
		case <-tick.C:
		}
	}
}

// failureLog renders what the agent printed since offset in the output log
// plus the last lines of its log file, for the startup failure message.
func (d *Direct) failureLog(t Target, offset int64) string {
	var b strings.Builder
	if lines := tailFrom(d.OutputLog(), offset, 10); len(lines) > 0 {
		fmt.Fprintf(&b, "\nagent output (%s):", d.OutputLog())
		for _, l := range lines {
			b.WriteString("\n  " + l)
		}
	}
	if d.Tail != nil && t.LogFile != "" {
		if lines := d.Tail(t.LogFile, 10); len(lines) > 0 {
			fmt.Fprintf(&b, "\nlast agent log lines (%s):", t.LogFile)
			for _, l := range lines {
				b.WriteString("\n  " + l)
			}
		}
	}
	return b.String()
}

// tailFrom returns the last n lines of path after byte offset.
func tailFrom(path string, offset int64, n int) []string {
	f, err := os.Open(path) //nolint:gosec // the supervisor's own output log
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// ReadyURL is the /readyz URL for agent.metrics.listen. A wildcard listen
// address (":9469", "0.0.0.0:9469") is reached on loopback.
func ReadyURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + "/readyz"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

// ReadyVersion asks /readyz once; a 200 "ok <version>" yields the version.
func ReadyVersion(ctx context.Context, listen string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ReadyURL(listen), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %s", ReadyURL(listen), resp.Status)
	}
	v, _ := strings.CutPrefix(strings.TrimSpace(string(body)), "ok")
	return strings.TrimSpace(v), nil
}
