package supervisor

import (
	"bytes"
	"context"
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
)

// unavailable skips a test whose external part is missing, or fails it
// under DSO_STRICT=1 (CI), where a skip would hide that nothing ran.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("DSO_STRICT") == "1" {
		t.Fatalf("DSO_STRICT=1: %s", msg)
	}
	t.Skip(msg)
}

// needAgentHost checks what a real agent needs: root (it mounts its
// secrets tmpfs) and a Docker engine.
func needAgentHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "the agent mounts a tmpfs and needs root; run as root")
	}
	sock := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		sock = h
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		unavailable(t, "no Docker engine at %s (%v): start dockerd", sock, err)
		return
	}
	_ = c.Close()
}

// TestMain removes the binary buildDSO built.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

var built struct {
	once     sync.Once
	dir, bin string
	err      error
	out      []byte
}

// buildDSO builds cmd/docker-dso once per test binary run (a build takes
// tens of seconds on the shared 2-core machines).
func buildDSO(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "dso-supervisor-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "docker-dso")
		c := exec.Command("go", "build", "-o", built.bin, "./cmd/docker-dso")
		c.Dir = "../.."
		built.out, built.err = c.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build ./cmd/docker-dso: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

type agentEnv struct {
	bin, dir, cfg, runDir, logFile, delivery, listen string
}

// newAgentEnv writes a config whose every path is in a temp dir and whose
// metrics listen on a free loopback port. Cleanup kills an agent still named
// by the pidfile (only if it is a dso agent, i.e. the one this test started)
// and unmounts the delivery tmpfs the agent mounted.
func newAgentEnv(t *testing.T, bin string) *agentEnv {
	t.Helper()
	dir := t.TempDir()
	e := &agentEnv{bin: bin, dir: dir, cfg: filepath.Join(dir, "dso.yaml"), runDir: filepath.Join(dir, "run"),
		logFile: filepath.Join(dir, "log", "agent.log"), delivery: filepath.Join(dir, "secrets"),
		listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
	cfg := fmt.Sprintf(`agent:
  api:
    socket: %q
  metrics:
    listen: %q
  delivery:
    dir: %q
logging:
  level: debug
  file: %q
state:
  dir: %q
bindings:
  dirs: [%q]
`, filepath.Join(dir, "dso.sock"), e.listen, e.delivery, e.logFile, filepath.Join(dir, "state"), filepath.Join(dir, "bindings.d"))
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d := &Direct{RunDir: e.runDir}
		if p, _, _ := d.running(); p != nil {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
			waitGone(context.Background(), p.PID, p.Started, 5*time.Second)
		}
		_ = syscall.Unmount(e.delivery, syscall.MNT_DETACH)
	})
	return e
}

// dso runs the binary as an operator would, with DSO_CONFIG set (not
// --config) to prove that enable starts the config the CLI resolved.
func (e *agentEnv) dso(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, e.bin, args...)
	c.Env = append(os.Environ(), "DSO_CONFIG="+e.cfg, RunDirEnv+"="+e.runDir)
	c.Dir = e.dir
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("running dso %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), 0
}

func pidFrom(t *testing.T, out, prefix string) int {
	t.Helper()
	i := strings.Index(out, prefix)
	if i < 0 {
		t.Fatalf("output lacks %q:\n%s", prefix, out)
	}
	rest := out[i+len(prefix):]
	j := strings.IndexAny(rest, ")\n ")
	pid, err := strconv.Atoi(rest[:j])
	if err != nil {
		t.Fatalf("no pid after %q in:\n%s", prefix, out)
	}
	return pid
}

