package supervisor

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Systemd drives the dso-agent unit. It cannot be tested on the CI machines
// (no systemd there), so it is kept to a few systemctl calls.
type Systemd struct {
	// Run executes a command (default: exec, output returned combined).
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

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
	if err := os.WriteFile(UnitPath, Unit, 0o644); err != nil { //nolint:gosec // unit files are world-readable by convention
		return fmt.Errorf("installing %s: %w (run as root)", UnitPath, err)
	}
	if configPath == "" {
		configPath = unitConfig
	}
	if bin != unitBin || configPath != unitConfig {
		dropIn := fmt.Sprintf("# Written by `dso system enable`: the binary and config it was run with.\n[Service]\nExecStart=\nExecStart=%s agent --config %s --quiet\n",
			systemdQuote(bin), systemdQuote(configPath))
		if err := os.MkdirAll(filepath.Dir(DropInPath), 0o755); err != nil { //nolint:gosec // G301: unit directories are world-readable by convention
			return fmt.Errorf("creating %s: %w", filepath.Dir(DropInPath), err)
		}
		if err := os.WriteFile(DropInPath, []byte(dropIn), 0o644); err != nil { //nolint:gosec // see above
			return fmt.Errorf("writing %s: %w", DropInPath, err)
		}
	} else if err := os.Remove(DropInPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing the stale drop-in %s: %w", DropInPath, err)
	}
	return s.systemctl(ctx, "daemon-reload")
}

// systemdQuote quotes a path for an ExecStart line when it needs it.
func systemdQuote(p string) string {
	if strings.ContainsAny(p, " \t\"'\\") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return p
}

// Enable installs the unit and runs `systemctl enable --now dso-agent`.
func (s Systemd) Enable(ctx context.Context, bin, configPath string) error {
	if err := s.Install(ctx, bin, configPath); err != nil {
		return err
	}
	return s.systemctl(ctx, "enable", "--now", UnitName)
}

// Disable runs `systemctl disable --now dso-agent`.
func (s Systemd) Disable(ctx context.Context) error {
	return s.systemctl(ctx, "disable", "--now", UnitName)
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
