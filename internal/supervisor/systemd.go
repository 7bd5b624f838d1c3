package supervisor

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Unit is config/systemd/dso-agent.service, embedded so that the binary can
// install it (a test keeps the two copies identical).
//
//go:embed dso-agent.service
var Unit []byte

// Paths and names of the systemd integration.
const (
	UnitName   = "dso-agent"
	UnitPath   = "/etc/systemd/system/dso-agent.service"
	DropInPath = "/etc/systemd/system/dso-agent.service.d/10-dso-config.conf"
	// unitBin and unitConfig are what the unit's ExecStart runs.
	unitBin    = "/usr/local/bin/dso"
	unitConfig = "/etc/dso/dso.yaml"
)

// UnitConfig is the config file the unit runs when no drop-in names
// another.
const UnitConfig = unitConfig

// SystemdRunning reports whether systemd is PID 1, with the test systemd
// itself documents (sd_booted): /run/systemd/system exists. /proc/1/comm is
// checked as well because a container can bind-mount /run from a systemd
// host while its own PID 1 is something else.
func SystemdRunning() bool {
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "systemd" {
		return false
	}
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// Systemd drives the dso-agent unit with systemctl. test/systemd runs it
// for real, in a container whose PID 1 is systemd (make test-systemd); the
// unit tests here fake Run and Root.
type Systemd struct {
	// Run executes a command (default: exec, output returned combined).
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Root prefixes UnitPath and DropInPath ("" = /; tests use a temp dir).
	Root string
}

func (s Systemd) unitPath() string   { return filepath.Join(s.Root, UnitPath) }
func (s Systemd) dropInPath() string { return filepath.Join(s.Root, DropInPath) }

func (s Systemd) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if s.Run != nil {
		return s.Run(ctx, name, args...)
	}
	return exec.CommandContext(ctx, name, args...).CombinedOutput() //nolint:gosec // systemctl with fixed verbs
}

