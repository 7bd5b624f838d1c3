//go:build e2e

package e2e

import (
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

func networkListOptions(f filters.Args) network.ListOptions { return network.ListOptions{Filters: f} }
