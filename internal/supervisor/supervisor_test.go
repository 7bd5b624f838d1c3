package supervisor

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIsDSOAgentArgs(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"/usr/local/bin/dso", "agent", "--config", "/etc/dso/dso.yaml", "--quiet"}, true},
		{[]string{"/home/u/.docker/cli-plugins/docker-dso", "dso", "agent"}, true},
		{[]string{"docker-dso", "agent", "--quiet"}, true},
		{[]string{"/usr/local/bin/dso", "status"}, false},
		{[]string{"/usr/local/bin/dso"}, false},
		{[]string{"/bin/sleep", "agent"}, false},
		{[]string{"/usr/bin/python3", "dso", "agent"}, false},
		{[]string{"/usr/local/bin/dso", "dso", "status"}, false},
		{nil, false},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if got := IsDSOAgentArgs(tc.args); got != tc.want {
				t.Errorf("IsDSOAgentArgs(%q) = %v, want %v", tc.args, got, tc.want)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tail := " 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10 0"
	tests := []struct {
		name, line string
		state      string
		ticks      uint64
		wantErr    bool
	}{
		{"plain", "42 (docker-dso) S" + tail, "S", 987654, false},
		// A command name may hold spaces and parentheses.
		{"tricky name", "42 (a) b (c) Z" + tail, "Z", 987654, false},
		{"no parens", "42 docker-dso S" + tail, "", 0, true},
		{"short", "42 (x) S 1 2", "", 0, true},
		{"not a number", "42 (x) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 soon 1000", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state, ticks, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStat error = %v, wantErr %v", err, tc.wantErr)
			}
			if state != tc.state || ticks != tc.ticks {
				t.Errorf("parseStat = %q, %d; want %q, %d", state, ticks, tc.state, tc.ticks)
			}
		})
	}
}

