package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found while loading, located as precisely as the
// loader can: the file, the line of the YAML node, and the field path
// (spec.data[2].file.path). Msg never contains a secret value: the loader
// only ever quotes key names, kinds and object names.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error renders "file:line: field: msg", omitting the parts that are empty.
func (e *Error) Error() string {
	var parts []string
	switch {
	case e.File != "" && e.Line > 0:
		parts = append(parts, e.File+":"+strconv.Itoa(e.Line))
	case e.File != "":
		parts = append(parts, e.File)
	case e.Line > 0:
		parts = append(parts, "line "+strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		parts = append(parts, e.Field)
	}
	if e.Msg != "" {
		parts = append(parts, e.Msg)
	}
	return strings.Join(parts, ": ")
}

// ErrorList is every problem of one load, sorted by file and line. It is
// returned as the error of Load and LoadFiles so that callers can print one
// problem per line, or inspect them (errors.As).
type ErrorList []*Error

// Error renders one error per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sort orders the list by file, then line; errors on one line keep the order
// in which they were found (document order), so output is deterministic.
func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if c := cmp.Compare(a.File, b.File); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
}
