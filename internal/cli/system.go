package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/internal/supervisor"
)

func newSystemCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Run the agent in the background and read its logs",
		Long: `Run the agent in the background and read its logs.

Where systemd is PID 1, enable installs the hardened dso-agent unit and the
other commands drive systemctl. Without systemd (containers, CI machines) the
agent is supervised directly: a detached process with a pidfile in
$DSO_RUN_DIR (default /run/dso). Either way the agent runs the config file
this command resolves (--config, $DSO_CONFIG, /etc/dso/dso.yaml, ...).`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newSystemLogsCommand(s),
		newSystemEnableCommand(s),
		newSystemDisableCommand(s),
		newSystemRestartCommand(s),
		newSystemStatusCommand(s),
		newSystemBackupCommand(s),
	)
	return cmd
}

// directSupervisor is the no-systemd supervisor with its run directory from
// $DSO_RUN_DIR.
func directSupervisor() *supervisor.Direct {
	return &supervisor.Direct{RunDir: supervisor.RunDirFromEnv(os.Getenv), Tail: tailLog}
}

// agentConfig is the config file the running (or enabled) agent uses: an
// explicit --config or $DSO_CONFIG wins; otherwise the one enable recorded
// (so that `sudo docker dso system restart`, which drops the environment,
// keeps the config enable was given); otherwise the usual resolution.
func agentConfig(cmd *cobra.Command) (path, source string, err error) {
	if configPath(cmd) == "" && os.Getenv("DSO_CONFIG") == "" {
		if p, ok, err := directSupervisor().Enabled(); err == nil && ok {
			if p == "" {
				return "", config.SourceDefaults, nil
			}
			return p, "system enable", nil
		}
	}
	return config.Resolve(configPath(cmd))
}

// loadTarget loads path and returns what the supervisor needs from it. The
// path is made absolute: the agent runs in /, not in the caller's directory.
func loadTarget(path string) (supervisor.Target, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return supervisor.Target{}, err
		}
		path = abs
	}
	b, err := config.Load(path)
	if err != nil {
		return supervisor.Target{}, err
	}
	spec := b.Agent.Spec
	return supervisor.Target{ConfigPath: path, MetricsListen: spec.Agent.Metrics.Listen, LogFile: spec.Logging.File}, nil
}

// agentLogFile is logging.file of the agent's config. A config that no
// longer loads still has a log worth reading (that is often why one reads
// it), so its error is returned next to the default path.
func agentLogFile(cmd *cobra.Command) (file string, loadErr error) {
	path, _, err := agentConfig(cmd)
	if err != nil {
		return v1alpha1.DefaultLogFile, err
	}
	t, err := loadTarget(path)
	if err != nil {
		return v1alpha1.DefaultLogFile, err
	}
	if t.LogFile == "" {
		return v1alpha1.DefaultLogFile, nil
	}
	return t.LogFile, nil
}
