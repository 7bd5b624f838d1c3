package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/internal/supervisor"
)

// exitProcess ends the process with a code other than 0 or 1. Main maps
// every error to exit 1, but `system status` must exit 3 when the agent is
// stopped, as `systemctl status` does, so that scripts can tell "stopped"
// from "could not tell". Tests replace it.
var exitProcess = os.Exit

// exitStopped is systemctl's (and LSB's) "program is not running" code.
const exitStopped = 3

// statusLogLines is how many log lines status shows.
const statusLogLines = 5

func displayConfig(p string) string {
	if p == "" {
		return "(none: built-in defaults)"
	}
	return p
}

func newSystemEnableCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "enable",
		Short: "Start the agent in the background and keep it enabled",
		Long: `Start the agent in the background with the config file this command resolves
and wait until it is ready (/readyz).

With systemd: install /etc/systemd/system/dso-agent.service (plus a drop-in
when the binary or config differ from /usr/local/bin/dso and
/etc/dso/dso.yaml) and run 'systemctl enable --now dso-agent'. Without
systemd: start 'dso agent --config PATH --quiet' detached, with its pidfile
and an enabled marker in $DSO_RUN_DIR (default /run/dso). Running enable
again while the agent runs changes nothing.`,
		Example: `  sudo dso system enable
  DSO_CONFIG=/srv/dso/dso.yaml dso system enable`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _, err := config.Resolve(configPath(cmd))
			if err != nil {
				return err
			}
			t, err := loadTarget(path)
			if err != nil {
				return fmt.Errorf("not enabling the agent: its config does not load: %w", err)
			}
			if supervisor.SystemdRunning() {
				bin, err := os.Executable()
				if err != nil {
					return err
				}
				sd := supervisor.Systemd{}
				if err := sd.Enable(cmd.Context(), bin, t.ConfigPath); err != nil {
					return unitFailed(cmd.Context(), sd, err)
				}
				v, err := waitReady(cmd.Context(), t.MetricsListen)
				if err != nil {
					return unitFailed(cmd.Context(), sd, err)
				}
				return printf(s, "dso agent enabled (systemd unit %s): version %s, config %s\n", supervisor.UnitName, v, displayConfig(t.ConfigPath))
			}
			st, err := directSupervisor().Enable(cmd.Context(), t)
			if err != nil {
				return fmt.Errorf("enabling the agent: %w", err)
			}
			if st.AlreadyRunning {
				return printf(s, "dso agent already running (pid %d); enabled with config %s\n", st.PID, displayConfig(t.ConfigPath))
			}
			return printf(s, "dso agent enabled: version %s (pid %d), config %s\n", st.Version, st.PID, displayConfig(t.ConfigPath))
		},
	}
}

func newSystemDisableCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "disable",
		Short: "Stop the agent and keep it from starting again",
		Long: `Stop the agent (SIGTERM, then SIGKILL after 30s) and remove its enabled
marker and pidfile; with systemd, 'systemctl disable --now dso-agent'.

A pidfile that names a process which is not a dso agent (the pid was reused
after the agent died) is removed, and that process is left alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if supervisor.SystemdRunning() {
				installed, err := (supervisor.Systemd{}).Disable(cmd.Context())
				if err != nil {
					return err
				}
				if !installed {
					return printf(s, "dso agent disabled (the systemd unit %s is not installed)\n", supervisor.UnitName)
				}
				return printf(s, "dso agent disabled (systemd unit %s stopped)\n", supervisor.UnitName)
			}
			pid, warning, err := directSupervisor().Disable(cmd.Context())
			if warning != "" {
				note(s.Err, "Warning: %s\n", warning)
			}
			if err != nil {
				return fmt.Errorf("disabling the agent: %w", err)
			}
			if pid == 0 {
				return printf(s, "dso agent disabled (it was not running)\n")
			}
			return printf(s, "dso agent disabled: stopped pid %d\n", pid)
		},
	}
}

func newSystemRestartCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "restart",
		Short: "Restart the agent and wait until it is ready",
		Long: `Stop the agent if it runs, start it again and wait until /readyz answers;
