package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// fixtureStatus is a busy agent: two stores (one failing), a warm cache, a
// queue with work, a failed rotation and one recovery pass.
func fixtureStatus() api.Status {
	started := fixedNow.Add(-26 * time.Hour)
	lastRun := fixedNow.Add(-26 * time.Hour).Add(2 * time.Second)
	rot := api.Rotation{
		TraceID: "ab12cd34ef56", Target: "api-1", Bindings: []string{"api-db"}, Strategy: "rolling",
		Started: fixedNow.Add(-10 * time.Minute), Finished: fixedNow.Add(-10*time.Minute + 1200*time.Millisecond),
		Steps:  []containerswap.StepTiming{{Step: "create", Duration: 60 * time.Millisecond}, {Step: "health", Duration: time.Second}},
		Result: "succeeded", ToHash: "0123456789abcdef0123",
	}
	return api.Status{
		Runtime: api.Runtime{Version: "v1.0.0", Commit: "abc1234", GoVersion: "go1.26.0", StartedAt: started,
			UptimeSeconds: (26 * time.Hour).Seconds(), PID: 4242, ConfigFile: "/etc/dso/dso.yaml",
			DockerAPI: "1.41", DockerEngine: "20.10.24", Ready: true},
		Providers: []api.ProviderStatus{
			{Store: "vault-prod", Provider: "vault", Health: "healthy", Circuit: "closed",
				LatencyMs: api.Latency{Min: 1.2, Avg: 3.456, Max: 120}, Calls: 200, Errors: 0},
			{Store: "aws", Provider: "aws", Health: "unavailable", Circuit: "open", Calls: 0, Errors: 5,
				LastError: "store \"aws\": connection refused"},
		},
		Cache:      api.CacheStatus{Entries: 12, Bytes: 3584, MaxBytes: 500 << 20, Hits: 190, Misses: 10, HitRate: 95, Utilization: 0.000683},
		Queues:     []api.QueueStatus{{Name: "secretfetch", Depth: 0}, {Name: "containerswap", Depth: 2}},
		Rotations:  api.RotationTotals{Total: 12, Succeeded: 11, Failed: 1, InProgress: 1, SuccessRate: 91.66666},
		Containers: api.ContainerCounts{Managed: 3, Healthy: 2, Unhealthy: 1},
		Recovery: api.RecoveryStatus{LastRun: &lastRun, Passes: 1, IncompleteFound: []string{"web-1"},
			Actions: []api.RecoveryAction{{Time: lastRun, Target: "web-1", TraceID: "ff00", Action: "removed-candidate", Detail: "candidate web-1-dso-new removed, old kept"}},
			Errors:  []string{}},
		Observability: api.Observability{
			RecentRotations: []api.Rotation{rot},
			ProviderLatency: []api.ProviderLatency{{Store: "vault-prod", Min: 1.2, Avg: 3.456, Max: 120}},
			LockContention:  api.LockContention{MaxWaitMs: 12.5, Over1s: 0},
			HealthDiagnostics: []api.HealthDiagnostic{{TraceID: "dd99", Target: "web-1", Time: fixedNow.Add(-time.Hour), Reason: "health gate timed out",
				Probes: []containerswap.HealthProbe{{Time: fixedNow.Add(-time.Hour), ExitCode: 1, Output: "connection refused", Source: "exec"}}}},
			CircuitBreakers: []api.CircuitBreaker{{Store: "aws", State: "open", ConsecutiveFailures: 5}},
		},
	}
}

func TestStatusGolden(t *testing.T) {
	tests := []struct {
		golden string
		status func() api.Status
	}{
		{"status/busy", fixtureStatus},
		// A fresh agent: empty lists, nothing ran yet.
		{"status/fresh", func() api.Status {
			return api.Status{Runtime: api.Runtime{Version: "v1.0.0", PID: 7, UptimeSeconds: 3},
				Cache: api.CacheStatus{MaxBytes: 500 << 20}, Rotations: api.RotationTotals{SuccessRate: 100}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			fa := newFakeAgent(t, true)
			fa.handle("GET /v1/status", tc.status())
			r := fa.run(t, "status")
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, tc.golden, r.out)
		})
	}
}

