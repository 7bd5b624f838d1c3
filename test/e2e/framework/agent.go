package framework

// This file runs the real `dso agent` binary for the engine's acceptance
// tests. The agent is started as a subprocess, black-box: everything a test
// learns about it comes from what an operator would see too (its JSON log
// file, /readyz, /metrics, and Docker itself), never from its internals.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// StoreName is the name of the local store every test agent's config
// declares; bindings refer to it in storeRef.
const StoreName = "local"

// AgentOptions say how to run one test's agent.
type AgentOptions struct {
	// Bin is the dso binary (default $DSO_BIN). A missing binary makes the
	// test skip, or fail under DSO_STRICT=1.
	Bin string
	// Env is added to the agent's environment (e.g. DSO_FAULT=after-create).
	// It is not used by the CLI calls of SetSecret.
	Env []string
	// Bindings are SecretBinding YAML documents (storeRef: local). Each is
	// written to its own file in the agent's bindings folder.
	Bindings []string
	// Secrets are set in the local store before the agent starts.
	Secrets map[string]string
	// RotationTimeout is agent.rotation.timeout (default 20s).
	RotationTimeout time.Duration
	// Parallelism is agent.rotation.parallelism (default 2).
	Parallelism int
	// Debounce is agent.watch.debounce_window (default 500ms).
	Debounce time.Duration
	// ReadyTimeout bounds the wait for /readyz (default 60s).
	ReadyTimeout time.Duration
}

// Agent is one running (or stopped) agent process of a test.
type Agent struct {
	t    testing.TB
	h    *Harness
	opts AgentOptions

	// Dir is the agent's private directory (a t.TempDir).
	Dir string
	// ConfigPath is the generated dso.yaml.
	ConfigPath string
	// LogPath is logging.file (JSON lines).
	LogPath string
	// DeliveryDir is agent.delivery.dir (the agent mounts a tmpfs there).
	DeliveryDir string
	// MetricsAddr is agent.metrics.listen (127.0.0.1:<port>).
	MetricsAddr string

	mu   sync.Mutex
	proc *agentProc
	// Starts counts process starts (1 after StartAgent).
	Starts int
}

type agentProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // set before done is closed
	stderr *os.File
}

// BinFromEnv returns the binary named by the environment variable env, or
// reports the test unavailable (skip, or fail under DSO_STRICT=1).
func BinFromEnv(t testing.TB, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		Unavailable(t, "$%s is not set: build the agent with `make build build-fault` and point %s at the binary", env, env)
		return ""
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 { //nolint:gosec // G703: the binary path is the tester's own $DSO_BIN setting
		Unavailable(t, "$%s=%s is not an executable file (%v): run `make build build-fault`", env, p, err)
		return ""
	}
	return p
}