then print the version that runs. The config is the one --config or
$DSO_CONFIG names, else the one 'system enable' was run with, else the usual
search. The config is checked before the running agent is stopped, so a
broken edit never leaves the host without an agent.

With systemd: 'systemctl restart dso-agent', then the same wait. Without
--config or $DSO_CONFIG the config is the one the installed unit runs (its
drop-in's, else /etc/dso/dso.yaml); one given that differs is installed in
the unit's drop-in first, as enable would.

A restart with unchanged secrets rotates nothing: the agent compares each
container's secret hash with the desired one.`,
		Example: `  sudo dso system restart`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if supervisor.SystemdRunning() {
				return systemdRestart(cmd, s)
			}
			path, _, err := agentConfig(cmd)
			if err != nil {
				return err
			}
			t, err := loadTarget(path)
			if err != nil {
				return fmt.Errorf("not restarting the agent: its config does not load (the running agent is left alone): %w", err)
			}
			st, warning, err := directSupervisor().Restart(cmd.Context(), t)
			if warning != "" {
				note(s.Err, "Warning: %s\n", warning)
			}
			if err != nil {
				return fmt.Errorf("restarting the agent: %w", err)
			}
			return printf(s, "dso agent restarted: version %s (pid %d)\n", st.Version, st.PID)
		},
	}
}

func newSystemStatusCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Say whether the agent runs, since when, and its last log lines",
		Long: `Say whether the agent runs (its pid is alive and is a dso agent), whether it
is enabled, its pid, uptime, version, config file and its last log lines.

Exits 0 when the agent runs and 3 when it is stopped, like systemctl status.
With systemd the state is the dso-agent unit's ('systemctl show dso-agent':
its MainPID, enabled or not) and the config the unit runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if supervisor.SystemdRunning() {
				return systemdStatus(cmd, s)
			}
			d := directSupervisor()
			st, err := d.Status()
			if err != nil {
				return err
			}
			path, _, cerr := agentConfig(cmd)
			if st.Enabled {
				path, cerr = st.ConfigPath, nil
			}
			var t supervisor.Target
			if cerr == nil {
				t, cerr = loadTarget(path)
				t.ConfigPath = path
			}
			var b strings.Builder
			if st.Running {
				fmt.Fprintf(&b, "dso agent: running (pid %d)\n", st.PID)
			} else {
				b.WriteString("dso agent: stopped\n")
			}
			enabled := "no"
			if st.Enabled {
				enabled = "yes"
			}
			fmt.Fprintf(&b, "  Enabled:   %s (supervised directly: systemd is not PID 1)\n", enabled)
			if st.Running {
				if !st.Started.IsZero() {
					up := time.Since(st.Started).Truncate(time.Second)
					fmt.Fprintf(&b, "  Uptime:    %s (since %s)\n", up, st.Started.UTC().Format(time.RFC3339))
				}
				if cerr == nil {
					if v, err := supervisor.ReadyVersion(cmd.Context(), t.MetricsListen); err == nil {
						fmt.Fprintf(&b, "  Version:   %s (ready on %s)\n", v, supervisor.ReadyURL(t.MetricsListen))
					} else {
						fmt.Fprintf(&b, "  Version:   unknown: not ready (%v)\n", err)
					}
				}
			}
			if st.StalePID != 0 {
				fmt.Fprintf(&b, "  Stale pid: %s names pid %d, which is not a running dso agent\n", d.PIDFile(), st.StalePID)
			}
			fmt.Fprintf(&b, "  Config:    %s\n", displayConfig(path))
			fmt.Fprintf(&b, "  PID file:  %s\n", d.PIDFile())
			if cerr != nil {
				fmt.Fprintf(&b, "  Log:       unknown: %v\n", cerr)
			} else {
				fmt.Fprintf(&b, "  Log:       %s\n", t.LogFile)
				if lines := tailLog(t.LogFile, statusLogLines); len(lines) > 0 {
					b.WriteString("\nLast log lines:\n")
					for _, l := range lines {
						b.WriteString("  " + l + "\n")
					}
				}
			}
			if err := printf(s, "%s", b.String()); err != nil {
				return err
			}
			if !st.Running {
				exitProcess(exitStopped)
			}
			return nil
		},
	}
}

// systemdAgentConfig is the config file of the agent the dso-agent unit
// runs: an explicit --config or $DSO_CONFIG wins (explicit is then true);
// otherwise the installed unit's (its drop-in's --config, else
// /etc/dso/dso.yaml); otherwise, with no unit installed, the usual search.
// The unit's config is what `sudo docker dso system restart` must wait for:
// sudo drops $DSO_CONFIG, and /etc/dso/dso.yaml may be another file.
func systemdAgentConfig(cmd *cobra.Command) (path string, explicit bool, err error) {
	if configPath(cmd) != "" || os.Getenv("DSO_CONFIG") != "" {
		path, _, err = config.Resolve(configPath(cmd))
		return path, true, err
	}
	p, ok, err := (supervisor.Systemd{}).ConfigPath()
	if err != nil {
		return "", false, err
	}
	if ok {
		return p, false, nil
	}
	path, _, err = config.Resolve("")
	return path, false, err
}

// systemdRestart restarts the unit after checking its config; an explicit
// --config or $DSO_CONFIG that is not the unit's is installed first (as
// enable would), so the restarted agent runs what the command was given.
func systemdRestart(cmd *cobra.Command, s Streams) error {
	ctx := cmd.Context()
	sd := supervisor.Systemd{}
	if !sd.Installed() {
		return fmt.Errorf("the systemd unit %s is not installed: start the agent with docker dso system enable", supervisor.UnitName)
	}
	path, explicit, err := systemdAgentConfig(cmd)
	if err != nil {
		return err
	}
	t, err := loadTarget(path)
	if err != nil {
		return fmt.Errorf("not restarting the agent: its config does not load (the running agent is left alone): %w", err)
	}
	if explicit {
		cur, _, err := sd.ConfigPath()
		if err != nil {
			return err
		}
		want := t.ConfigPath
		if want == "" {
			want = supervisor.UnitConfig // what Install writes for ""
		}
		if cur != want {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			if err := sd.Install(ctx, bin, t.ConfigPath); err != nil {
				return err
			}
		}
	}
	if err := sd.Restart(ctx); err != nil {
		return unitFailed(ctx, sd, err)
	}
	v, err := waitReady(ctx, t.MetricsListen)
	if err != nil {
		return unitFailed(ctx, sd, err)
	}
	return printf(s, "dso agent restarted: version %s (systemd unit %s)\n", v, supervisor.UnitName)
}

// unitFailed adds what systemd knows to an enable/restart failure: the
// unit's state and its last journal lines (a unit that systemd cannot even
// start, e.g. status=216/GROUP, writes nothing to the agent's log file).
func unitFailed(ctx context.Context, sd supervisor.Systemd, err error) error {
	// The command's context may be what ran out; systemctl still answers.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var b strings.Builder
	if u, serr := sd.Show(ctx); serr == nil {
		fmt.Fprintf(&b, "\nsystemd unit %s: %s (%s), result %s, %d automatic restarts", supervisor.UnitName, u.ActiveState, u.SubState, u.Result, u.NRestarts)
	}
	if lines := journalTail(ctx, sd, 10); len(lines) > 0 {
		fmt.Fprintf(&b, "\nlast journal lines (journalctl -u %s -n 10):", supervisor.UnitName)
		for _, l := range lines {
			b.WriteString("\n  " + l)
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w%s", err, b.String())
}

// systemdStatus says what `system status` says without systemd, from
// `systemctl show dso-agent`: running (its MainPID) or stopped, enabled,
// uptime, version, config, log. Exits 3 when the agent does not run, like
// systemctl status.
func systemdStatus(cmd *cobra.Command, s Streams) error {
	ctx := cmd.Context()
	sd := supervisor.Systemd{}
	var b strings.Builder
	if !sd.Installed() {
		b.WriteString("dso agent: stopped\n")
		fmt.Fprintf(&b, "  Enabled:   no (the systemd unit %s is not installed: docker dso system enable installs it)\n", supervisor.UnitName)
		if err := printf(s, "%s", b.String()); err != nil {
			return err
		}
		exitProcess(exitStopped)
		return nil
	}
	u, err := sd.Show(ctx)
	if err != nil {
		return err
	}
	path, _, cerr := systemdAgentConfig(cmd)
	var t supervisor.Target
	if cerr == nil {
		t, cerr = loadTarget(path)
		t.ConfigPath = path
	}
	if u.Running() {
		fmt.Fprintf(&b, "dso agent: running (pid %d)\n", u.MainPID)
	} else {
		b.WriteString("dso agent: stopped\n")
	}
	enabled := "no"
	if u.Enabled() {
		enabled = "yes"
	}
	fmt.Fprintf(&b, "  Enabled:   %s (systemd unit %s: %s)\n", enabled, supervisor.UnitName, u.UnitFileState)
	state := fmt.Sprintf("%s (%s)", u.ActiveState, u.SubState)
	if u.Result != "" && u.Result != "success" {
		state += ", last result " + u.Result
	}
	if u.NRestarts > 0 {
		state += fmt.Sprintf(", %d automatic restarts", u.NRestarts)
	}
	fmt.Fprintf(&b, "  Unit:      %s\n", state)
	if u.Running() {
		if p, err := supervisor.ReadProcess(u.MainPID); err == nil && !p.Started.IsZero() {
			up := time.Since(p.Started).Truncate(time.Second)
			fmt.Fprintf(&b, "  Uptime:    %s (since %s)\n", up, p.Started.UTC().Format(time.RFC3339))
		}
		if cerr == nil {
			if v, err := supervisor.ReadyVersion(ctx, t.MetricsListen); err == nil {
				fmt.Fprintf(&b, "  Version:   %s (ready on %s)\n", v, supervisor.ReadyURL(t.MetricsListen))
			} else {
				fmt.Fprintf(&b, "  Version:   unknown: not ready (%v)\n", err)
			}
		}
	}
	fmt.Fprintf(&b, "  Config:    %s\n", displayConfig(path))
	var lines []string
	if cerr != nil {
		fmt.Fprintf(&b, "  Log:       unknown: %v (journalctl -u %s)\n", cerr, supervisor.UnitName)
	} else {
		fmt.Fprintf(&b, "  Log:       %s (and journalctl -u %s)\n", t.LogFile, supervisor.UnitName)
		lines = tailLog(t.LogFile, statusLogLines)
	}
	if len(lines) == 0 {
		lines = journalTail(ctx, sd, statusLogLines)
	}
	if len(lines) > 0 {
		b.WriteString("\nLast log lines:\n")
		for _, l := range lines {
			b.WriteString("  " + l + "\n")
		}
	}
	if err := printf(s, "%s", b.String()); err != nil {
		return err
	}
	if !u.Running() {
		exitProcess(exitStopped)
	}
	return nil
}

// journalTail is the unit's last n journal lines, the agent's JSON entries
// rendered as `system logs` renders them and systemd's own lines as they are.
func journalTail(ctx context.Context, sd supervisor.Systemd, n int) []string {
	var lines []string
	for _, l := range sd.JournalTail(ctx, n) {
		if e, ok := parseLogLine([]byte(l)); ok {
			l = e.Human()
		}
		lines = append(lines, l)
	}
	return lines
}

// waitReady polls /readyz for up to 30s (the systemd path; the direct
// supervisor has its own wait that also watches the process).
func waitReady(ctx context.Context, listen string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		v, err := supervisor.ReadyVersion(ctx, listen)
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the agent did not answer %s within 30s: see docker dso system logs -n 50: %w", supervisor.ReadyURL(listen), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printf writes command output, its error checked.
func printf(s Streams, format string, args ...any) error {
	_, err := fmt.Fprintf(s.Out, format, args...)
	return err
}
