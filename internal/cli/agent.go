package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/agent"
	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/internal/logging"
)

func newAgentCommand(s Streams) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent: converge containers to their bindings and rotate them on change",
		Long: `Run the dso agent in the foreground until SIGTERM or SIGINT.

The agent loads the resolved config file (and its bindings folders), keeps the
containers the bindings select converged to their secrets, and rotates them with
a health-gated swap when a secret changes. It reloads its declarations when the
config file or a bindings folder changes, and on SIGHUP.

Logs are JSON lines written to logging.file (and to stderr unless --quiet).
/metrics, /healthz and /readyz are served on agent.metrics.listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, source, err := config.Resolve(configPath(cmd))
			if err != nil {
				return err
			}
			b, err := config.Load(path)
			if err != nil {
				return err
			}
			l := b.Agent.Spec.Logging
			log, closeLog, err := logging.New(logging.Options{Level: l.Level, Format: l.Format, File: l.File, Stderr: !quiet})
			if err != nil {
				return fmt.Errorf("open the agent log: %w", err)
			}
			defer func() { _ = closeLog() }()
			log.Info("configuration loaded", "config", path, "source", source, "stores", len(b.Stores), "bindings", len(b.Bindings))
			for _, w := range b.Warnings {
				log.Info("configuration warning", "warning", w.Error())
			}

			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			err = agent.Run(ctx, agent.Options{ConfigPath: path, Bundle: b, Log: log, Fault: agent.FaultHook(log)})
			if err != nil {
				log.Error(err, "agent failed")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&quiet, "quiet", false, "do not copy log lines to stderr")
	return cmd
}