// The guide's pipelines over `status`: `grep -i cache` shows the cache
// numbers, and `awk '/Cache/ {print $NF}' | grep -E "99|100"` alerts exactly
// when the utilisation is 99% or more — so every line containing "Cache"
// must end with the utilisation.
func TestStatusCachePipelines(t *testing.T) {
	tests := []struct {
		name        string
		utilization float64
		alert       bool
	}{
		{"nearly empty", 0.7, false},
		{"half", 50, false},
		{"hit rate 99.5% alone does not alert", 12.5, false},
		{"99.2% alerts", 99.2, true},
		{"full alerts", 100, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fa := newFakeAgent(t, true)
			st := fixtureStatus()
			st.Cache.HitRate = 99.5
			st.Cache.Utilization = tc.utilization
			fa.handle("GET /v1/status", st)
			r := fa.run(t, "status")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.err)
			}
			var lastFields []string
			cacheLines := 0
			for _, line := range strings.Split(r.out, "\n") {
				if strings.Contains(strings.ToLower(line), "cache") {
					cacheLines++
				}
				if strings.Contains(line, "Cache") { // awk '/Cache/'
					f := strings.Fields(line)
					lastFields = append(lastFields, f[len(f)-1]) // {print $NF}
				}
			}
			if cacheLines == 0 {
				t.Fatal("grep -i cache finds nothing")
			}
			if len(lastFields) != 1 || !strings.HasPrefix(strings.Split(r.out, "\n")[0], "Runtime") {
				t.Fatalf("lines with Cache: %q, want exactly one", lastFields)
			}
			if !regexp.MustCompile(`^[0-9]+\.[0-9]%$`).MatchString(lastFields[0]) {
				t.Errorf("last field of the Cache line = %q, want a percentage like 12.5%%", lastFields[0])
			}
			alert := regexp.MustCompile(`99|100`).MatchString(lastFields[0])
			if alert != tc.alert {
				t.Errorf("grep -E '99|100' on %q = %v, want %v", lastFields[0], alert, tc.alert)
			}
		})
	}
}

// `status --json` is the api.Status: every section present, the guide's
// `jq '.observability'` and `jq '.recovery'` objects with their keys, and
// the types scripts rely on — also for a fresh agent whose lists are empty.
func TestStatusJSONSchema(t *testing.T) {
	type kind int
	const (
		object kind = iota
		array
		number
		str
		boolean
		objectOrNull
	)
	required := map[string]kind{
		"runtime": object, "runtime.version": str, "runtime.pid": number, "runtime.uptimeSeconds": number,
		"runtime.configFile": str, "runtime.dockerAPI": str, "runtime.ready": boolean,
		"providers": array, "queues": array, "containers": object, "containers.managed": number,
		"cache": object, "cache.hitRate": number, "cache.utilization": number, "cache.entries": number, "cache.bytes": number,
		"rotations": object, "rotations.total": number, "rotations.failed": number, "rotations.successRate": number,
		"observability":                   object,
		"observability.recentRotations":   array,
		"observability.providerLatency":   array,
		"observability.lockContention":    object,
		"observability.healthDiagnostics": array,
		"observability.circuitBreakers":   array,
		"recovery":                        object,
		"recovery.lastRun":                objectOrNull,
		"recovery.passes":                 number,
		"recovery.incompleteFound":        array,
		"recovery.actions":                array,
	}
	for name, st := range map[string]api.Status{"busy": fixtureStatus(), "fresh": {}} {
		t.Run(name, func(t *testing.T) {
			fa := newFakeAgent(t, true)
			// The fake answers what a real agent must: empty lists as [],
			// never null. Encode through the normalising helper the agent
			// is expected to use; the CLI must keep them so.
			fa.handle("GET /v1/status", normalised(st))
			r := fa.run(t, "status", "--json")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.err)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.out)
			}
			for path, want := range required {
				v, ok := lookup(doc, path)
				if !ok {
					t.Errorf("%s missing", path)
					continue
				}
				var good bool
				switch want {
				case object:
					_, good = v.(map[string]any)
				case array:
					_, good = v.([]any)
				case number:
					_, good = v.(float64)
				case str:
					_, good = v.(string)
				case boolean:
					_, good = v.(bool)
				case objectOrNull:
					_, isStr := v.(string) // a time
					good = v == nil || isStr
				}
				if !good {
					t.Errorf("%s = %#v: wrong type", path, v)
				}
			}
		})
	}
}

