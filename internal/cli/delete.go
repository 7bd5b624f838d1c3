package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDeleteCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "delete binding|store NAME",
		Short: "Remove an applied binding or store from the agent",
		Long: `Remove a binding or store that was stored with 'apply'. The containers keep
running; a deleted binding's secrets are no longer delivered or rotated.

Objects declared in the config file or its bindings folders belong to those
files: the agent refuses to delete them and says which file to edit.`,
		Example: `  dso delete binding api-db
  dso delete store vault-staging`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			coll, kind, err := objectKind(args[0])
			if err != nil {
				return err
			}
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			res, err := t.client.Delete(ctx, coll, args[1])
			if err != nil {
				return notFoundHint(wrapAgentErr(err, "deleting "+kind+"/"+args[1]), coll)
			}
			if !res.Deleted {
				return fmt.Errorf("the agent did not delete %s/%s: check 'dso get %s %s'", kind, args[1], coll, args[1])
			}
			_, err = fmt.Fprintf(s.Out, "%s/%s deleted\n", kind, args[1])
			return err
		},
	}
}
