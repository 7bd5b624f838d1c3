// Package cli implements the `dso` / `docker dso` command tree: one file per
// command (docker/cli style), all output through the injected Streams so
// tests can capture it.
package cli

import (
	"fmt"
	"io"
	"os"
)

// Streams are the command tree's input and outputs.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// StdStreams returns the process's standard streams.
func StdStreams() Streams { return Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// note writes a diagnostic (a warning, a prompt, the final "Error: ..." line)
// to w. It is best effort by design: when the stream for diagnostics itself
// fails there is nowhere left to report that, and failing a command over it
// would hide the outcome the user asked for. Output that is the command's
// result (listings, confirmations, data) is written with its error checked.
func note(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
