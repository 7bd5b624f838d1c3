// Package config loads dso's YAML declarations: one AgentConfig and any
// number of SecretStore and SecretBinding documents per file, plus the files
// of the bindings folders. Loading is strict — unknown fields, wrong types,
// duplicate names and invalid values are errors naming file, line and field
// path — and reports every error of a file at once.
//
// The CLI and the agent both resolve the config file the same way (Resolve)
// and load it with Load, so there is one schema in memory.
package config

import (
	"github.com/dso-dev/dso/api/v1alpha1"
)

// Bundle is everything loaded from a config file and its bindings folders,
// after defaulting and validation.
type Bundle struct {
	// Path is the config file that was loaded ("" when none exists and the
	// built-in defaults are used).
	Path string
	// Agent is the AgentConfig with defaults applied.
	Agent v1alpha1.AgentConfig
	// Stores and Bindings in file order (config file first, then each bindings
	// folder in order, files sorted by name).
	Stores   []v1alpha1.SecretStore
	Bindings []v1alpha1.SecretBinding
	// Origins maps "kind/name" (e.g. "secretbinding/api-db") to "file:line"
	// of the document that declared it.
	Origins map[string]string
	// Warnings are notes that did not stop loading, in file order: a file
	// written for the older DSO schema is converted in memory, and says so
	// here (with how to rewrite it) together with what its conversion did
	// not carry over. The CLI prints them on stderr, the agent logs them.
	Warnings []*Error
}
