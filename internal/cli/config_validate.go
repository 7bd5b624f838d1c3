package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/config"
)

func newConfigValidateCommand(s Streams) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate [-f FILE]...",
		Short: "Check configuration files and list every error",
		Long: `Check configuration files strictly (unknown fields, wrong types, duplicate
names, invalid values) and list every error as "file:line: field: message".

Without -f the config file that dso would use is checked, together with its
bindings folders. With -f, exactly the given files are checked, as one set
(a binding may use a store declared in another of the files).

The exit code is 0 when the configuration is valid and 1 otherwise.`,
		Example: `  dso config validate
  dso config validate -f /etc/dso/dso.yaml -f ./bindings.d/api.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				b      *config.Bundle
				err    error
				target string
			)
			if len(files) > 0 {
				target = strings.Join(files, ", ")
				b, err = config.LoadFiles(files)
			} else {
				var path, source string
				path, source, err = resolveConfig(cmd)
				if err != nil {
					return err
				}
				target = path
				if path == "" {
					target = source
				}
				b, err = config.Load(path)
			}
			if b != nil {
				for _, w := range b.Warnings {
					note(s.Err, "Warning: %s\n", w.Error())
				}
			}
			if err != nil {
				errs := configErrors(err)
				if errs == nil {
					return fmt.Errorf("loading %s: %w", target, err)
				}
				writeConfigErrors(s.Err, errs, nil)
				return fmt.Errorf("configuration is invalid: %s", plural(len(errs), "error"))
			}
			_, err = fmt.Fprintf(s.Out, "configuration is valid: %s, %s (%s)\n",
				plural(len(b.Stores), "store"), plural(len(b.Bindings), "binding"), strings.Join(bundleFiles(b, files), ", "))
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "file to check instead of the resolved config file (repeatable)")
	return cmd
}

// writeConfigErrors prints one error per line. rename maps a file name in
// an error to the name the user knows (config edit validates a temporary
// copy but reports the original's name).
func writeConfigErrors(w io.Writer, errs []*config.Error, rename map[string]string) {
	for _, e := range errs {
		c := *e
		if n, ok := rename[c.File]; ok {
			c.File = n
		}
		note(w, "%s\n", c.Error())
	}
}

// bundleFiles lists the files a bundle was read from, in order: the files
// asked for (or the config file), then any other file an object came from
// (bindings folders).
func bundleFiles(b *config.Bundle, asked []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, f := range asked {
		add(f)
	}
	add(b.Path)
	var origins []string
	for _, o := range b.Origins {
		origins = append(origins, originFile(o))
	}
	// Origins is a map: sort for a stable listing.
	sort.Strings(origins)
	for _, f := range origins {
		add(f)
	}
	if len(out) == 0 {
		return []string{"built-in defaults"}
	}
	return out
}

// originFile strips the ":line" from a "file:line" origin.
func originFile(origin string) string {
	if i := strings.LastIndexByte(origin, ':'); i > 0 {
		return origin[:i]
	}
	return origin
}
