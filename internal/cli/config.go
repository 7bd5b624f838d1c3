package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/config"
)

func newConfigCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show, validate and edit the dso configuration",
		Long: `Show, validate and edit the dso configuration.

The config file is the first that exists of: --config, $DSO_CONFIG,
/etc/dso/dso.yaml, ~/.dso/dso.yaml, ./dso.yaml. The agent uses the same order.`,
		// A group command must be runnable for cobra to check its Args:
		// otherwise `dso config frobnicate` prints help and exits 0.
		Args:                  cobra.NoArgs,
		RunE:                  showHelp,
		DisableFlagsInUseLine: true,
	}
	cmd.AddCommand(
		newConfigShowCommand(s),
		newConfigValidateCommand(s),
		newConfigEditCommand(s),
	)
	return cmd
}

// showHelp is the RunE of group commands: the group alone prints its help.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// resolveConfig finds the config file the way the agent does.
func resolveConfig(cmd *cobra.Command) (path, source string, err error) {
	path, source, err = config.Resolve(configPath(cmd))
	if err != nil {
		return "", "", fmt.Errorf("finding the config file: %w", err)
	}
	return path, source, nil
}

// configErrors returns the individual errors of a loader error: the items of
// a config.ErrorList, or nil when err is of another kind (an unreadable
// file, say), which the caller then reports as it is.
func configErrors(err error) []*config.Error {
	var list config.ErrorList
	if errors.As(err, &list) {
		return list
	}
	var one *config.Error
	if errors.As(err, &one) {
		return []*config.Error{one}
	}
	return nil
}

// plural formats a count with its noun: "1 store", "2 stores".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
