package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
)

// objectKind maps what an operator types (kubectl accepts singular, plural
// and the full kind) to the agent's collection.
func objectKind(word string) (collection, kind string, err error) {
	switch strings.ToLower(word) {
	case "store", "stores", "secretstore", "secretstores":
		return "stores", "secretstore", nil
	case "binding", "bindings", "secretbinding", "secretbindings":
		return "bindings", "secretbinding", nil
	}
	return "", "", fmt.Errorf("unknown object type %q: use stores or bindings", word)
}

func newGetCommand(s Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get stores|bindings [NAME]",
		Short: "List secret stores or bindings as the agent sees them",
		Long: `List the agent's secret stores or bindings (or one of them, by NAME) as a
table: NAME PROVIDER STATUS READY LAST SYNC AGE for stores, NAME STORE
TARGETS STATUS READY LAST SYNC AGE for bindings. -o wide adds where each
object was declared (SOURCE) and, for bindings, the rotation strategy and
the remote keys; -o yaml and -o json print the full objects for scripts.`,
		Example: `  dso get bindings
  dso get stores -o wide
  dso get binding api-db -o yaml`,
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: []string{"stores", "bindings"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, "", "wide", "yaml", "json"); err != nil {
				return err
			}
			coll, _, err := objectKind(args[0])
			if err != nil {
				return err
			}
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			var view any
			var stores []api.StoreView
			var bindings []api.BindingView
			switch {
			case coll == "stores" && name != "":
				st, err := t.client.Store(ctx, name)
				if err != nil {
					return notFoundHint(err, "stores")
				}
				stores, view = []api.StoreView{st}, st
			case coll == "stores":
				if stores, err = t.client.Stores(ctx); err != nil {
					return err
				}
				view = stores
			case name != "":
				b, err := t.client.Binding(ctx, name)
				if err != nil {
					return notFoundHint(err, "bindings")
				}
				bindings, view = []api.BindingView{b}, b
			default:
				if bindings, err = t.client.Bindings(ctx); err != nil {
					return err
				}
				view = bindings
			}
			switch output {
			case "json":
				return writeJSON(s.Out, view)
			case "yaml":
				return writeYAML(s.Out, view)
			}
			if coll == "stores" {
				return writeStoresTable(s.Out, stores, output == "wide")
			}
			return writeBindingsTable(s.Out, bindings, output == "wide")
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml or json")
	return cmd
}

// notFoundHint adds what to run next to the agent's "not found" answer.
func notFoundHint(err error, coll string) error {
	if api.IsNotFound(err) {
		return fmt.Errorf("%w: list them with 'dso get %s'", err, coll)
	}
	return err
}

func writeStoresTable(w io.Writer, stores []api.StoreView, wide bool) error {
	if len(stores) == 0 {
		_, err := fmt.Fprintln(w, "No secret stores.")
		return err
	}
	header := []string{"NAME", "PROVIDER", "STATUS", "READY", "LAST SYNC", "AGE"}
	if wide {
		header = append(header, "CIRCUIT", "SOURCE")
	}
	t := newTable(w, header...)
	for _, st := range sortedStores(stores) {
		ready := findCondition(st.Status.Conditions, v1alpha1.ConditionReady)
		row := []string{st.Name, orDash(st.Provider), orDash(st.Health), conditionStatus(ready), conditionAge(ready), age(st.Created)}
		if wide {
			row = append(row, orDash(st.Circuit), orDash(st.Source))
		}
		t.row(row...)
	}
	return t.flush()
}

func writeBindingsTable(w io.Writer, bindings []api.BindingView, wide bool) error {
	if len(bindings) == 0 {
		_, err := fmt.Fprintln(w, "No secret bindings.")
		return err
	}
	header := []string{"NAME", "STORE", "TARGETS", "STATUS", "READY", "LAST SYNC", "AGE"}
	if wide {
		header = append(header, "STRATEGY", "KEYS", "SOURCE")
	}
	t := newTable(w, header...)
	sort.Slice(bindings, func(i, j int) bool { return bindings[i].Name < bindings[j].Name })
	for _, b := range bindings {
		ready := findCondition(b.Status.Conditions, v1alpha1.ConditionReady)
		last := "never"
		if b.Status.LastSyncTime != nil {
			last = age(b.Status.LastSyncTime.Time)
		}
		row := []string{b.Name, b.Spec.StoreRef.Name, fmt.Sprint(len(b.Status.Targets)), bindingStatus(b.Status), conditionStatus(ready), last, age(b.Created)}
		if wide {
			row = append(row, orDash(string(b.Spec.Rotation.Strategy)), orDash(strings.Join(remoteKeys(b.Spec), ",")), orDash(b.Source))
		}
		t.row(row...)
	}
	return t.flush()
}

func sortedStores(in []api.StoreView) []api.StoreView {
	out := append([]api.StoreView(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// bindingStatus is one word for the STATUS column: Degraded wins (a failed
// health gate is what the operator must see), then the Ready condition's
// reason, then Pending for a binding the agent has not reconciled yet.
func bindingStatus(st v1alpha1.SecretBindingStatus) string {
	if d := findCondition(st.Conditions, v1alpha1.ConditionDegraded); d != nil && d.Status == metav1.ConditionTrue {
		return "Degraded"
	}
	if r := findCondition(st.Conditions, v1alpha1.ConditionReady); r != nil && r.Reason != "" {
		return r.Reason
	}
	return "Pending"
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func conditionStatus(c *metav1.Condition) string {
	if c == nil {
		return "Unknown"
	}
	return string(c.Status)
}

func conditionAge(c *metav1.Condition) string {
	if c == nil || c.LastTransitionTime.IsZero() {
		return "never"
	}
	return age(c.LastTransitionTime.Time)
}

// remoteKeys lists the remote keys a binding reads, in spec order, each once.
func remoteKeys(spec v1alpha1.SecretBindingSpec) []string {
	var keys []string
	seen := map[string]bool{}
	add := func(r v1alpha1.RemoteRef) {
		k := r.Key
		if r.Property != "" {
			k += "#" + r.Property
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, d := range spec.Data {
		add(d.RemoteRef)
	}
	for _, d := range spec.DataFrom {
		add(d.RemoteRef)
	}
	return keys
}

// timeOrNever formats an optional time for describe.
func timeOrNever(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	rel := ago(t.Time)
	if d := t.Sub(now()); d > 0 {
		rel = "in " + shortDuration(d)
	}
	return t.UTC().Format(time.RFC3339) + " (" + rel + ")"
}
