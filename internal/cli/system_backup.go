package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newSystemBackupCommand(s Streams) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Write a consistent copy of the running agent's state store",
		Long: `Write a consistent copy of the running agent's state store (applied objects,
statuses, rotation history, recovery records, events) to FILE, while the agent
keeps running. The copy holds no secret values.

To restore: stop the agent (docker dso system disable), copy FILE over
<state.dir>/dso.db (mode 0600), start the agent (docker dso system enable).`,
		Example: `  docker dso system backup -o /backup/dso-state-$(date +%Y%m%d).db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--output FILE is required")
			}
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), ".dso-backup-*")
			if err != nil {
				return fmt.Errorf("create backup file: %w", err)
			}
			defer func() { _ = os.Remove(tmp.Name()) }()
			n, err := t.client.Backup(ctx, tmp)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return wrapAgentErr(err, "backup")
			}
			if n == 0 {
				return errors.New("backup: the agent sent an empty state store")
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			_, err = fmt.Fprintf(s.Out, "wrote %s (%d bytes)\n", out, n)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (created 0600)")
	return cmd
}
