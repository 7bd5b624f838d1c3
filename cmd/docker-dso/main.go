// Command docker-dso is dso's only binary. Installed as
// ~/.docker/cli-plugins/docker-dso it is the `docker dso` CLI plugin;
// installed (or linked) as dso it is the plain `dso` command. Both run the
// same command tree from internal/cli.
package main

import (
	"os"

	"github.com/dso-dev/dso/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, cli.StdStreams(), os.Getenv))
}
