package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

const rootShort = "Keep Docker containers' secrets in sync with their secret stores"

// configFlagName is the persistent flag every command reads its config file
// path from (see configPath).
const configFlagName = "config"

// NewRootCommand builds the whole command tree. The tree is identical for
// `dso` and `docker dso`; Main only changes the displayed name.
func NewRootCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   PluginName + " [command]",
		Short: rootShort,
		Long: rootShort + `.

dso reads SecretStore and SecretBinding declarations, delivers secrets to the
containers they select (as files on a tmpfs or as environment variables) and
rotates those containers safely when a secret changes.`,
		// No Args validator on purpose: without one cobra itself rejects an
		// unknown first word ("unknown command ... for dso") and suggests.
		// Errors are printed once by Main as "Error: <msg>"; cobra printing
		// them too (and a usage dump after every runtime error) would bury
		// the message.
		SilenceErrors: true,
		SilenceUsage:  true,
		// `completion` is our own command (completion.go) so that it shows up
		// in help and docs like the others.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	cmd.SetIn(s.In)
	cmd.SetOut(s.Out)
	cmd.SetErr(s.Err)
	cmd.PersistentFlags().String(configFlagName, "",
		"config file; when unset the first that exists of $DSO_CONFIG, /etc/dso/dso.yaml, ~/.dso/dso.yaml, ./dso.yaml")
	// A mistyped flag is the one error where pointing at --help is worth it.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// The hint on its own line is docker CLI's wording. This error is
		// only ever printed as the final "Error: ..." line, never wrapped
		// into another message, which is what ST1005 protects against.
		return fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath()) //nolint:staticcheck // ST1005: terminal, user-facing two-line message
	})

	// ---- The command list: one line per top-level command. ----
	cmd.AddCommand(
		newVersionCommand(s),
		newConfigCommand(s),
		newCompletionCommand(s),
		newInitCommand(s),
		newSecretCommand(s),
		newAgentCommand(s),
		newSystemCommand(s),
		newStatusCommand(s),
		newDoctorCommand(s),
		newGetCommand(s),
		newDescribeCommand(s),
		newApplyCommand(s),
		newDiffCommand(s),
		newDeleteCommand(s),
		newRotateCommand(s),
		newHistoryCommand(s),
		newMigrateCommand(s),
	)
	return cmd
}

// configPath returns the value of the persistent --config flag as seen from
// any command of the tree ("" when unset). Commands take only Streams, so
// this is how they reach the flag.
func configPath(cmd *cobra.Command) string {
	if f := cmd.Root().PersistentFlags().Lookup(configFlagName); f != nil {
		return f.Value.String()
	}
	return ""
}
