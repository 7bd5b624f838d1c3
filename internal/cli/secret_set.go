package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dso-dev/dso/providers"
)

// errValueInArgv is deliberately generic: it must not repeat the argument,
// which is the value the user tried to pass.
var errValueInArgv = errors.New("secret set takes only KEY: a value on the command line ends up in shell history and in the process list of every user on the host; pipe it on stdin (printf '%s' \"$VALUE\" | dso secret set KEY) or run the command in a terminal to be prompted")

func newSecretSetCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "set KEY",
		Short: "Set a secret from a hidden prompt or from stdin",
		Long: `Set a secret in the local store.

In a terminal the value is asked for twice without echo. Otherwise all of
stdin is the value, byte for byte: nothing is trimmed, so a trailing newline
is kept if you send one, and binary values work. The value is never taken
from the command line.`,
		Example: `  dso secret set myapp/db_password
  printf '%s' "$DB_PASSWORD" | dso secret set myapp/db_password
  dso secret set myapp/tls.pem < server.pem`,
		// Checked in RunE, not with cobra.ExactArgs, so that the error for a
		// second argument explains why and never echoes it.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return errors.New("secret set needs the KEY to set, e.g. `dso secret set myapp/db_password`")
			case len(args) > 1:
				return errValueInArgv
			}
			key := args[0]
			// Refuse a bad key before asking for the value.
			if err := providers.ValidateRef("local", providers.Ref{Key: key}); err != nil {
				return err
			}
			st, err := openLocalStore(cmd)
			if err != nil {
				return err
			}
			value, err := readSecretValue(s, key)
			if err != nil {
				return err
			}
			defer clear(value)
			e, err := st.Set(key, value)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.Out, "set %q (version %d, %d bytes) in %s\n", key, e.Version, len(value), st.Path())
			return err
		},
	}
}

// readSecretValue reads the value from a hidden terminal prompt (asked twice)
// when stdin is a terminal, else all of stdin.
func readSecretValue(s Streams, key string) ([]byte, error) {
	if f, ok := s.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptSecretValue(s, int(f.Fd()), key)
	}
	v, err := io.ReadAll(io.LimitReader(s.In, providers.MaxValueSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the value of %q from stdin: %w", key, err)
	}
	if len(v) > providers.MaxValueSize {
		clear(v)
		return nil, fmt.Errorf("the value on stdin is over the 1 MiB limit for secrets: store large files elsewhere and keep only their key here")
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("stdin was empty, so there is no value to set for %q: pipe the value in, or run the command in a terminal to be prompted", key)
	}
	return v, nil
}

func promptSecretValue(s Streams, fd int, key string) ([]byte, error) {
	note(s.Err, "Value for %s: ", key)
	first, err := term.ReadPassword(fd)
	note(s.Err, "\n")
	if err != nil {
		return nil, fmt.Errorf("read the value from the terminal: %w", err)
	}
	note(s.Err, "Repeat the value: ")
	second, err := term.ReadPassword(fd)
	note(s.Err, "\n")
	defer clear(second)
	if err != nil {
		clear(first)
		return nil, fmt.Errorf("read the value from the terminal: %w", err)
	}
	if !bytes.Equal(first, second) {
		clear(first)
		return nil, errors.New("the two values typed do not match: nothing was changed, run the command again")
	}
	if len(first) == 0 {
		return nil, fmt.Errorf("the value typed for %q is empty: nothing was changed", key)
	}
	return first, nil
}