// StartAgent writes a private config for this test (local store, metrics on
// a free loopback port, delivery tmpfs, state, log and bindings in a temp
// dir), sets the initial secrets through the CLI, starts `dso agent` and
// waits for /readyz. Cleanup stops that process (SIGTERM, SIGKILL after
// 10s), dumps the log tail if the test failed, and unmounts the tmpfs.
func StartAgent(t testing.TB, h *Harness, opts AgentOptions) *Agent {
	t.Helper()
	if h == nil {
		t.Fatal("StartAgent needs the test's harness (framework.New) so the engine is known to answer")
	}
	if opts.Bin == "" {
		opts.Bin = BinFromEnv(t, "DSO_BIN")
	}
	if opts.RotationTimeout == 0 {
		opts.RotationTimeout = 20 * time.Second
	}
	if opts.Parallelism == 0 {
		opts.Parallelism = 2
	}
	if opts.Debounce == 0 {
		opts.Debounce = 500 * time.Millisecond
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free loopback port for the agent's metrics: %v", err)
	}
	a := &Agent{
		t: t, h: h, opts: opts, Dir: dir,
		ConfigPath:  filepath.Join(dir, "dso.yaml"),
		LogPath:     filepath.Join(dir, "agent.log"),
		DeliveryDir: filepath.Join(dir, "secrets"),
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
	}
	// Registered after t.TempDir, so it runs before the dir is removed
	// (cleanups run last-in first-out): the tmpfs must be gone by then.
	t.Cleanup(a.cleanup)
	if err := a.writeConfig(); err != nil {
		t.Fatal(err)
	}
	if out, err := a.cli(nil, "init"); err != nil {
		t.Fatalf("dso init for the test store failed: %v\n%s", err, out)
	}
	for k, v := range opts.Secrets {
		a.SetSecret(k, v)
	}
	a.Start()
	return a
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeConfig writes dso.yaml and one file per binding.
func (a *Agent) writeConfig() error {
	bdir := filepath.Join(a.Dir, "bindings.d")
	// Only this test's agent, running as the same user, reads the folder.
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return fmt.Errorf("creating the bindings folder: %w", err)
	}
	// Paths are quoted: t.TempDir names contain the test name.
	cfg := fmt.Sprintf(`agent:
  cache:
    ttl: 1h
    max_size: 16Mi
  rotation:
    timeout: %s
    parallelism: %d
  watch:
    polling_interval: 1h
    debounce_window: %s
  api:
    socket: %q
  metrics:
    listen: %q
  delivery:
    dir: %q
logging:
  level: debug
  format: json
  file: %q
state:
  dir: %q
bindings:
  dirs: [%q]
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: %s
spec:
  local:
    path: %q
`, a.opts.RotationTimeout, a.opts.Parallelism, a.opts.Debounce,
		filepath.Join(a.Dir, "dso.sock"), a.MetricsAddr, a.DeliveryDir, a.LogPath,
		filepath.Join(a.Dir, "state"), bdir, StoreName, filepath.Join(a.Dir, "vault.enc"))
	if err := os.WriteFile(a.ConfigPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("writing the agent config: %w", err)
	}
	for i, b := range a.opts.Bindings {
		p := filepath.Join(bdir, fmt.Sprintf("binding-%02d.yaml", i))
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			return fmt.Errorf("writing binding %d: %w", i, err)
		}
	}
	return nil
}

// cli runs the dso CLI against this agent's config with stdin as input.
func (a *Agent) cli(stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.opts.Bin, args...)
	cmd.Env = append(cleanEnv(), "DSO_CONFIG="+a.ConfigPath)
	cmd.Stdin = bytes.NewReader(stdin)
	return cmd.CombinedOutput()
}

// cleanEnv is the test process environment without DSO_ settings that would
// change what the CLI or agent does (a DSO_FAULT left in a developer's shell
// must not kill the agents of tests that did not ask for it).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DSO_FAULT=") || strings.HasPrefix(kv, "DSO_CONFIG=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// SetSecret sets key in the agent's local store with `dso secret set KEY`,
// the value on stdin (never in argv, where every user could read it).
func (a *Agent) SetSecret(key, value string) {
	a.t.Helper()
	out, err := a.cli([]byte(value), "secret", "set", key)
	if err != nil {
		a.t.Fatalf("dso secret set %s failed: %v\n%s", key, err, redact(string(out), value))
	}
	if strings.Contains(string(out), value) {
		a.t.Fatalf("dso secret set %s printed the secret value", key)
	}
}

func redact(s, value string) string {
	if value == "" {
		return s
	}
	return strings.ReplaceAll(s, value, "<redacted>")
}

// Start starts the agent process with the options' Env and waits for
// /readyz. It fails the test if the agent is already running.
func (a *Agent) Start() { a.t.Helper(); a.StartWithEnv(a.opts.Env) }

// StartWithEnv starts the agent with env instead of the options' Env (e.g.
// the crash matrix starts the second process without DSO_FAULT).
func (a *Agent) StartWithEnv(env []string) {
	a.t.Helper()
	if err := a.spawn(env); err != nil {
		a.t.Fatal(err)
	}
	if err := a.WaitReady(a.opts.ReadyTimeout); err != nil {
		a.t.Fatal(err)
	}
}

// StartNoWait starts the agent with env without waiting for readiness
// (a process that a fault kills may never become ready).
func (a *Agent) StartNoWait(env []string) {
	a.t.Helper()
	if err := a.spawn(env); err != nil {
		a.t.Fatal(err)
	}
}

func (a *Agent) spawn(env []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil && !a.proc.exited() {
		return fmt.Errorf("agent already running (pid %d); stop it before starting another", a.proc.cmd.Process.Pid)
	}
	stderr, err := os.OpenFile(filepath.Join(a.Dir, "agent.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the agent's stderr file: %w", err)
	}
	cmd := exec.Command(a.opts.Bin, "agent", "--config", a.ConfigPath, "--quiet")
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		_ = stderr.Close()
		return fmt.Errorf("starting %s agent: %w", a.opts.Bin, err)
	}
	p := &agentProc{cmd: cmd, done: make(chan struct{}), stderr: stderr}
	go func() {
		p.err = cmd.Wait()
		_ = stderr.Close()
		close(p.done)
	}()
	a.proc = p
	a.Starts++
	return nil
}

