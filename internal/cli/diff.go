package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/api"
)

func newDiffCommand(s Streams) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show what apply would change and which containers would rotate",
		Long: `Show what 'apply -f' would change, without changing anything: the agent
computes, for every object of the files, the difference between its spec and
the stored one, and which containers' secret hash would change (those would
be rotated).

Like kubectl diff, the exit status is 0 when nothing would change and 1 when
something would (or when the diff could not be computed).`,
		Example: `  dso diff -f api-db.yaml
  dso diff -f ./bindings/ && echo "in sync"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := sendObjects(cmd, s, files, true)
			if err != nil {
				return err
			}
			changed, err := writeDiff(s.Out, res)
			if err != nil {
				return err
			}
			if changed > 0 {
				return fmt.Errorf("%s would change (exit status 1, like kubectl diff)", plural(changed, "object"))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) holding the objects; repeatable")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// writeDiff prints each object that would change with the agent's diff and
// the containers that would rotate, and returns how many would change.
func writeDiff(w io.Writer, res api.ApplyResult) (int, error) {
	var out strings.Builder
	changed := 0
	for _, it := range res.Items {
		ref := objectRef(it.Kind, it.Name)
		if it.Action == "unchanged" && len(it.Rotates) == 0 {
			fmt.Fprintf(&out, "%s unchanged\n", ref)
			continue
		}
		changed++
		what := it.Action
		switch what {
		case "configured", "created":
			what = "would be " + what
		}
		fmt.Fprintf(&out, "%s %s\n", ref, what)
		if it.Diff != "" {
			d := it.Diff
			if !strings.HasSuffix(d, "\n") {
				d += "\n"
			}
			out.WriteString(d)
		}
		if len(it.Rotates) > 0 {
			fmt.Fprintf(&out, "would rotate: %s\n", strings.Join(it.Rotates, ", "))
		}
	}
	_, err := io.WriteString(w, out.String())
	return changed, err
}
