// Package cli implements the `dso` / `docker dso` command tree: one file per
// command (docker/cli style), all output through the injected Streams so
// tests can capture it.
package cli

import (
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