func TestReadyURL(t *testing.T) {
	tests := map[string]string{
		"127.0.0.1:9469": "http://127.0.0.1:9469/readyz",
		":9469":          "http://127.0.0.1:9469/readyz",
		"0.0.0.0:9469":   "http://127.0.0.1:9469/readyz",
		"[::1]:9469":     "http://[::1]:9469/readyz",
		"localhost:1":    "http://localhost:1/readyz",
	}
	for in, want := range tests {
		if got := ReadyURL(in); got != want {
			t.Errorf("ReadyURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The binary installs the embedded copy; the repository documents
// config/systemd/dso-agent.service. They must be the same file.
func TestEmbeddedUnitMatchesConfig(t *testing.T) {
	b, err := os.ReadFile("../../config/systemd/dso-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Unit) {
		t.Fatal("internal/supervisor/dso-agent.service differs from config/systemd/dso-agent.service: copy the latter over the former")
	}
	for _, want := range []string{
		"ExecStart=/usr/local/bin/dso agent --config /etc/dso/dso.yaml\n",
		"Restart=on-failure\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
		"ReadWritePaths=/var/lib/dso /var/log/dso /run/dso\n", "ProtectHome=read-only\n",
		"PrivateTmp=yes\n", "RuntimeDirectory=dso\n", "StateDirectory=dso\n", "LogsDirectory=dso\n",
		"CapabilityBoundingSet=CAP_SYS_ADMIN CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL\n",
	} {
		if !strings.Contains(string(Unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	// test/systemd found both: a docker group the host may not have stops
	// the unit from starting (216/GROUP), and --quiet keeps the agent's
	// lines out of the journal that `journalctl -u dso-agent` reads.
	for _, line := range strings.Split(string(Unit), "\n") {
		if strings.HasPrefix(line, "SupplementaryGroups=") || (strings.HasPrefix(line, "ExecStart=") && strings.Contains(line, "--quiet")) {
			t.Errorf("the unit has %q", line)
		}
	}
	if strings.Contains(DropIn("/opt/dso", "/srv/dso.yaml"), "--quiet") {
		t.Error("the drop-in's ExecStart has --quiet")
	}
}

func TestSystemdCommands(t *testing.T) {
	var calls []string
	s := Systemd{Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		return nil, nil
	}}
	ctx := context.Background()
	s.Root = t.TempDir()
	if installed, err := s.Disable(ctx); err != nil || installed {
		t.Fatalf("Disable without the unit = %v, %v; want false, nil (and no systemctl call)", installed, err)
	}
	if err := os.MkdirAll(filepath.Join(s.Root, filepath.Dir(UnitPath)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root, UnitPath), Unit, 0o600); err != nil {
		t.Fatal(err)
	}
	if installed, err := s.Disable(ctx); err != nil || !installed {
		t.Fatalf("Disable = %v, %v", installed, err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Active(ctx) {
		t.Error("Active = false for a zero exit")
	}
	want := []string{"systemctl disable --now dso-agent", "systemctl restart dso-agent", "systemctl is-active --quiet dso-agent"}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", calls, want)
	}
}

// startChild starts a process of this test and stops it (by its pid) at
// cleanup.
func startChild(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(name, args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	})
	return c
}

func writePID(t *testing.T, d *Direct, pid int) {
	t.Helper()
	if err := os.MkdirAll(d.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.PIDFile(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A pidfile whose pid now belongs to another program must not get that
// program signalled.
func TestDisableRefusesToSignalAnotherProcess(t *testing.T) {
	d := &Direct{RunDir: t.TempDir(), StopTimeout: time.Second}
	other := startChild(t, "sleep", "30")
	writePID(t, d, other.Process.Pid)
	if err := os.WriteFile(d.EnabledFile(), []byte("/etc/dso/dso.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.StalePID != other.Process.Pid || !st.Enabled {
		t.Errorf("Status = %+v, want stopped, enabled, stale pid %d", st, other.Process.Pid)
	}

	stopped, warning, err := d.Disable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stopped != 0 {
		t.Errorf("Disable reports it stopped pid %d", stopped)
	}
	if !strings.Contains(warning, "is not a dso agent") || !strings.Contains(warning, "sleep 30") {
		t.Errorf("warning %q does not say the pid is another program", warning)
	}
	time.Sleep(100 * time.Millisecond)
	p, err := ReadProcess(other.Process.Pid)
	if err != nil || !p.Alive() {
		t.Fatalf("the unrelated process was signalled: %+v, %v", p, err)
	}
	for _, f := range []string{d.PIDFile(), d.EnabledFile()} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still exists after disable", f)
		}
	}
}

func TestStatusStalePidfileOfExitedProcess(t *testing.T) {
	d := &Direct{RunDir: t.TempDir()}
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	writePID(t, d, c.Process.Pid)
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Enabled || st.StalePID != c.Process.Pid {
		t.Errorf("Status = %+v, want stopped, disabled, stale pid %d", st, c.Process.Pid)
	}
	// Disable of a dead pid is a clean no-op that removes the pidfile.
	if pid, w, err := d.Disable(context.Background()); err != nil || pid != 0 || w != "" {
		t.Errorf("Disable = %d, %q, %v; want 0, no warning, nil", pid, w, err)
	}
	if _, err := os.Stat(d.PIDFile()); !os.IsNotExist(err) {
		t.Error("the stale pidfile was not removed")
	}
}

func TestPidfileGarbage(t *testing.T) {
	d := &Direct{RunDir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(d.RunDir, PIDFileName), []byte("not-a-pid"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := d.Status()
	if err == nil || !strings.Contains(err.Error(), "does not hold a pid") {
		t.Errorf("Status error = %v, want one about the pidfile", err)
	}
}

func TestReadProcessSelf(t *testing.T) {
	p, err := ReadProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Alive() || len(p.Args) == 0 {
		t.Errorf("ReadProcess(self) = %+v", p)
	}
	if age := time.Since(p.Started); age < 0 || age > time.Hour {
		t.Errorf("start time %s is %s ago, want within the test's run", p.Started, age)
	}
	if _, err := ReadProcess(1 << 30); err == nil {
		t.Error("ReadProcess of a pid that cannot exist returned no error")
	}
}

// Install writes the drop-in only for another binary or config, and
// ConfigPath reads back the config the unit then runs.
func TestSystemdInstallConfigPath(t *testing.T) {
	var calls []string
	s := Systemd{Root: t.TempDir(), Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		return nil, nil
	}}
	if err := os.MkdirAll(filepath.Join(s.Root, filepath.Dir(UnitPath)), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ConfigPath(); ok || err != nil {
		t.Fatalf("ConfigPath without the unit: ok=%v err=%v", ok, err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ bin, cfg, want string }{
		{"/usr/local/bin/dso", "", "/etc/dso/dso.yaml"},
		{"/usr/local/bin/dso", "/srv/my dso/dso.yaml", "/srv/my dso/dso.yaml"},
		{"/opt/dso/bin/dso", "/etc/dso/dso.yaml", "/etc/dso/dso.yaml"},
		{"/usr/local/bin/dso", `/srv/a"b\\c.yaml`, `/srv/a"b\\c.yaml`},
		{"/usr/local/bin/dso", "/etc/dso/dso.yaml", "/etc/dso/dso.yaml"},
	} {
		if err := s.Install(ctx, tc.bin, tc.cfg); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ConfigPath()
		if err != nil || !ok || got != tc.want {
			t.Errorf("Install(%q, %q): ConfigPath = %q, %v, %v; want %q", tc.bin, tc.cfg, got, ok, err, tc.want)
		}
		_, statErr := os.Stat(filepath.Join(s.Root, DropInPath))
		if wantDropIn := tc.bin != unitBin || tc.want != unitConfig; wantDropIn != (statErr == nil) {
			t.Errorf("Install(%q, %q): drop-in exists = %v", tc.bin, tc.cfg, statErr == nil)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(s.Root, UnitPath)); !bytes.Equal(b, Unit) {
		t.Error("the installed unit is not the embedded one")
	}
	if len(calls) != 5 || calls[0] != "systemctl daemon-reload" {
		t.Errorf("calls %q: want one daemon-reload per Install", calls)
	}
}

func TestParseShow(t *testing.T) {
	u := parseShow([]byte("LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nResult=success\nMainPID=304\nNRestarts=2\n"))
	if !u.Running() || !u.Enabled() || u.MainPID != 304 || u.NRestarts != 2 || u.Result != "success" {
		t.Errorf("parseShow: %+v", u)
	}
	u = parseShow([]byte("LoadState=loaded\nActiveState=activating\nSubState=auto-restart\nUnitFileState=disabled\nResult=exit-code\nMainPID=0\n"))
	if u.Running() || u.Enabled() {
		t.Errorf("parseShow (restarting, disabled): %+v", u)
	}
}
