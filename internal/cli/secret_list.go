package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newSecretListCommand(s Streams) *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List the keys of the local store",
		Long: `List the keys of the local store, one per line, sorted; only keys starting
with PREFIX when one is given. --long adds each key's version and the time it
was last set. Values are never listed.`,
		Example: `  dso secret list
  dso secret list myapp/ --long`,
		Aliases: []string{"ls"},
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			st, err := openLocalStore(cmd)
			if err != nil {
				return err
			}
			entries, err := st.List(prefix)
			if err != nil {
				return err
			}
			if !long {
				for _, e := range entries {
					if _, err := fmt.Fprintln(s.Out, e.Key); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			if _, err := fmt.Fprintln(tw, "KEY\tVERSION\tUPDATED"); err != nil {
				return err
			}
			for _, e := range entries {
				if _, err := fmt.Fprintf(tw, "%s\t%d\t%s\n", e.Key, e.Version, e.Updated.UTC().Format(time.RFC3339)); err != nil {
					return err
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "also show version and last update time")
	return cmd
}
