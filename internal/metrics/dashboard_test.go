package metrics

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dso-dev/dso/providers/cache"
)

// The Grafana dashboard (config/grafana/dso.json) is checked against this
// package's registry, so that renaming a metric or a label here cannot leave
// the dashboard silently showing "No data": every metric an expression names
// must exist (with a histogram's _bucket/_sum/_count suffixes), every label
// it matches on or aggregates by must be one of that metric's labels, and
// every dso_* metric must appear on some panel.

const dashboardPath = "../../config/grafana/dso.json"

// scrapeLabels are added by Prometheus when it scrapes, not by the agent.
var scrapeLabels = []string{"instance", "job"}

// dashboardFamilies creates at least one series of every metric (a vector
// with no children is not gathered) and returns name -> family.
func dashboardFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	m := New()
	m.CacheHit()
	m.CacheMiss()
	m.SetCacheSize(1, 10)
	m.ProviderRequest("vault", "vault", "get", "ok", time.Millisecond)
	m.SetCircuitState("vault", cache.BreakerOpen)
	m.ObserveRotation("rolling", "succeeded", time.Second)
	m.ObserveStep("health", time.Second)
	m.ObserveSecretChangeToReady(time.Second)
	m.ObserveLockWait(time.Millisecond)
	m.RecoveryAction("finished-cutover")
	m.SetBindingCondition("api-db", ConditionDegraded, true)
	var p WorkqueueProvider
	const q = "dashboard-test"
	p.NewDepthMetric(q).Inc()
	p.NewAddsMetric(q).Inc()
	p.NewLatencyMetric(q).Observe(1)
	p.NewWorkDurationMetric(q).Observe(1)
	p.NewUnfinishedWorkSecondsMetric(q).Set(0)
	p.NewLongestRunningProcessorSecondsMetric(q).Set(0)
	p.NewRetriesMetric(q).Inc()

	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func familyLabels(mf *dto.MetricFamily) []string {
	set := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			set[l.GetName()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// The dashboard's JSON model, as far as the test needs it.
type dashPanel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *dashDS     `json:"datasource"`
	Targets    []dashQuery `json:"targets"`
	Panels     []dashPanel `json:"panels"` // a row's (collapsed) panels
}

type dashDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashQuery struct {
	Expr       string  `json:"expr"`
	Datasource *dashDS `json:"datasource"`
}

type dashboard struct {
	SchemaVersion int         `json:"schemaVersion"`
	Panels        []dashPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("reading the dashboard: %v", err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not valid JSON for a dashboard: %v", dashboardPath, err)
	}
	return d
}

// dashExpr is one PromQL expression and where it is written.
type dashExpr struct{ where, expr string }

func dashboardExprs(d dashboard) []dashExpr {
	var out []dashExpr
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, q := range p.Targets {
				out = append(out, dashExpr{"panel " + p.Title, q.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out = append(out, dashExpr{"variable " + v.Name, v.Definition})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, dashExpr{"annotation " + a.Name, a.Expr})
		}
	}
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelector = regexp.MustCompile(`\b((?:dso|workqueue)_[a-zA-Z0-9_]*)\s*(\{[^}]*\})?`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promGrouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// selector is one metric reference in an expression.
type selector struct {
	name     string   // as written, e.g. dso_lock_wait_seconds_bucket
	matchers []string // label names in {…}
}

// parseExpr finds the dso_*/workqueue_* selectors and the by/without labels
// of a PromQL expression. It is a deliberately small scanner, not a PromQL
// parser (the Prometheus module is not a dependency): quoted strings are
// blanked first so label values never look like metric names.
func parseExpr(expr string) (sels []selector, grouping []string) {
	expr = promString.ReplaceAllString(expr, `""`)
	for _, m := range promSelector.FindAllStringSubmatch(expr, -1) {
		s := selector{name: m[1]}
		for _, mm := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			s.matchers = append(s.matchers, mm[1])
		}
		sels = append(sels, s)
	}
	for _, m := range promGrouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouping = append(grouping, l)
			}
		}
	}
	return sels, grouping
}

// resolve maps a written name to its family: the name itself, or a
// histogram's (or summary's) series suffix on the family's name.
func resolveFamily(fams map[string]*dto.MetricFamily, name string) (*dto.MetricFamily, string, bool) {
	if mf, ok := fams[name]; ok {
		return mf, "", true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		if mf, ok := fams[base]; ok && (mf.GetType() == dto.MetricType_HISTOGRAM || (suf != "_bucket" && mf.GetType() == dto.MetricType_SUMMARY)) {
			return mf, suf, true
		}
	}
	return nil, "", false
}

