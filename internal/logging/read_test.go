package logging

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHuman(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{
			`{"level":"info","ts":"2026-12-01T10:00:00.123456789Z","caller":"containerswap/reconciler.go:10","msg":"rotation complete","binding":"api-db","duration":"1.2s","container":"api","trace_id":"ab12"}`,
			`2026-12-01T10:00:00Z INFO  rotation complete trace_id=ab12 container=api binding=api-db duration=1.2s`,
		},
		{
			`{"level":"error","ts":"2026-12-01T11:00:00+01:00","msg":"rotation failed","step":"health","reason":"exit code 1: connection refused","error":"gate","zeta":1,"alpha":true}`,
			`2026-12-01T10:00:00Z ERROR rotation failed step=health alpha=true error=gate reason="exit code 1: connection refused" zeta=1`,
		},
		{
			`{"level":"debug","ts":"2026-12-01T10:00:00Z","msg":"cache_hit","logger":"cache","store":"vault-prod","n":12345678901234567}`,
			`2026-12-01T10:00:00Z DEBUG cache_hit logger=cache n=12345678901234567 store=vault-prod`,
		},
		{
			`{"level":"warn","ts":"2026-12-01T10:00:00Z","msg":"env delivery","empty":"","obj":{"b":1,"a":[1,2]},"nil":null,"eq":"a=b"}`,
			`2026-12-01T10:00:00Z WARN  env delivery empty="" eq="a=b" nil=null obj={"a":[1,2],"b":1}`,
		},
		{
			`{"msg":"no time or level"}`,
			`-       no time or level`,
		},
	}
	for _, tt := range tests {
		var got []string
		for e, err := range ReadEntries(strings.NewReader(tt.line + "\n")) {
			if err != nil {
				t.Fatalf("%s: %v", tt.line, err)
			}
			got = append(got, e.Human())
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("Human of\n %s\n= %q\nwant %q", tt.line, got, tt.want)
		}
	}
}

func TestReadEntriesErrors(t *testing.T) {
	in := strings.Join([]string{
		`{"level":"info","ts":"2026-12-01T10:00:00Z","msg":"one"}`,
		``,
		`panic: runtime error`,
		`{"level":"info","ts":"yesterday","msg":"bad time"}`,
		`{"level":"info","ts":"2026-12-01T10:00:01Z","msg":"two"}`,
	}, "\n")
	var msgs []string
	var errs []string
	for e, err := range ReadEntries(strings.NewReader(in)) {
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		msgs = append(msgs, e.Msg)
	}
	if strings.Join(msgs, ",") != "one,two" {
		t.Errorf("messages %v, want one,two (reading goes on after a bad line)", msgs)
	}
	if len(errs) != 2 || !strings.HasPrefix(errs[0], "log line 3:") || !strings.HasPrefix(errs[1], "log line 4:") {
		t.Errorf("errors %q, want lines 3 and 4", errs)
	}
	// The consumer can stop early.
	n := 0
	for range ReadEntries(strings.NewReader(in)) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break did not stop the sequence")
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

func TestReadEntriesIOError(t *testing.T) {
	var got error
	for _, err := range ReadEntries(failReader{}) {
		got = err
	}
	if got == nil || !strings.Contains(got.Error(), "disk gone") {
		t.Errorf("I/O error = %v", got)
	}
}

// TestRoundTrip writes through the real logger and reads it back: the
// writer's keys and the reader's keys are the same constants, and this
// proves the formats agree too (time layout, level words, durations).
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	l, c, err := New(Options{File: path, Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("rotation complete", "binding", "api-db", "container", "api", "trace_id", "ab12", "duration", 1500*time.Millisecond)
	l.V(1).Info("cache_hit", "store", "vault")
	l.Error(errors.New("unhealthy"), "rotation failed", "step", "health")
	if err := c(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	for e, err := range ReadEntries(f) {
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(e.Time) > time.Minute || e.Time.Location() != time.UTC {
			t.Errorf("time %v not parsed as a recent UTC time", e.Time)
		}
		h := e.Human()
		// Drop the time (now) to compare the rest exactly.
		got = append(got, h[strings.IndexByte(h, ' ')+1:])
	}
	want := []string{
		"INFO  rotation complete trace_id=ab12 container=api binding=api-db duration=1.5s",
		"DEBUG cache_hit store=vault",
		"ERROR rotation failed step=health error=unhealthy",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLevelAtLeast(t *testing.T) {
	tests := []struct {
		entry, min string
		want       bool
	}{
		{"error", "err", true},
		{"error", "error", true},
		{"warn", "err", false},
		{"warn", "warning", true},
		{"warn", "warn", true},
		{"info", "warning", false},
		{"info", "info", true},
		{"error", "info", true},
		{"debug", "info", false},
		{"debug", "debug", true},
		{"fatal", "err", true},
		{"dpanic", "error", true},
		{"", "err", false},
		{"", "info", true},
		{"info", "bogus", true},
		{"INFO", "INFO", true},
	}
	for _, tt := range tests {
		if got := LevelAtLeast(tt.entry, tt.min); got != tt.want {
			t.Errorf("LevelAtLeast(%q, %q) = %v, want %v", tt.entry, tt.min, got, tt.want)
		}
	}
}

func TestParseMinLevel(t *testing.T) {
	tests := map[string]string{"err": "error", "error": "error", "warning": "warn", "warn": "warn", "info": "info", "debug": "debug", " Err ": "error", "crit": ""}
	for in, want := range tests {
		got, err := ParseMinLevel(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseMinLevel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
