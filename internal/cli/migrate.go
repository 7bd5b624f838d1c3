package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/config"
)

func newMigrateCommand(s Streams) *cobra.Command {
	var file, out string
	var force bool
	cmd := &cobra.Command{
		Use:   "migrate [-f FILE] [-o OUT] [--force]",
		Short: "Rewrite a config written for the older DSO schema as dso.dev/v1alpha1 objects",
		Long: `Convert a config file written for the older DSO schema (providers:, secrets:
with mappings, targets, inject and rotation) into this version's objects: one
AgentConfig, one SecretStore per provider and one SecretBinding per secret.

dso already reads such a file through the same converter, with a warning; this
command writes the result out so the warning goes away. Without -o the new file
is printed on stdout; with -o it is written to OUT (mode 0600). An existing OUT
is never replaced unless --force is given, and then the previous version is
kept as OUT.bak.

Inline credentials (tokens, keys) are never copied: the new objects read them
from environment variables, and a note on stderr says which to export. Every
setting that has no equivalent is listed on stderr too. When the file cannot be
converted, every error is listed and the exit code is 1; a file already in the
new schema is left alone (exit code 0). docs/migration.md has the mapping rules.

Without -f the config file that dso would use is converted.`,
		Example: `  dso migrate -f /etc/dso/dso.yaml
  dso migrate -f old.yaml -o /etc/dso/dso.yaml
  sudo dso migrate -o /etc/dso/dso.yaml --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := file
			if src == "" {
				path, source, err := resolveConfig(cmd)
				if err != nil {
					return err
				}
				if path == "" {
					return fmt.Errorf("no config file to migrate (%s are in use): pass -f FILE", source)
				}
				src = path
			}
			return migrate(s, src, out, force)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file to convert (default: the resolved config file)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the converted file here instead of stdout")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing OUT (the previous version is kept as OUT.bak)")
	return cmd
}

func migrate(s Streams, src, out string, force bool) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	m, errs := config.Migrate(src, data)
	for _, w := range m.Warnings {
		note(s.Err, "Warning: %s\n", w.Error())
	}
	if len(errs) > 0 {
		writeConfigErrors(s.Err, errs, nil)
		if !m.Legacy {
			return fmt.Errorf("%s cannot be read: %s", src, plural(len(errs), "error"))
		}
		return fmt.Errorf("%s cannot be converted: %s", src, plural(len(errs), "error"))
	}
	if !m.Legacy {
		note(s.Err, "%s is already in the %s schema, nothing to do\n", src, "dso.dev/v1alpha1")
		return nil
	}
	if out == "" {
		_, err := s.Out.Write(m.YAML)
		return err
	}
	backup, err := installMigration(out, m.YAML, force)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("wrote %s (%s, %s) from %s", out, plural(m.Stores, "store"), plural(m.Bindings, "binding"), src)
	if backup != "" {
		msg += fmt.Sprintf("; the previous version is kept as %s", backup)
	}
	_, err = fmt.Fprintf(s.Out, "%s\ncheck it with: dso config validate -f %s\n", msg, out)
	return err
}

// installMigration writes data to out (0600) atomically. An existing out is
// replaced only with force, after keeping it as out.bak the way
// `config edit` does; the .bak's path is returned.
func installMigration(out string, data []byte, force bool) (backup string, err error) {
	target := out
	info, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A dangling symlink: writing would replace the link itself,
		// while an existing target is replaced through it (--force).
		if li, lerr := os.Lstat(out); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			dest, _ := os.Readlink(out)
			return "", fmt.Errorf("%s is a symlink to %s, which does not exist: name the file to write", out, dest)
		}
		if dir := filepath.Dir(out); errors.Is(statErr(dir), fs.ErrNotExist) {
			return "", fmt.Errorf("cannot write %s: the directory %s does not exist", out, dir)
		}
		info = nil
	case err != nil:
		return "", fmt.Errorf("checking %s: %w", out, err)
	case info.IsDir():
		return "", fmt.Errorf("%s is a directory: name the file to write", out)
	case !force:
		return "", fmt.Errorf("%s exists: pass --force to replace it (the previous version is kept as %s.bak)", out, out)
	default:
		// Replace the file a symlink points at, as config edit does.
		if target, err = filepath.EvalSymlinks(out); err != nil {
			return "", fmt.Errorf("reading %s: %w", out, err)
		}
		prev, err := os.ReadFile(target)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", out, err)
		}
		backup = target + ".bak"
		if err := writeFileAtomic(backup, prev, info); err != nil {
			return "", fmt.Errorf("keeping the previous %s as %s: %w (nothing was changed)", out, backup, err)
		}
	}
	if err := writeFileAtomic(target, data, newFileMode(0o600)); err != nil {
		if backup != "" {
			return "", fmt.Errorf("writing %s: %w (the previous version is in %s)", out, err, backup)
		}
		return "", fmt.Errorf("writing %s: %w", out, err)
	}
	return backup, nil
}

func statErr(p string) error {
	_, err := os.Stat(p)
	return err
}

// newFileMode is the fs.FileInfo writeFileAtomic takes the mode (and, where
// it has one, the owner) of: for a file that is new, a mode and no owner,
// so the file belongs to whoever runs the command.
type newFileMode fs.FileMode

func (m newFileMode) Name() string       { return "" }
func (m newFileMode) Size() int64        { return 0 }
func (m newFileMode) Mode() fs.FileMode  { return fs.FileMode(m) }
func (m newFileMode) ModTime() time.Time { return time.Time{} }
func (m newFileMode) IsDir() bool        { return false }
func (m newFileMode) Sys() any           { return nil }