// normalised replaces nil lists by empty ones, as the agent's status does.
func normalised(st api.Status) api.Status {
	if st.Providers == nil {
		st.Providers = []api.ProviderStatus{}
	}
	if st.Queues == nil {
		st.Queues = []api.QueueStatus{}
	}
	o := &st.Observability
	if o.RecentRotations == nil {
		o.RecentRotations = []api.Rotation{}
	}
	if o.ProviderLatency == nil {
		o.ProviderLatency = []api.ProviderLatency{}
	}
	if o.HealthDiagnostics == nil {
		o.HealthDiagnostics = []api.HealthDiagnostic{}
	}
	if o.CircuitBreakers == nil {
		o.CircuitBreakers = []api.CircuitBreaker{}
	}
	if st.Recovery.IncompleteFound == nil {
		st.Recovery.IncompleteFound = []string{}
	}
	if st.Recovery.Actions == nil {
		st.Recovery.Actions = []api.RecoveryAction{}
	}
	return st
}

func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// --watch: a terminal gets the alternate screen and in-place redraws (no
// full clear between frames); a pipe gets snapshots with a separator line;
// an agent that goes away does not end the watch.
func TestWatchStatus(t *testing.T) {
	prev := now
	now = func() time.Time { return fixedNow }
	t.Cleanup(func() { now = prev })
	tests := []struct {
		name      string
		tty       bool
		mustHave  []string
		mustNotAt []string
	}{
		{"terminal", true, []string{altScreenOn, cursorHome, clearLine + "\n", clearBelow, altScreenOff, "agent unreachable"}, []string{"\x1b[2J", "--- "}},
		{"pipe", false, []string{"--- 2025-05-12T10:00:00Z ---\nRuntime\n", "\n--- 2025-05-12T10:00:00Z ---\n", "agent unreachable: the dso agent is not running"}, []string{"\x1b["}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			fetch := func(context.Context) (api.Status, error) {
				calls++
				switch calls {
				case 2:
					return api.Status{}, api.ErrAgentDown
				case 3:
					cancel()
				}
				return fixtureStatus(), nil
			}
			var out bytes.Buffer
			err := watchStatus(ctx, &out, tc.tty, false, time.Millisecond, fetch, writeStatus)
			if err != nil {
				t.Fatal(err)
			}
			if calls != 3 {
				t.Errorf("fetched %d times, want 3", calls)
			}
			for _, s := range tc.mustHave {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q", s)
				}
			}
			for _, s := range tc.mustNotAt {
				if strings.Contains(out.String(), s) {
					t.Errorf("output contains %q", s)
				}
			}
			if got := strings.Count(out.String(), "Runtime\n"); !tc.tty && got != 1 {
				t.Errorf("%d snapshots printed, want 1 (the third fetch ended the watch)", got)
			}
		})
	}
}

// A write error of the watch output ends it with that error.
func TestWatchStatusWriteError(t *testing.T) {
	err := watchStatus(context.Background(), brokenWriter{}, false, false, time.Millisecond,
		func(context.Context) (api.Status, error) { return fixtureStatus(), nil }, writeStatus)
	if !errors.Is(err, errBrokenOut) {
		t.Fatalf("err = %v, want the write error", err)
	}
}