func TestDirectLifecycleWithRealAgent(t *testing.T) {
	needAgentHost(t)
	e := newAgentEnv(t, buildDSO(t))

	start := time.Now()
	out, code := e.dso(t, "system", "enable")
	enableTook := time.Since(start)
	if code != 0 {
		t.Fatalf("enable exit %d:\n%s", code, out)
	}
	t.Logf("enable until /readyz: %s", enableTook)
	pid1 := pidFrom(t, out, "(pid ")
	if !strings.Contains(out, "config "+e.cfg) {
		t.Errorf("enable does not name the config it started:\n%s", out)
	}
	p, err := ReadProcess(pid1)
	if err != nil || !p.Alive() {
		t.Fatalf("the agent pid %d is not alive: %v", pid1, err)
	}
	want := []string{e.bin, "agent", "--config", e.cfg, "--quiet"}
	if strings.Join(p.Args, " ") != strings.Join(want, " ") {
		t.Errorf("agent command line %q, want %q", p.Args, want)
	}
	// Detached: its own session, so the operator's terminal cannot kill it.
	if sid, _ := syscall.Getpgid(pid1); sid != pid1 {
		t.Errorf("the agent's process group is %d, want its own (%d)", sid, pid1)
	}

	// A second enable leaves the running agent alone.
	out, code = e.dso(t, "system", "enable")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("already running (pid %d)", pid1)) {
		t.Errorf("second enable: exit %d:\n%s", code, out)
	}

	out, code = e.dso(t, "system", "status")
	if code != 0 {
		t.Fatalf("status of a running agent exited %d:\n%s", code, out)
	}
	for _, w := range []string{fmt.Sprintf("dso agent: running (pid %d)", pid1), "Enabled:   yes", "Uptime:", "Version:", "Config:    " + e.cfg, "Last log lines:", "agent ready"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}

	start = time.Now()
	out, code = e.dso(t, "system", "restart")
	t.Logf("restart (stop + start + /readyz): %s", time.Since(start))
	if code != 0 || !strings.HasPrefix(out, "dso agent restarted: version ") {
		t.Fatalf("restart exit %d:\n%s", code, out)
	}
	pid2 := pidFrom(t, out, "(pid ")
	if pid2 == pid1 {
		t.Errorf("restart kept pid %d", pid1)
	}
	if q, err := ReadProcess(pid1); err == nil && q.Alive() && q.IsDSOAgent() && q.Started.Equal(p.Started) {
		t.Errorf("the old agent (pid %d) still runs after restart", pid1)
	}

	out, code = e.dso(t, "system", "logs", "-n", "100")
	if code != 0 || strings.Count(out, "agent ready") < 2 || !strings.Contains(out, "agent stopped") {
		t.Errorf("logs after a restart should show two starts and a stop (exit %d):\n%s", code, out)
	}

	out, code = e.dso(t, "system", "disable")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("stopped pid %d", pid2)) {
		t.Fatalf("disable exit %d:\n%s", code, out)
	}
	if p, err := ReadProcess(pid2); err == nil && p.Alive() {
		t.Errorf("agent pid %d still alive after disable", pid2)
	}

	out, code = e.dso(t, "system", "status")
	if code != 3 || !strings.Contains(out, "dso agent: stopped") || !strings.Contains(out, "Enabled:   no") {
		t.Errorf("status after disable: exit %d (want 3):\n%s", code, out)
	}
}

// An agent that cannot start (its metrics port is taken) fails enable fast,
// with the agent's own words, and leaves no pidfile or marker behind.
func TestEnableFailureShowsAgentOutput(t *testing.T) {
	needAgentHost(t)
	e := newAgentEnv(t, buildDSO(t))
	ln, err := net.Listen("tcp", e.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()

	start := time.Now()
	out, code := e.dso(t, "system", "enable")
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("enable with a taken port exited %d:\n%s", code, out)
	}
	t.Logf("enable failed after %s", took)
	if took > 20*time.Second {
		t.Errorf("enable took %s to notice the agent died; it should not wait for the timeout", took)
	}
	for _, w := range []string{"the agent exited during startup", "last agent log lines", "address already in use"} {
		if !strings.Contains(out, w) {
			t.Errorf("enable failure lacks %q:\n%s", w, out)
		}
	}
	d := &Direct{RunDir: e.runDir}
	for _, f := range []string{d.PIDFile(), d.EnabledFile()} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind by a failed enable", f)
		}
	}
}
