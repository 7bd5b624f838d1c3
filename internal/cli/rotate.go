package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/api"
)

func newRotateCommand(s Streams) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "rotate BINDING",
		Short: "Fetch a binding's secrets now and roll out its containers",
		Long: `Force the agent to fetch BINDING's secrets from its store (bypassing the
cache) and to roll out every container it targets whose secret hash changed.

Without --wait the command returns once the targets are queued. With --wait
it prints each target's progress until the rotation is done: the trace id to
look for in 'dso system logs', then succeeded with its duration, or failed
with the reason. The exit status is 1 when a target failed.`,
		Example: `  dso rotate api-db
  dso rotate api-db --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			// A rollout with health gates can take minutes: --wait is
			// bounded by Ctrl-C, not by a timeout of ours.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !wait {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, agentTimeout)
				defer cancel()
			}
			p := newRotatePrinter(s.Out)
			err = t.client.Rotate(ctx, args[0], wait, p.line)
			if p.err != nil {
				return p.err
			}
			if err != nil {
				return notFoundHint(wrapAgentErr(err, "rotating "+args[0]), "bindings")
			}
			if len(p.failed) > 0 {
				return fmt.Errorf("rotation of %s failed for %s (%s): see 'dso history %s'",
					args[0], plural(len(p.failed), "target"), strings.Join(p.failed, ", "), args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait and show progress until every target is rotated or failed")
	return cmd
}

// rotatePrinter prints the rotate stream one line per event, as it comes:
// `api-1  rotating  trace=…`, then `api-1  succeeded (1.2s)`.
type rotatePrinter struct {
	w       io.Writer
	started map[string]time.Time
	failed  []string
	err     error
}

func newRotatePrinter(w io.Writer) *rotatePrinter {
	return &rotatePrinter{w: w, started: map[string]time.Time{}}
}

func (p *rotatePrinter) line(ev api.RotateProgress) {
	if p.err != nil {
		return
	}
	var line string
	switch ev.Phase {
	case "done":
		line = "done"
		if ev.Message != "" {
			line += ": " + ev.Message
		}
	case "rotating":
		p.started[ev.Target] = ev.Time
		line = ev.Target + "  rotating"
		if ev.TraceID != "" {
			line += "  trace=" + ev.TraceID
		}
	case "succeeded", "failed":
		line = ev.Target + "  " + ev.Phase
		if t0, ok := p.started[ev.Target]; ok && !ev.Time.IsZero() {
			line += " (" + seconds(ev.Time.Sub(t0)) + ")"
		}
		if ev.Phase == "failed" {
			p.failed = append(p.failed, ev.Target)
			if ev.TraceID != "" {
				line += "  trace=" + ev.TraceID
			}
		}
		if ev.Message != "" {
			line += ": " + ev.Message
		}
	default: // queued, unchanged, and phases added later
		line = orDash(ev.Target) + "  " + ev.Phase
		if ev.Message != "" {
			line += ": " + ev.Message
		}
	}
	_, p.err = fmt.Fprintln(p.w, line)
}
