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
			rows := [][2]string{
				{"Version", info.Version},
				{"Git commit", info.Commit},
				{"Built", info.BuildDate},
				{"Go version", info.GoVersion},
				{"OS/Arch", info.Platform},
			}
			for _, r := range rows {
				if _, err := fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1]); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the build information as JSON")
	return cmd
}