func (p *agentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (a *Agent) current() *agentProc {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc
}

// PID is the running agent's process id (0 when none was started).
func (a *Agent) PID() int {
	if p := a.current(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// WaitReady polls /readyz until it answers 200, failing early when the
// process exits.
func (a *Agent) WaitReady(timeout time.Duration) error {
	p := a.current()
	if p == nil {
		return errors.New("no agent process was started")
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		code, _, err := GET(ctx, a.MetricsAddr, "/readyz")
		cancel()
		if err == nil && code == 200 {
			return nil
		}
		select {
		case <-p.done:
			exitErr := p.err
			if exitErr == nil {
				exitErr = errors.New("exit status 0")
			}
			return fmt.Errorf("agent exited before it was ready (%w); log tail:\n%s", exitErr, a.LogTail(40))
		default:
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("agent not ready on %s within %s (last request: %w); log tail:\n%s", a.MetricsAddr, timeout, err, a.LogTail(40))
			}
			return fmt.Errorf("agent not ready on %s within %s (last answer: HTTP %d); log tail:\n%s", a.MetricsAddr, timeout, code, a.LogTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitExit waits for the agent process to end by itself (a fault hook's
// SIGKILL) and returns its wait status.
func (a *Agent) WaitExit(timeout time.Duration) (syscall.WaitStatus, error) {
	p := a.current()
	if p == nil {
		return 0, errors.New("no agent process was started")
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("agent (pid %d) still running after %s", p.cmd.Process.Pid, timeout)
	}
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, nil
}

// Kill9 sends SIGKILL to the agent process (that pid only) and waits for it.
func (a *Agent) Kill9() {
	a.t.Helper()
	p := a.current()
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM, then SIGKILL after 10s, to the agent process and
// waits for it. It returns the process's exit error after SIGTERM (nil is a
// clean shutdown).
func (a *Agent) Stop() error {
	p := a.current()
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("agent (pid %d) did not stop within 10s of SIGTERM and was killed", p.cmd.Process.Pid)
	}
}

// Restart stops the agent gracefully and starts it again with the options' Env.
func (a *Agent) Restart() {
	a.t.Helper()
	if err := a.Stop(); err != nil {
		a.t.Errorf("stopping the agent for a restart: %v", err)
	}
	a.Start()
}

func (a *Agent) cleanup() {
	if err := a.Stop(); err != nil {
		a.t.Logf("agent cleanup: %v", err)
	}
	if a.t.Failed() {
		a.t.Logf("agent log tail (%s):\n%s", a.LogPath, a.LogTail(60))
		if b, err := os.ReadFile(filepath.Join(a.Dir, "agent.stderr")); err == nil && len(b) > 0 {
			a.t.Logf("agent stderr:\n%s", tail(string(b), 20))
		}
	}
	unmountAll(a.t, a.DeliveryDir)
}

// unmountAll unmounts every mount at dir (the agent's tmpfs; a crashed
// agent restarted on a tmpfs mounts nothing more, but be thorough).
func unmountAll(t testing.TB, dir string) {
	for range 4 {
		mounted, err := isMountPoint(dir)
		if err != nil || !mounted {
			return
		}
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// A container that still holds a bind mount keeps it busy in
			// rare cases; detach lazily so t.TempDir can be removed.
			if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
				t.Errorf("unmounting the agent's tmpfs %s: %v %s; lazy: %v %s", dir, err, out, err2, out2)
				return
			}
		}
	}
}

// isMountPoint reports whether dir is a mount point, from /proc/self/mounts.
func isMountPoint(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && unescapeMount(f[1]) == dir {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 = space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// LogLine is one JSON line of the agent log.
type LogLine map[string]any

// Msg is the line's message.
func (l LogLine) Msg() string { return l.Str("msg") }

// Str returns a field as a string ("" when absent).
func (l LogLine) Str(k string) string {
	switch v := l[k].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// Time is the line's ts field (zero when unparseable).
func (l LogLine) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, l.Str("ts"))
	return t
}

// Logs parses the agent's JSON log file. Lines that are not JSON (there
// should be none) are returned with only a "raw" field, so a matcher on
// msg never mistakes them for agent lines.
func (a *Agent) Logs() []LogLine {
	return ParseLog(a.LogPath)
}

// ParseLog parses a JSON-lines log file; a missing file is no lines.
func ParseLog(path string) []LogLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out []LogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l LogLine
		if err := json.Unmarshal(line, &l); err != nil {
			l = LogLine{"raw": string(line)}
		}
		out = append(out, l)
	}
	return out
}

// MsgContains matches lines whose message contains s.
func MsgContains(s string) func(LogLine) bool {
	return func(l LogLine) bool { return strings.Contains(l.Msg(), s) }
}

// CountLog counts the lines from index from on that match.
func (a *Agent) CountLog(from int, match func(LogLine) bool) int {
	n := 0
	lines := a.Logs()
	for i := from; i < len(lines); i++ {
		if match(lines[i]) {
			n++
		}
	}
	return n
}

// LogLen is the number of log lines so far: pass it as from to WaitLog to
// wait only for lines written after this point.
func (a *Agent) LogLen() int { return len(a.Logs()) }

// WaitLog waits until a line at index >= from matches, and returns its
// index and the line. It fails early when the agent process has exited and
// the line is not there.
func (a *Agent) WaitLog(from int, match func(LogLine) bool, timeout time.Duration) (int, LogLine, error) {
	return a.WaitLogN(from, 1, match, timeout)
}

// WaitLogN waits until n lines at index >= from match, and returns the
// index and content of the n-th.
func (a *Agent) WaitLogN(from, n int, match func(LogLine) bool, timeout time.Duration) (int, LogLine, error) {
	deadline := time.Now().Add(timeout)
	for {
		lines := a.Logs()
		seen := 0
		for i := from; i < len(lines); i++ {
			if match(lines[i]) {
				seen++
				if seen == n {
					return i, lines[i], nil
				}
			}
		}
		p := a.current()
		dead := p == nil || p.exited()
		if dead || time.Now().After(deadline) {
			why := fmt.Sprintf("within %s", timeout)
			if dead {
				why = "before the agent process exited"
			}
			return -1, nil, fmt.Errorf("%d of %d expected agent log lines seen %s; log tail:\n%s", seen, n, why, a.LogTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogTail returns the last n lines of the agent log file, raw.
func (a *Agent) LogTail(n int) string {
	b, err := os.ReadFile(a.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(string(b), n)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Metrics returns the agent's /metrics text.
func (a *Agent) Metrics() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := GET(ctx, a.MetricsAddr, "/metrics")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("GET /metrics answered %d", code)
	}
	return body, nil
}

// MetricValue returns the value of the sample line that starts with
// series (e.g. `dso_rotations_total{result="rolled-back",strategy="rolling"}`),
// or false when there is none.
func MetricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// RunRaw creates (and unless noStart, starts) a container from full create
// arguments, for the cases ContainerSpec does not cover (volumes, restart
// policies). The run labels are added to cfg.Labels and the run prefix to
// name; at API 1.41 nc may hold one network only.
func (h *Harness) RunRaw(t testing.TB, ctx context.Context, short string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, noStart bool) *Container {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = h.Image
	}
	cfg.Labels = h.Labels(cfg.Labels)
	name := h.uniqueName(short)
	created, err := h.Docker.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
	c := &Container{ID: created.ID, Name: name}
	if !noStart {
		if err := h.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatalf("starting container %s: %v", name, err)
		}
	}
	return c
}

// RemoveVolumesAtEnd registers the removal of the named volumes to run after
// every cleanup registered later (in particular the harness's container
// removal). Call it BEFORE framework.New. Volumes that a dso candidate
// re-mounted by name are not anonymous to Docker any more, so removing the
// containers with their volumes leaves them behind.
func RemoveVolumesAtEnd(t testing.TB) *[]string {
	names := &[]string{}
	t.Cleanup(func() {
		if len(*names) == 0 {
			return
		}
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			t.Errorf("docker client for volume cleanup: %v", err)
			return
		}
		defer func() { _ = cli.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range *names {
			if err := cli.VolumeRemove(ctx, n, false); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("removing test volume %s: %v", n, err)
			}
		}
	})
	return names
}
