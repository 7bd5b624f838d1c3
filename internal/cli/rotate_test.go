package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// rotateAgent streams progress lines for /v1/rotate/{binding} like the
// agent: one JSON object per line, flushed as it happens, ending with done.
func rotateAgent(t *testing.T, lines []api.RotateProgress, gotWait *bool) *fakeAgent {
	fa := newFakeAgent(t, true)
	fa.mux.HandleFunc("POST /v1/rotate/{binding}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("binding") != "api-db" {
			api.WriteError(w, 404, "secretbinding "+r.PathValue("binding")+" not found")
			return
		}
		var req api.RotateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		*gotWait = req.Wait
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, l := range lines {
			_ = enc.Encode(l)
			w.(http.Flusher).Flush()
		}
	})
	return fa
}

func TestRotate(t *testing.T) {
	at := func(ms int) time.Time { return fixedNow.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		golden string
		args   []string
		lines  []api.RotateProgress
		code   int
		wait   bool
	}{
		{"rotate/wait-succeeded", []string{"rotate", "api-db", "--wait"}, []api.RotateProgress{
			{Time: at(0), Target: "api-1", Phase: "queued"},
			{Time: at(0), Target: "api-2", Phase: "unchanged", Message: "secret hash unchanged"},
			{Time: at(10), Target: "api-1", Phase: "rotating", TraceID: "ab12cd34ef56"},
			{Time: at(1210), Target: "api-1", Phase: "succeeded", TraceID: "ab12cd34ef56"},
			{Time: at(1211), Phase: "done", Message: "1 rotated, 1 unchanged"},
		}, 0, true},
		{"rotate/wait-failed", []string{"rotate", "api-db", "--wait"}, []api.RotateProgress{
			{Time: at(0), Target: "api-1", Phase: "rotating", TraceID: "ab12cd34ef56"},
			{Time: at(0), Target: "api-2", Phase: "rotating", TraceID: "ff00ee11dd22"},
			{Time: at(900), Target: "api-1", Phase: "succeeded"},
			{Time: at(30000), Target: "api-2", Phase: "failed", TraceID: "ff00ee11dd22", Message: "health gate timed out after 30s; old container kept"},
			{Time: at(30001), Phase: "done"},
		}, 1, true},
		{"rotate/queued", []string{"rotate", "api-db"}, []api.RotateProgress{
			{Time: at(0), Target: "api-1", Phase: "queued"},
			{Time: at(0), Phase: "done", Message: "1 target queued; follow with 'dso history api-db'"},
		}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			var wait bool
			fa := rotateAgent(t, tc.lines, &wait)
			r := fa.run(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			if wait != tc.wait {
				t.Errorf("agent got wait=%v, want %v", wait, tc.wait)
			}
			golden(t, tc.golden, r.out+"# stderr: "+r.err)
		})
	}
}

func TestRotateErrors(t *testing.T) {
	var wait bool
	fa := rotateAgent(t, []api.RotateProgress{{Target: "api-1", Phase: "rotating"}}, &wait) // no "done"
	r := fa.run(t, "rotate", "api-db")
	if r.code != 1 || !strings.Contains(r.err, "the agent ended the rotate stream early") {
		t.Errorf("cut stream: exit %d, stderr %q", r.code, r.err)
	}
	r = fa.run(t, "rotate", "nope")
	if r.code != 1 || r.err != "Error: rotating nope: secretbinding nope not found: list them with 'dso get bindings'\n" {
		t.Errorf("unknown binding: exit %d, stderr %q", r.code, r.err)
	}
}

func historyFixture() []api.Rotation {
	t0 := fixedNow.Add(-2 * time.Hour)
	return []api.Rotation{
		{TraceID: "ab12cd34ef56", Target: "shop-api-1", Bindings: []string{"api-db"}, Strategy: "rolling", Started: fixedNow.Add(-10 * time.Minute),
			Finished: fixedNow.Add(-10*time.Minute + 1200*time.Millisecond), Result: "succeeded", ToHash: "9f86d081884c",
			Steps: []containerswap.StepTiming{{Step: "create", Duration: 61 * time.Millisecond}, {Step: "start", Duration: 375 * time.Millisecond}, {Step: "health", Duration: 700 * time.Millisecond}}},
		{TraceID: "ff00ee11dd22", Target: "shop-api-2", Bindings: []string{"api-db"}, Strategy: "rolling", Started: t0, Finished: t0.Add(30 * time.Second),
			Result: "rolled-back", Reason: "health gate timed out after 30s",
			Steps: []containerswap.StepTiming{{Step: "create", Duration: 60 * time.Millisecond}, {Step: "health", Duration: 30 * time.Second, Error: "timed out"}},
			Health: []containerswap.HealthProbe{
				{Time: t0.Add(10 * time.Second), ExitCode: 1, Output: "curl: (7) Failed to connect\nto localhost port 8080", Source: "exec"},
				{Time: t0.Add(20 * time.Second), ExitCode: 1, Output: "", Source: "docker"},
			}},
		{TraceID: "cc33", Target: "web-1", Strategy: "recreate", Started: fixedNow.Add(-time.Minute), Result: ""},
	}
}

func TestHistory(t *testing.T) {
	fa := newFakeAgent(t, true)
	var query string
	fa.mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		api.WriteJSON(w, 200, historyFixture())
	})
	r := fa.run(t, "history", "api-db", "-n", "5")
	if r.code != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if query != "binding=api-db&limit=5" {
		t.Errorf("query %q", query)
	}
	golden(t, "history/table", r.out)

	r = fa.run(t, "history", "-n", "2", "-o", "json")
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.out)
	}
	if len(got) != 2 {
		t.Errorf("%d records, want 2 (-n 2)", len(got))
	}
	for _, k := range []string{"traceId", "target", "strategy", "started", "finished", "steps", "result", "lockWait", "toHash"} {
		if _, ok := got[0][k]; !ok {
			t.Errorf("history -o json: key %q missing", k)
		}
	}
	if _, ok := got[1]["health"].([]any); !ok {
		t.Errorf("failed record lacks health probes: %v", got[1]["health"])
	}

	for _, args := range [][]string{{"history", "-n", "0"}, {"history", "-o", "yaml"}} {
		if r := fa.run(t, args...); r.code != 1 || !strings.HasPrefix(r.err, "Error: ") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.err)
		}
	}
}
