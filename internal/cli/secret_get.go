package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newSecretGetCommand(s Streams) *cobra.Command {
	var output string
	var force bool
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a secret's exact bytes, or write them to a 0600 file",
		Long: `Print a secret of the local store: its exact bytes go to stdout, with no
newline added. With --output the value is written to a new file of mode 0600
instead; an existing file is replaced only with --force.`,
		Example: `  dso secret get myapp/db_password
  dso secret get myapp/tls.pem --output ./tls.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore(cmd)
			if err != nil {
				return err
			}
			e, err := st.Get(args[0])
			if err != nil {
				return err
			}
			defer clear(e.Value)
			if output == "" {
				_, err := s.Out.Write(e.Value)
				return err
			}
			if err := writePrivateFile(output, e.Value, force); err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.Out, "wrote %q (version %d, %d bytes) to %s\n", e.Key, e.Version, len(e.Value), output)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the value to this file (created with mode 0600) instead of stdout")
	cmd.Flags().BoolVar(&force, "force", false, "replace the --output file if it exists")
	return cmd
}

// writePrivateFile writes data to a file only the owner can read. Without
// force it creates the file exclusively, so an existing file (or a symlink
// planted in its place) is never followed or overwritten. With force it
// writes a temp file and renames it over path, so the result is 0600 even
// when the old file was world-readable (O_TRUNC would keep the old mode).
func writePrivateFile(path string, data []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: refusing to overwrite it; pass --force to replace it", path)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		if _, err := f.Write(data); err != nil {
			// Best effort: a partly written secret file must not stay,
			// and the write error is the one to report.
			_ = f.Close()
			_ = os.Remove(path)
			return fmt.Errorf("write %s: %w", path, err)
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	// No-op after a successful rename; on failure the error returned below
	// is the one to report, so the removal is best effort.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
