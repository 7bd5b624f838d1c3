// Package all assembles the registry of every provider compiled into dso.
//
// The provider packages do not register themselves from init functions:
// an explicit list here keeps the set visible in one place, lets tests build
// registries with only some providers, and avoids import-order surprises. The
// agent, `doctor` and `config validate` all call Registry, so a store that
// validates in the CLI is one the agent can open.
package all

import (
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/aws"
	"github.com/dso-dev/dso/providers/azure"
	"github.com/dso-dev/dso/providers/env"
	"github.com/dso-dev/dso/providers/file"
	"github.com/dso-dev/dso/providers/local"
	"github.com/dso-dev/dso/providers/vault"
)

// Registry returns a new registry holding local, vault, aws, azure, file and
// env. Each call returns a fresh registry (they hold no connections).
func Registry() *providers.Registry {
	r := providers.NewRegistry()
	r.MustRegister(local.New())
	r.MustRegister(vault.New())
	r.MustRegister(aws.Provider{})
	r.MustRegister(azure.Provider{})
	r.MustRegister(file.Provider{})
	r.MustRegister(env.Provider{})
	return r
}