func TestParseExpr(t *testing.T) {
	tests := []struct {
		expr     string
		sels     []string
		matchers []string
		grouping []string
	}{
		{`sum by (store, result) (rate(dso_provider_requests_total{instance=~"$instance"}[5m]))`,
			[]string{"dso_provider_requests_total"}, []string{"instance"}, []string{"store", "result"}},
		{`histogram_quantile(0.99, sum by (le) (rate(dso_lock_wait_seconds_bucket[1m])))`,
			[]string{"dso_lock_wait_seconds_bucket"}, nil, []string{"le"}},
		{`max(dso_binding_condition{condition="dso_fake_total", binding!~"x"}) == 1`,
			[]string{"dso_binding_condition"}, []string{"condition", "binding"}, nil},
		{`label_values(dso_cache_entries, instance)`, []string{"dso_cache_entries"}, nil, nil},
		{`sum without(name)(workqueue_depth)`, []string{"workqueue_depth"}, nil, []string{"name"}},
	}
	for _, tt := range tests {
		sels, grouping := parseExpr(tt.expr)
		var names, matchers []string
		for _, s := range sels {
			names = append(names, s.name)
			matchers = append(matchers, s.matchers...)
		}
		if !slices.Equal(names, tt.sels) || !slices.Equal(matchers, tt.matchers) || !slices.Equal(grouping, tt.grouping) {
			t.Errorf("parseExpr(%s) = %v %v %v, want %v %v %v", tt.expr, names, matchers, grouping, tt.sels, tt.matchers, tt.grouping)
		}
	}
}

// TestDashboardMatchesRegistry is the drift check described at the top.
func TestDashboardMatchesRegistry(t *testing.T) {
	fams := dashboardFamilies(t)
	d := loadDashboard(t)
	exprs := dashboardExprs(d)
	if len(exprs) < 20 {
		t.Fatalf("found %d expressions in the dashboard; the test's JSON model is probably out of step with the file", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		sels, grouping := parseExpr(e.expr)
		if len(sels) == 0 && !strings.Contains(e.expr, "$cache_budget") {
			t.Errorf("%s: expression names no dso_* or workqueue_* metric: %s", e.where, e.expr)
		}
		allowed := map[string]bool{}
		for _, l := range scrapeLabels {
			allowed[l] = true
		}
		for _, s := range sels {
			mf, suffix, ok := resolveFamily(fams, s.name)
			if !ok {
				t.Errorf("%s: metric %s is not in the registry (internal/metrics): fix the expression or the metric name: %s", e.where, s.name, e.expr)
				continue
			}
			used[mf.GetName()] = true
			labels := familyLabels(mf)
			if suffix == "_bucket" {
				labels = append(labels, "le")
			}
			for _, l := range labels {
				allowed[l] = true
			}
			for _, l := range s.matchers {
				if !slices.Contains(labels, l) && !slices.Contains(scrapeLabels, l) {
					t.Errorf("%s: %s has no label %q (it has %v): %s", e.where, s.name, l, labels, e.expr)
				}
			}
		}
		for _, l := range grouping {
			if !allowed[l] {
				t.Errorf("%s: aggregates by %q, which none of its metrics carries: %s", e.where, l, e.expr)
			}
		}
	}
	// Every dso_* metric is on the dashboard, and so are the workqueue
	// series the issue asks for.
	var want []string
	for name := range fams {
		if strings.HasPrefix(name, "dso_") {
			want = append(want, name)
		}
	}
	want = append(want, "workqueue_depth", "workqueue_adds_total", "workqueue_work_duration_seconds", "workqueue_retries_total")
	slices.Sort(want)
	for _, name := range want {
		if !used[name] {
			t.Errorf("metric %s is on no panel of %s", name, dashboardPath)
		}
	}
	if len(want) < 19 {
		t.Errorf("only %d metrics expected on the dashboard; the registry lost metrics or the test lost track of them", len(want))
	}
}

// TestDashboardModel checks what Grafana needs to import the file on any
// Prometheus: a datasource variable every query uses, unique panel ids, a
// recent schema.
func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (datasource references by uid)", d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no templating variable datasource of type datasource for prometheus")
	}
	ids := map[int]string{}
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if other, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("panel %q: id %d missing or also used by %q", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
			}
			for _, q := range p.Targets {
				if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: a query uses data source %q, not ${datasource}", p.Title, q.Datasource.UID)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}
