package sources

import (
	"github.com/dso-dev/dso/internal/docker"
	dockerfake "github.com/dso-dev/dso/internal/docker/fake"
)

// The lead's Docker adapter and its fake must keep satisfying DockerEngine.
var (
	_ DockerEngine = docker.Engine(nil)
	_ DockerEngine = (*dockerfake.Engine)(nil)
)
