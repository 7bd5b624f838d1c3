package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/version"
)

// PluginName is the name the docker CLI knows this plugin by: the binary is
// installed as docker-dso and answers `docker dso ...`.
const PluginName = "dso"

// MetadataSubcommand is the subcommand every docker CLI plugin must answer
// with its metadata JSON (and nothing else on stdout).
const MetadataSubcommand = "docker-cli-plugin-metadata"

// originalCLICommandEnv is set by the docker CLI in the environment of every
// plugin it runs. Its presence is how a binary not named docker-* (a copy,
// a symlink) still knows docker started it.
const originalCLICommandEnv = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"

// PluginMetadata is the JSON object of the docker CLI plugin protocol.
// Field names are the protocol's; do not rename them.
type PluginMetadata struct {
	SchemaVersion    string
	Vendor           string
	Version          string
	ShortDescription string
	URL              string
}

// Metadata returns this binary's plugin metadata.
func Metadata() PluginMetadata {
	return PluginMetadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "dso",
		Version:          version.Get().Version,
		ShortDescription: rootShort,
		URL:              "https://github.com/dso-dev/dso",
	}
}

// invocation is what parseInvocation learned from the process arguments.
type invocation struct {
	metadata bool     // answer docker-cli-plugin-metadata and stop
	plugin   bool     // run as `docker dso`
	args     []string // arguments for the command tree
}

// dockerGlobalFlagsWithValue are the docker CLI's global options that take a
// separate value. The docker CLI passes its own global options to a plugin
// before the plugin name (`docker --context x dso version` runs
// `docker-dso --context x dso version`), so they must be skipped, value
// included, to find where dso's own arguments begin. A value may itself be
// "dso" (`--context dso`), which is why a plain search for "dso" is wrong.
var dockerGlobalFlagsWithValue = map[string]bool{
	"--config": true, "-c": true, "--context": true, "-H": true, "--host": true,
	"-l": true, "--log-level": true, "--tlscacert": true, "--tlscert": true, "--tlskey": true,
}

// parseInvocation decides how the binary was called. argv0 is os.Args[0],
// args is os.Args[1:].
//
//   - `docker-dso docker-cli-plugin-metadata`: print the metadata.
//   - `docker-dso [docker global options] dso <args>`: the docker CLI running
//     the plugin. Docker's global options were already applied by docker
//     (DOCKER_HOST and friends reach us through the environment) and are
//     dropped here: in particular docker's --config is its own config
//     directory, not dso's --config.
//   - `docker-dso __complete dso <args>`: the docker CLI asking the plugin for
//     shell completions; the plugin name is removed the same way.
//   - anything else, including `dso <args>` and `docker-dso <args>` run by
//     hand: the plain command tree.
func parseInvocation(argv0 string, args []string, getenv func(string) string) invocation {
	if len(args) > 0 && args[0] == MetadataSubcommand {
		return invocation{metadata: true}
	}
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	mayBePlugin := base == "docker-"+PluginName || getenv(originalCLICommandEnv) != ""
	if !mayBePlugin || len(args) == 0 {
		return invocation{args: args}
	}
	if (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) &&
		len(args) > 1 && args[1] == PluginName {
		return invocation{plugin: true, args: append([]string{args[0]}, args[2:]...)}
	}
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		if dockerGlobalFlagsWithValue[args[i]] {
			i++ // the flag's value
		}
		i++
	}
	if i < len(args) && args[i] == PluginName {
		return invocation{plugin: true, args: args[i+1:]}
	}
	return invocation{args: args}
}

// Main runs the binary: argv is os.Args, getenv is os.Getenv (injected so
// tests control the environment). It returns the process exit code: 0 on
// success, 1 on any error, which is printed once to s.Err as "Error: <msg>".
func Main(argv []string, s Streams, getenv func(string) string) int {
	var argv0 string
	var args []string
	if len(argv) > 0 {
		argv0, args = argv[0], argv[1:]
	}
	inv := parseInvocation(argv0, args, getenv)
	if inv.metadata {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "     ")
		if err := enc.Encode(Metadata()); err != nil {
			note(s.Err, "Error: writing plugin metadata: %v\n", err)
			return 1
		}
		return 0
	}
	root := NewRootCommand(s)
	if inv.plugin {
		asDockerPlugin(root)
	}
	root.SetArgs(inv.args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		note(s.Err, "Error: %v\n", err)
		return 1
	}
	return 0
}

// asDockerPlugin makes help and usage read "docker dso ..." instead of
// "dso ...", including the examples, which are written with a leading
// "  dso " on each line.
func asDockerPlugin(root *cobra.Command) {
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations[cobra.CommandDisplayNameAnnotation] = "docker " + PluginName
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example != "" {
			lines := strings.Split(c.Example, "\n")
			for i, l := range lines {
				if t := strings.TrimLeft(l, " "); strings.HasPrefix(t, PluginName+" ") {
					lines[i] = l[:len(l)-len(t)] + "docker " + t
				}
			}
			c.Example = strings.Join(lines, "\n")
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
