package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/version"
)

func newVersionCommand(s Streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the version, git commit and build information",
		Args:  cobra.NoArgs,
		Example: `  dso version
  dso version --json | jq -r .version`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			if asJSON {
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			w := tabwriter.NewWriter(s.Out, 0, 0, 1, ' ', 0)
			fmt.Fprintf(w, "Version:\t%s\n", info.Version)
			fmt.Fprintf(w, "Git commit:\t%s\n", info.Commit)
			fmt.Fprintf(w, "Built:\t%s\n", info.BuildDate)
			fmt.Fprintf(w, "Go version:\t%s\n", info.GoVersion)
			fmt.Fprintf(w, "OS/Arch:\t%s\n", info.Platform)
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the build information as JSON")
	return cmd
}
