package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a shell completion script for dso.

As a docker CLI plugin, "docker dso" is completed by docker's own completion,
which asks this binary; the scripts here are for the plain "dso" command.`,
		Example: `  dso completion bash > /etc/bash_completion.d/dso
  dso completion zsh > "${fpath[1]}/_dso"
  dso completion fish > ~/.config/fish/completions/dso.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(s.Out, true)
			case "zsh":
				return root.GenZshCompletion(s.Out)
			case "fish":
				return root.GenFishCompletion(s.Out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(s.Out)
			}
			return fmt.Errorf("unsupported shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}
