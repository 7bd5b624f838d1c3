package cli

import (
	"bytes"
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

// watchInterval is how often `status --watch` redraws.
var watchInterval = 2 * time.Second

func newStatusCommand(s Streams) *cobra.Command {
	var watch, asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's runtime, providers, cache, queues, rotations and recovery",
		Long: `Show a snapshot of the running agent: Runtime (version, uptime, pid, config
file, Docker), Providers (health, latency min/avg/max, circuit breaker per
store), Cache (entries, bytes, hit rate; the line starting with "Cache" ends
with the cache utilisation), Queues (depth per controller), Rotations (totals
and success rate), Containers (managed, healthy, unhealthy) and Recovery.

--json prints the whole status for scripts, including .observability (recent
rotations with trace ids and step timings, provider latency, lock contention,
health-check diagnostics, circuit breakers) and .recovery; both are always
present. --watch redraws every 2 seconds until Ctrl-C.

Exits 1 when the agent is not running.`,
		Example: `  dso status
  dso status | grep -i cache
  dso status | awk '/Cache/ {print $NF}'
  dso status --json | jq '.observability'
  dso status --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			fetch := func(ctx context.Context) (api.Status, error) {
				ctx, cancel := context.WithTimeout(ctx, agentTimeout)
				defer cancel()
				return t.client.Status(ctx)
			}
			render := func(w io.Writer, st api.Status) error {
				if asJSON {
					return writeJSON(w, st)
				}
				return writeStatus(w, st)
			}
			if !watch {
				st, err := fetch(cmd.Context())
				if err != nil {
					return err
				}
				return render(s.Out, st)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return watchStatus(ctx, s.Out, isTerminal(s.Out) /* redraw only where it can be seen */, asJSON, watchInterval, fetch, render)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw every 2 seconds until Ctrl-C")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// Terminal control sequences of --watch. The alternate screen keeps the
// operator's scrollback intact; each frame goes to the home position and
// every line clears only its own rest, then everything below the frame is
// cleared: the screen is never blanked in between, so it does not flicker.
const (
	altScreenOn  = "\x1b[?1049h\x1b[?25l" // alternate screen, hide cursor
	altScreenOff = "\x1b[?25h\x1b[?1049l" // show cursor, back to the main screen
	cursorHome   = "\x1b[H"
	clearLine    = "\x1b[K"
	clearBelow   = "\x1b[J"
)

// watchStatus prints a snapshot every interval until ctx ends. An agent that
// is (or goes) down does not end the watch: the frame says so and the next
// tick tries again, as `watch docker dso status` would.
func watchStatus(ctx context.Context, w io.Writer, tty, asJSON bool, interval time.Duration,
	fetch func(context.Context) (api.Status, error), render func(io.Writer, api.Status) error) error {
	if tty {
		if _, err := io.WriteString(w, altScreenOn); err != nil {
			return err
		}
		defer func() { _, _ = io.WriteString(w, altScreenOff) }()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		var frame bytes.Buffer
		st, err := fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			fmt.Fprintf(&frame, "%s  agent unreachable: %v\n", now().UTC().Format(time.RFC3339), err)
		default:
			if err := render(&frame, st); err != nil {
				return err
			}
		}
		var out string
		switch {
		case tty:
			header := fmt.Sprintf("Every %s: dso status    %s (Ctrl-C to stop)\n\n", interval, now().Format("15:04:05"))
			text := header + frame.String()
			out = cursorHome + strings.ReplaceAll(text, "\n", clearLine+"\n") + clearBelow
		case asJSON:
			// Concatenated JSON documents: `jq` reads them one by one.
			out = frame.String()
		default:
			sep := ""
			if n > 0 {
				sep = "\n"
			}
			out = fmt.Sprintf("%s--- %s ---\n%s", sep, now().UTC().Format(time.RFC3339), frame.String())
		}
		if _, err := io.WriteString(w, out); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// writeStatus prints the human status. Section headers start in column 0;
// one-line sections carry their numbers on the header line itself so that
// `grep -i cache` finds them, and nothing but the Cache line contains the
// word "Cache": the guide's alert is `awk '/Cache/ {print $NF}'`.
func writeStatus(w io.Writer, st api.Status) error {
	var b bytes.Buffer
	r := st.Runtime
	b.WriteString("Runtime\n")
	kv := newTable(&b)
	version := orDash(r.Version)
	if r.Commit != "" || r.GoVersion != "" {
		version += " (" + strings.Trim(strings.Join([]string{r.Commit, r.GoVersion}, ", "), ", ") + ")"
	}
	kv.row("  Version:", version)
	uptime := shortDuration(time.Duration(r.UptimeSeconds * float64(time.Second)))
	if !r.StartedAt.IsZero() {
		uptime += " (since " + r.StartedAt.UTC().Format(time.RFC3339) + ")"
	}
	kv.row("  Uptime:", uptime)
	kv.row("  PID:", fmt.Sprint(r.PID))
	kv.row("  Config file:", orDash(r.ConfigFile))
	docker := "-"
	if r.DockerEngine != "" || r.DockerAPI != "" {
		docker = fmt.Sprintf("engine %s, API %s", orDash(r.DockerEngine), orDash(r.DockerAPI))
	}
	kv.row("  Docker:", docker)
	kv.row("  Ready:", yesNo(r.Ready))
	if err := kv.flush(); err != nil {
		return err
	}

	fmt.Fprintf(&b, "\nProviders: %s\n", plural(len(st.Providers), "store"))
	if len(st.Providers) > 0 {
		t := newTable(&b, "  STORE", "PROVIDER", "HEALTH", "LATENCY MIN/AVG/MAX", "CIRCUIT", "CALLS", "ERRORS")
		for _, p := range st.Providers {
			lat := fmt.Sprintf("%s/%s/%s", millis(p.LatencyMs.Min), millis(p.LatencyMs.Avg), millis(p.LatencyMs.Max))
			if p.Calls == 0 {
				lat = "-"
			}
			t.row("  "+p.Store, orDash(p.Provider), orDash(p.Health), lat, orDash(p.Circuit), fmt.Sprint(p.Calls), fmt.Sprint(p.Errors))
		}
		if err := t.flush(); err != nil {
			return err
		}
		for _, p := range st.Providers {
			if p.LastError != "" {
				fmt.Fprintf(&b, "  %s last error: %s\n", p.Store, p.LastError)
			}
		}
	}

	c := st.Cache
	fmt.Fprintf(&b, "\nCache: %s, %s of %s, hit rate %s (%d hits, %d misses), cache utilisation %s\n",
		countOf(c.Entries, "entry", "entries"), bytesIEC(c.Bytes), bytesIEC(c.MaxBytes), percent(c.HitRate), c.Hits, c.Misses, percent(c.Utilization))

	queues := make([]string, 0, len(st.Queues))
	for _, q := range st.Queues {
		queues = append(queues, fmt.Sprintf("%s %d", q.Name, q.Depth))
	}
	fmt.Fprintf(&b, "\nQueues: %s\n", orDash(strings.Join(queues, ", ")))

	ro := st.Rotations
	fmt.Fprintf(&b, "\nRotations: %d total, %d succeeded, %d failed, success rate %s, %d in progress\n",
		ro.Total, ro.Succeeded, ro.Failed, percent(ro.SuccessRate), ro.InProgress)
	lc := st.Observability.LockContention
	fmt.Fprintf(&b, "  lock wait: max %s, %d over 1s\n", millis(lc.MaxWaitMs), lc.Over1s)

	co := st.Containers
	fmt.Fprintf(&b, "\nContainers: %d managed, %d healthy, %d unhealthy, %d starting, %d without healthcheck\n",
		co.Managed, co.Healthy, co.Unhealthy, co.Starting, co.NoHealth)

	rec := st.Recovery
	last := "never"
	if rec.LastRun != nil {
		last = rec.LastRun.UTC().Format(time.RFC3339) + " (" + ago(*rec.LastRun) + ")"
	}
	fmt.Fprintf(&b, "\nRecovery: last run %s, %s, %d incomplete found, %s\n",
		last, countOf(rec.Passes, "pass", "passes"), len(rec.IncompleteFound), plural(len(rec.Actions), "action"))
	for _, a := range rec.Actions {
		line := fmt.Sprintf("  %s  %s  %s", a.Time.UTC().Format(time.RFC3339), a.Target, a.Action)
		if a.Detail != "" {
			line += ": " + a.Detail
		}
		if a.Error != "" {
			line += " (error: " + a.Error + ")"
		}
		b.WriteString(line + "\n")
	}
	for _, e := range rec.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}
