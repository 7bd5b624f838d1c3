package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSecretRmCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:     "rm KEY",
		Short:   "Remove a secret from the local store",
		Example: `  dso secret rm myapp/old_token`,
		Aliases: []string{"delete"},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore(cmd)
			if err != nil {
				return err
			}
			if err := st.Delete(args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.Out, "removed %q from %s\n", args[0], st.Path())
			return err
		},
	}
}
