package cli

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
)

// describeRotations and describeEvents bound the history shown by describe;
// `history` has the rest.
const (
	describeRotations = 5
	describeEvents    = 10
)

func newDescribeCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "describe binding NAME",
		Short: "Show one binding in detail: spec, conditions, targets, rotations, events",
		Long: `Show one binding in detail: a summary of its spec (store, selector, each item
as key/property -> env NAME or file PATH with its mode, rotation strategy),
its conditions, the containers it targets with their secret hash (first 12
characters) and phase, its last rotations and its recent events.

Hashes are HMACs of the delivered values; no value is ever shown.`,
		Example: `  dso describe binding api-db`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			coll, _, err := objectKind(args[0])
			if err != nil {
				return err
			}
			if coll != "bindings" {
				return fmt.Errorf("describe shows bindings; for stores use 'dso get stores %s -o yaml'", args[1])
			}
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			b, err := t.client.Binding(ctx, args[1])
			if err != nil {
				return notFoundHint(err, "bindings")
			}
			return writeBindingDescription(s.Out, b)
		},
	}
}

func writeBindingDescription(w io.Writer, b api.BindingView) error {
	var out bytes.Buffer
	spec := b.Spec
	kv := newTable(&out)
	kv.row("Name:", b.Name)
	kv.row("Source:", orDash(b.Source))
	created := "-"
	if !b.Created.IsZero() {
		created = b.Created.UTC().Format(time.RFC3339) + " (" + ago(b.Created) + ")"
	}
	kv.row("Created:", created)
	kv.row("Store:", spec.StoreRef.Name)
	kv.row("Selector:", describeSelector(spec.Target.Selector))
	strategy := orDash(string(spec.Rotation.Strategy))
	if spec.Rotation.Strategy == v1alpha1.RotationSignal && spec.Rotation.Signal != "" {
		strategy += " (" + spec.Rotation.Signal + ")"
	}
	if spec.Rotation.HealthTimeout != nil {
		strategy += ", health timeout " + spec.Rotation.HealthTimeout.String()
	}
	kv.row("Strategy:", strategy)
	refresh := "-"
	if spec.RefreshInterval != nil {
		refresh = spec.RefreshInterval.String()
	}
	kv.row("Refresh:", refresh)
	kv.row("Last sync:", timeOrNever(b.Status.LastSyncTime))
	kv.row("Next sync:", timeOrNever(b.Status.NextSyncTime))
	if err := kv.flush(); err != nil {
		return err
	}

	out.WriteString("Items:\n")
	if len(spec.Data) == 0 && len(spec.DataFrom) == 0 {
		out.WriteString("  <none>\n")
	}
	items := newTable(&out)
	for _, d := range spec.Data {
		src := refString(d.RemoteRef)
		switch {
		case d.File != nil:
			mode := d.File.Mode
			if mode == "" {
				mode = v1alpha1.DefaultFileMode
			}
			items.row("  "+src, "->", "file "+d.File.Path, "mode "+mode)
		default:
			items.row("  "+src, "->", "env "+d.Env)
		}
	}
	for _, d := range spec.DataFrom {
		dst := "env " + d.Prefix + "*"
		if d.Dir != "" {
			dst = "files " + strings.TrimSuffix(d.Dir, "/") + "/*"
		}
		items.row("  "+refString(d.RemoteRef)+" (all fields)", "->", dst)
	}
	if err := items.flush(); err != nil {
		return err
	}

	out.WriteString("Conditions:\n")
	if len(b.Status.Conditions) == 0 {
		out.WriteString("  <none>\n")
	} else {
		t := newTable(&out, "  TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
		for _, c := range b.Status.Conditions {
			t.row("  "+c.Type, string(c.Status), orDash(c.Reason), age(c.LastTransitionTime.Time), orDash(c.Message))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	out.WriteString("Targets:\n")
	if len(b.Status.Targets) == 0 {
		if sw := spec.Target.Selector.Swarm; sw != nil {
			out.WriteString("  <none>: Swarm service " + sw.Service + " not found, or this engine is not a Swarm manager (see Conditions)\n")
		} else {
			out.WriteString("  <none>: no running container matches the selector\n")
		}
	} else {
		header := "  CONTAINER"
		for _, tg := range b.Status.Targets {
			if tg.Service != "" {
				header = "  TARGET"
			}
		}
		t := newTable(&out, header, "HASH", "PHASE", "LAST ROTATION")
		for _, tg := range b.Status.Targets {
			last := "never"
			if tg.LastRotation != nil {
				last = ago(tg.LastRotation.Time)
			}
			name := tg.Container
			if tg.Service != "" {
				name = "service/" + tg.Service // a Swarm service, not a container
			}
			t.row("  "+name, shortHash(tg.Hash), orDash(tg.Phase), last)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	out.WriteString("Last rotations:\n")
	rots := append([]api.Rotation(nil), b.Rotations...)
	sort.SliceStable(rots, func(i, j int) bool { return rots[i].Started.After(rots[j].Started) })
	if len(rots) > describeRotations {
		rots = rots[:describeRotations]
	}
	if len(rots) == 0 {
		out.WriteString("  <none>\n")
	} else {
		t := newTable(&out, "  TIME", "TRACE", "TARGET", "STRATEGY", "RESULT", "DURATION")
		for _, r := range rots {
			t.row("  "+r.Started.UTC().Format(time.RFC3339), r.TraceID, r.Target, orDash(r.Strategy), orDash(r.Result), rotationDuration(r))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	out.WriteString("Events:\n")
	evs := append([]api.Event(nil), b.Events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	if len(evs) > describeEvents {
		evs = evs[len(evs)-describeEvents:]
	}
	if len(evs) == 0 {
		out.WriteString("  <none>\n")
	} else {
		t := newTable(&out, "  TYPE", "REASON", "AGE", "TARGET", "MESSAGE")
		for _, e := range evs {
			t.row("  "+orDash(e.Type), orDash(e.Reason), age(e.Time), orDash(e.Target), e.Message)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// describeSelector says in one line which containers a selector picks.
func describeSelector(sel v1alpha1.Selector) string {
	var parts []string
	if len(sel.Containers) > 0 {
		parts = append(parts, "containers "+strings.Join(sel.Containers, ","))
	}
	if c := sel.Compose; c != nil {
		p := "compose project " + c.Project
		if c.Service != "" {
			p += " service " + c.Service
		}
		parts = append(parts, p)
	}
	if len(sel.Labels) > 0 {
		keys := make([]string, 0, len(sel.Labels))
		for k := range sel.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ls []string
		for _, k := range keys {
			ls = append(ls, k+"="+sel.Labels[k])
		}
		parts = append(parts, "labels "+strings.Join(ls, ","))
	}
	if sw := sel.Swarm; sw != nil {
		parts = append(parts, "swarm service "+sw.Service)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " or ")
}

// refString is key, key#property or key@version.
func refString(r v1alpha1.RemoteRef) string {
	s := r.Key
	if r.Property != "" {
		s += "#" + r.Property
	}
	if r.Version != "" {
		s += "@" + r.Version
	}
	return s
}

// rotationDuration is the wall time of a finished rotation, "running" else.
func rotationDuration(r api.Rotation) string {
	if r.Finished.IsZero() {
		return "running"
	}
	return seconds(r.Finished.Sub(r.Started))
}