func (s Systemd) systemctl(ctx context.Context, args ...string) error {
	out, err := s.run(ctx, "systemctl", args...)
	if err != nil {
		return fmt.Errorf("systemctl %s failed: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Install writes the unit and, when the binary or the config differ from
// the unit's defaults, a drop-in that overrides ExecStart, then reloads
// systemd.
func (s Systemd) Install(ctx context.Context, bin, configPath string) error {
	if err := os.WriteFile(s.unitPath(), Unit, 0o644); err != nil { //nolint:gosec // unit files are world-readable by convention
		return fmt.Errorf("installing %s: %w (run as root)", s.unitPath(), err)
	}
	if configPath == "" {
		configPath = unitConfig
	}
	if bin != unitBin || configPath != unitConfig {
		if err := os.MkdirAll(filepath.Dir(s.dropInPath()), 0o755); err != nil { //nolint:gosec // G301: unit directories are world-readable by convention
			return fmt.Errorf("creating %s: %w", filepath.Dir(s.dropInPath()), err)
		}
		if err := os.WriteFile(s.dropInPath(), []byte(DropIn(bin, configPath)), 0o644); err != nil { //nolint:gosec // see above
			return fmt.Errorf("writing %s: %w", s.dropInPath(), err)
		}
	} else if err := os.Remove(s.dropInPath()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing the stale drop-in %s: %w", s.dropInPath(), err)
	}
	return s.systemctl(ctx, "daemon-reload")
}

// DropIn is the drop-in that runs bin with configPath instead of the unit's
// defaults. Its ExecStart has the unit's arguments.
func DropIn(bin, configPath string) string {
	return fmt.Sprintf("# Written by `dso system enable`: the binary and config it was run with.\n[Service]\nExecStart=\nExecStart=%s agent --config %s\n",
		systemdQuote(bin), systemdQuote(configPath))
}

// systemdQuote quotes a path for an ExecStart line when it needs it.
func systemdQuote(p string) string {
	if strings.ContainsAny(p, " \t\"'\\") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return p
}

// Installed reports whether the unit file exists.
func (s Systemd) Installed() bool {
	_, err := os.Stat(s.unitPath())
	return err == nil
}

// ConfigPath is the config file the installed unit runs: the --config of
// the drop-in's ExecStart when `system enable` wrote one, else the unit's
// /etc/dso/dso.yaml. ok is false when the unit is not installed.
func (s Systemd) ConfigPath() (path string, ok bool, err error) {
	if !s.Installed() {
		return "", false, nil
	}
	b, err := os.ReadFile(s.dropInPath())
	if errors.Is(err, os.ErrNotExist) {
		return unitConfig, true, nil
	}
	if err != nil {
		return "", true, fmt.Errorf("reading %s: %w", s.dropInPath(), err)
	}
	path = unitConfig
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, found := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ExecStart=")
		if !found || v == "" {
			continue
		}
		args := splitExec(v)
		for i, a := range args {
			if a == "--config" && i+1 < len(args) {
				path = args[i+1]
			} else if p, found := strings.CutPrefix(a, "--config="); found {
				path = p
			}
		}
	}
	return path, true, nil
}

// splitExec splits an ExecStart command line as systemdQuote writes it:
// words separated by blanks, double-quoted words with \\ and \" escapes.
func splitExec(s string) []string {
	var (
		args []string
		cur  strings.Builder
		in   bool // inside double quotes
		word bool // cur holds a word (possibly empty "")
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			in, word = !in, true
		case !in && (c == ' ' || c == '\t'):
			if word {
				args = append(args, cur.String())
				cur.Reset()
				word = false
			}
		default:
			cur.WriteByte(c)
			word = true
		}
	}
	if word {
		args = append(args, cur.String())
	}
	return args
}

// Enable installs the unit and runs `systemctl enable --now dso-agent`.
func (s Systemd) Enable(ctx context.Context, bin, configPath string) error {
	if err := s.Install(ctx, bin, configPath); err != nil {
		return err
	}
	return s.systemctl(ctx, "enable", "--now", UnitName)
}

// Disable runs `systemctl disable --now dso-agent`. A unit that is not
// installed has nothing to disable: installed is false and nothing runs.
func (s Systemd) Disable(ctx context.Context) (installed bool, err error) {
	if !s.Installed() {
		return false, nil
	}
	return true, s.systemctl(ctx, "disable", "--now", UnitName)
}

// Restart runs `systemctl restart dso-agent`.
func (s Systemd) Restart(ctx context.Context) error {
	return s.systemctl(ctx, "restart", UnitName)
}

// Active reports `systemctl is-active --quiet dso-agent`.
func (s Systemd) Active(ctx context.Context) bool {
	_, err := s.run(ctx, "systemctl", "is-active", "--quiet", UnitName)
	return err == nil
}

// UnitState is what `systemctl show dso-agent` says about the unit.
type UnitState struct {
	// LoadState is loaded, not-found, masked, ...
	LoadState string
	// ActiveState and SubState: active/running, inactive/dead,
	// activating/auto-restart, failed/failed, ...
	ActiveState, SubState string
	// UnitFileState is enabled, disabled, static, ... ("" when not found).
	UnitFileState string
	// Result is the last run's result: success, exit-code, signal, ...
	Result string
	// MainPID is the agent's pid (0 when it is not running).
	MainPID int
	// NRestarts counts automatic restarts (Restart=on-failure).
	NRestarts int
}

// Running reports whether the agent process runs: the unit is active and
// has a main process.
func (u UnitState) Running() bool { return u.ActiveState == "active" && u.MainPID > 0 }

// Enabled reports whether the unit starts at boot.
func (u UnitState) Enabled() bool {
	return u.UnitFileState == "enabled" || u.UnitFileState == "enabled-runtime"
}

// Show reads the unit's state with `systemctl show`.
func (s Systemd) Show(ctx context.Context) (UnitState, error) {
	out, err := s.run(ctx, "systemctl", "show", "--no-pager",
		"-p", "LoadState,ActiveState,SubState,UnitFileState,Result,MainPID,NRestarts", UnitName)
	if err != nil {
		return UnitState{}, fmt.Errorf("systemctl show %s failed: %w: %s", UnitName, err, strings.TrimSpace(string(out)))
	}
	return parseShow(out), nil
}

func parseShow(out []byte) UnitState {
	var u UnitState
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "LoadState":
			u.LoadState = v
		case "ActiveState":
			u.ActiveState = v
		case "SubState":
			u.SubState = v
		case "UnitFileState":
			u.UnitFileState = v
		case "Result":
			u.Result = v
		case "MainPID":
			u.MainPID, _ = strconv.Atoi(v)
		case "NRestarts":
			u.NRestarts, _ = strconv.Atoi(v)
		}
	}
	return u
}

// JournalTail returns the unit's last n journal lines (systemd's own and
// the agent's), for error messages; nil when journalctl fails.
func (s Systemd) JournalTail(ctx context.Context, n int) []string {
	out, err := s.run(ctx, "journalctl", "-u", UnitName, "-n", strconv.Itoa(n), "--no-pager", "-o", "cat")
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "-- ") { // "-- No entries --"
			lines = append(lines, l)
		}
	}
	return lines
}
