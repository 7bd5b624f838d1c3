package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dso-dev/dso/internal/config"
)

func newConfigEditCommand(s Streams) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "edit",
		Short: "Edit the config file, validating it before it is installed",
		Long: `Open the config file in $VISUAL, else $EDITOR, else vi, and validate the
result when the editor exits.

The editor works on a temporary copy beside the file. A valid result replaces
the file atomically and the previous version is kept as <file>.bak. An invalid
result is never installed: on a terminal you are asked whether to edit again,
otherwise the original stays untouched and the exit code is 1. --force
installs an invalid result anyway (and still keeps the .bak).`,
		Example: `  sudo dso config edit
  EDITOR="code --wait" dso config edit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, source, err := resolveConfig(cmd)
			if err != nil {
				return err
			}
			if path == "" {
				return fmt.Errorf("no config file to edit (%s are in use): create /etc/dso/dso.yaml or pass --config FILE", source)
			}
			return editConfig(s, path, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "install the edited file even when it is invalid")
	return cmd
}

// editConfig runs the edit/validate/install loop on the file at path.
func editConfig(s Streams, path string, force bool) error {
	// Edit the file a symlink points at (a config kept in a git checkout,
	// say): renaming onto the link would replace the link with a file.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("reading config file %s: %w", path, err)
	}
	orig, err := os.ReadFile(real)
	if err != nil {
		return fmt.Errorf("reading config file %s: %w", path, err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("reading config file %s: %w", path, err)
	}
	editor, err := editorCommand(os.Getenv)
	if err != nil {
		return err
	}

	// The copy lives in the same directory so that the final rename is
	// atomic (same filesystem) and relative paths in it resolve the same. Its
	// name starts with a dot and does not end in .yaml, so that nothing that
	// watches the directory for *.yaml files picks it up. CreateTemp makes it
	// 0600: the config may be readable by root only.
	dir, base := filepath.Split(real)
	tmp, err := os.CreateTemp(dir, "."+base+".edit-*")
	if err != nil {
		return fmt.Errorf("creating a temporary copy next to %s (is the directory writable? try sudo): %w", real, err)
	}
	tmpPath := tmp.Name()
	installed := false
	defer func() {
		if !installed {
			// Best effort: the copy is a dot file the watchers ignore,
			// and the error worth reporting is the one being returned.
			_ = os.Remove(tmpPath)
		}
	}()
	if _, err := tmp.Write(orig); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("writing temporary copy %s: %w", tmpPath, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing temporary copy %s: %w", tmpPath, err)
	}

	interactive := stdinIsTerminal(s.In)
	answers := bufio.NewReader(s.In)
	for {
		if err := runEditor(s, editor, tmpPath); err != nil {
			return err
		}
		edited, err := os.ReadFile(tmpPath)
		if err != nil {
			return fmt.Errorf("reading the edited copy %s: %w", tmpPath, err)
		}
		if bytes.Equal(edited, orig) {
			_, err := fmt.Fprintln(s.Out, "no changes")
			return err
		}
		_, lerr := config.Load(tmpPath)
		if lerr == nil {
			break
		}
		errs := configErrors(lerr)
		if errs == nil {
			note(s.Err, "%s: %v\n", real, lerr)
		}
		writeConfigErrors(s.Err, errs, map[string]string{tmpPath: real})
		if force {
			note(s.Err, "warning: installing an invalid configuration because of --force\n")
			break
		}
		if !interactive {
			return fmt.Errorf("the edited configuration is invalid; %s was left unchanged (fix the errors above, or use --force to install it anyway)", real)
		}
		note(s.Out, "re-edit? [Y/n] ")
		line, rerr := answers.ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a == "n" || a == "no" || (rerr != nil && a == "") {
			return fmt.Errorf("the edited configuration is invalid; %s was left unchanged", real)
		}
	}

	backup := real + ".bak"
	if err := writeFileAtomic(backup, orig, info); err != nil {
		return fmt.Errorf("keeping the previous config as %s: %w (the config was not changed)", backup, err)
	}
	if err := installFile(tmpPath, real, info); err != nil {
		return fmt.Errorf("installing the edited config as %s: %w (the previous version is in %s)", real, err, backup)
	}
	installed = true
	_, err = fmt.Fprintf(s.Out, "%s updated (previous version kept as %s)\n", real, backup)
	return err
}

// editorCommand returns the editor argv: $VISUAL, else $EDITOR, else vi.
// The variables may hold arguments ("code --wait").
func editorCommand(getenv func(string) string) ([]string, error) {
	for _, name := range []string{"VISUAL", "EDITOR"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			words, err := splitWords(v)
			if err != nil {
				return nil, fmt.Errorf("reading $%s: %w", name, err)
			}
			if len(words) > 0 {
				return words, nil
			}
		}
	}
	return []string{"vi"}, nil
}

// splitWords splits a command line like a shell does for plain words:
// blanks separate words, single quotes keep everything literal, double
// quotes keep blanks, a backslash escapes the next character. There is no
// expansion of any kind. That covers editor settings such as
// `code --wait` or `"/opt/My Editor/bin/edit" -w`.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if escaped {
		return nil, fmt.Errorf("trailing backslash in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// runEditor runs the editor on file, attached to the command's streams.
func runEditor(s Streams, editor []string, file string) error {
	c := exec.Command(editor[0], append(editor[1:], file)...)
	c.Stdout, c.Stderr = s.Out, s.Err
	// Only a real file (the terminal) is handed to the editor. Any other
	// reader would be copied into the editor's stdin by os/exec and so
	// swallow the answer to "re-edit?" meant for us.
	if f, ok := s.In.(*os.File); ok {
		c.Stdin = f
	}
	// Ctrl-C in the editor reaches the whole foreground process group; dso
	// must survive it (as git does) so the temporary copy is cleaned up and
	// the editor decides what Ctrl-C means.
	signal.Ignore(os.Interrupt, syscall.SIGQUIT)
	defer signal.Reset(os.Interrupt, syscall.SIGQUIT)
	if err := c.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("editor %q exited with %v; the config file was not changed", editor[0], exitErr.ProcessState)
		}
		return fmt.Errorf("starting editor %q: %w (set $VISUAL or $EDITOR)", editor[0], err)
	}
	return nil
}

// stdinIsTerminal decides whether to ask "re-edit?"; tests replace it
// because they cannot give the command a terminal.
var stdinIsTerminal = isTerminal

func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// installFile renames src onto dst with dst's previous mode and, where
// permitted, owner (a root:dso 0640 file stays so after an edit).
func installFile(src, dst string, prev fs.FileInfo) error {
	// Sync before the chmod: a 0400 file could not be reopened for it.
	if err := syncFile(src); err != nil {
		return err
	}
	if err := os.Chmod(src, prev.Mode().Perm()); err != nil {
		return err
	}
	copyOwner(src, prev)
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// writeFileAtomic writes data to path through a temporary file and a rename,
// so that path is never seen half written.
func writeFileAtomic(path string, data []byte, prev fs.FileInfo) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := f.Close(); werr == nil {
		werr = err
	}
	// Removing the temporary file is best effort: the error returned is
	// the one that says what went wrong.
	if werr != nil {
		_ = os.Remove(tmp)
		return werr
	}
	if err := installFile(tmp, path, prev); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// copyOwner gives path the owner of prev. Only root may do that; for anyone
// else the file keeps their ownership, which is the same as before since
// they could only edit a file in a directory they can write.
func copyOwner(path string, prev fs.FileInfo) {
	if st, ok := prev.Sys().(*syscall.Stat_t); ok {
		_ = os.Lchown(path, int(st.Uid), int(st.Gid))
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	serr := f.Sync()
	if err := f.Close(); serr == nil {
		serr = err
	}
	return serr
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	if err := d.Close(); serr == nil {
		serr = err
	}
	return serr
}
