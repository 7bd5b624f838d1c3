package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/api"
)

func newHistoryCommand(s Streams) *cobra.Command {
	var limit int
	var output string
	cmd := &cobra.Command{
		Use:   "history [BINDING]",
		Short: "Show the rotation history, newest first",
		Long: `Show the rotation history kept by the agent (30 days), newest first, for
every binding or only BINDING: time, trace id, target container, strategy,
result and duration. Each failed rotation is followed by its reason and the
health-check diagnostics (exit codes and output) the agent recorded.

-o json prints the full records, including every step with its timing.`,
		Example: `  dso history
  dso history api-db -n 5
  dso history -o json | jq '.[] | select(.result == "failed")'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, "", "json"); err != nil {
				return err
			}
			if limit < 1 {
				return fmt.Errorf("-n %d: give a number of rotations of at least 1", limit)
			}
			binding := ""
			if len(args) == 1 {
				binding = args[0]
			}
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			rots, err := t.client.History(ctx, binding, limit)
			if err != nil {
				return notFoundHint(err, "bindings")
			}
			if len(rots) > limit {
				rots = rots[:limit]
			}
			if output == "json" {
				if rots == nil {
					rots = []api.Rotation{}
				}
				return writeJSON(s.Out, rots)
			}
			return writeHistory(s.Out, rots)
		},
	}
	cmd.Flags().IntVarP(&limit, "lines", "n", 20, "show at most this many rotations")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

// writeHistory prints the table, then the details of the failed rotations.
func writeHistory(w io.Writer, rots []api.Rotation) error {
	var out bytes.Buffer
	if len(rots) == 0 {
		_, err := fmt.Fprintln(w, "No rotations recorded.")
		return err
	}
	t := newTable(&out, "TIME", "TRACE", "TARGET", "STRATEGY", "RESULT", "DURATION")
	var failed []api.Rotation
	for _, r := range rots {
		result := orDash(r.Result)
		if r.Result == "" && r.Finished.IsZero() {
			result = "in-progress"
		}
		if r.Recovered {
			result += " (recovered)"
		}
		t.row(r.Started.UTC().Format(time.RFC3339), r.TraceID, r.Target, orDash(r.Strategy), result, rotationDuration(r))
		if r.Result != "" && r.Result != "succeeded" {
			failed = append(failed, r)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, r := range failed {
		fmt.Fprintf(&out, "\n%s %s %s: %s\n", r.Result, r.TraceID, r.Target, orDash(r.Reason))
		var steps []string
		for _, st := range r.Steps {
			s := st.Step + " " + seconds(st.Duration)
			if st.Error != "" {
				s += " (" + st.Error + ")"
			}
			steps = append(steps, s)
		}
		if len(steps) > 0 {
			fmt.Fprintf(&out, "  steps: %s\n", strings.Join(steps, ", "))
		}
		for _, h := range r.Health {
			fmt.Fprintf(&out, "  health %s %s exit %d: %s\n", orDash(h.Source), h.Time.UTC().Format("15:04:05"), h.ExitCode, oneLine(h.Output))
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// oneLine keeps a health-check output on its line (it is program output and
// may hold newlines), bounded so a chatty check does not flood the table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
