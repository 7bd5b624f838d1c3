package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/providers/local"
)

func newInitCommand(s Streams) *cobra.Command {
	var path string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the local encrypted secret store",
		Long: `Create an empty local encrypted store and its key.

Without --path the store is the config's local store when the config declares
exactly one, else ~/.dso/vault.enc. The key file (mode 0600) is written beside
it as <path>.key unless the config names another: back it up, without it the
secrets cannot be decrypted. An existing store or key is never replaced
unless --force is given.`,
		Example: `  dso init
  sudo dso init --path /var/lib/dso/vault.enc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := localStoreTarget{Name: local.DefaultName, Path: path, KeyFile: local.DefaultKeyFile(path)}
			if path == "" {
				var err error
				if t, err = resolveLocalStore(cmd, "", true); err != nil {
					return err
				}
				if len(t.Skipped) > 0 {
					note(s.Err, "Note: using %s (%s); pass --path to create one of those instead.\n", t.From, strings.Join(t.Skipped, ", "))
				}
			}
			st, err := local.Init(t.Path, t.KeyFile, force, local.WithName(t.Name))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.Out, "Created an empty local store:\n  store:    %s\n  key file: %s (back it up: without it the secrets cannot be decrypted)\n  lock:     %s\n"+
				"Add a secret with: printf '%%s' \"$VALUE\" | dso secret set myapp/db_password\n",
				st.Path(), st.KeyFile(), st.LockFile())
			return err
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "store file to create (default: the config's local store, else ~/.dso/vault.enc)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing store and key (the old secrets become unreadable)")
	return cmd
}
