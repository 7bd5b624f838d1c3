package framework

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMetricValue(t *testing.T) {
	text := `# HELP dso_rotations_total Finished container rotations.
# TYPE dso_rotations_total counter
dso_rotations_total{result="rolled-back",strategy="rolling"} 3
dso_rotations_total{result="succeeded",strategy="rolling"} 12
dso_binding_condition{binding="web",condition="Degraded"} 1
dso_cache_bytes 1.5e+06
`
	tests := []struct {
		series string
		want   float64
		ok     bool
	}{
		{`dso_rotations_total{result="rolled-back",strategy="rolling"}`, 3, true},
		{`dso_rotations_total{result="succeeded",strategy="rolling"}`, 12, true},
		{`dso_binding_condition{binding="web",condition="Degraded"}`, 1, true},
		{`dso_cache_bytes`, 1.5e6, true},
		// A prefix of a series is not the series.
		{`dso_rotations_total`, 0, false},
		{`dso_rotations_total{result="failed",strategy="rolling"}`, 0, false},
	}
	for _, tt := range tests {
		got, ok := MetricValue(text, tt.series)
		if got != tt.want || ok != tt.ok {
			t.Errorf("MetricValue(%s) = %v, %v; want %v, %v", tt.series, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.log")
	content := `{"level":"info","ts":"2026-12-01T10:23:37.538583143Z","msg":"rotation complete","trace_id":"7f69","duration_ms":435}
not json at all

{"level":"error","ts":"bad","msg":"rotation failed","reason":"health gate failed"}
`
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := ParseLog(p)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (blank lines dropped, the non-JSON one kept as raw)", len(lines))
	}
	tests := []struct {
		i                int
		msg, field, want string
		time             bool
	}{
		{0, "rotation complete", "duration_ms", "435", true},
		{1, "", "raw", "not json at all", false},
		{2, "rotation failed", "reason", "health gate failed", false},
	}
	for _, tt := range tests {
		l := lines[tt.i]
		if l.Msg() != tt.msg || l.Str(tt.field) != tt.want || l.Time().IsZero() == tt.time {
			t.Errorf("line %d = %v: msg %q, %s %q, time %v", tt.i, l, l.Msg(), tt.field, l.Str(tt.field), l.Time())
		}
	}
	if !MsgContains("failed")(lines[2]) || MsgContains("failed")(lines[0]) {
		t.Error("MsgContains matched the wrong lines")
	}
	if ParseLog(filepath.Join(t.TempDir(), "missing")) != nil {
		t.Error("a missing log file is not zero lines")
	}
	if got := lines[0].Time(); !got.Equal(time.Date(2026, 12, 1, 10, 23, 37, 538583143, time.UTC)) {
		t.Errorf("ts parsed as %v", got)
	}
}

func TestUnescapeMount(t *testing.T) {
	tests := map[string]string{
		`/tmp/plain`:               "/tmp/plain",
		`/tmp/with\040space`:       "/tmp/with space",
		`/tmp/tab\011and\134slash`: "/tmp/tab\tand\\slash",
		`/tmp/trailing\`:           `/tmp/trailing\`,
		`/tmp/not\9octal`:          `/tmp/not\9octal`,
	}
	for in, want := range tests {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBinFromEnv(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "dso")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, value, strict string
		wantPath            string
		wantSkip, wantFail  string // substrings
	}{
		{name: "executable", value: exe, wantPath: exe},
		{name: "unset lenient", value: "", wantSkip: "is not set"},
		{name: "unset strict", value: "", strict: "1", wantFail: "is not set"},
		{name: "not executable strict", value: plain, strict: "1", wantFail: "not an executable"},
		{name: "a directory", value: dir, wantSkip: "not an executable"},
		{name: "missing", value: filepath.Join(dir, "nope"), strict: "1", wantFail: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DSO_TEST_BIN", tt.value)
			t.Setenv("DSO_STRICT", tt.strict)
			r := &recordingTB{}
			got := BinFromEnv(r, "DSO_TEST_BIN")
			switch {
			case tt.wantPath != "":
				if got != tt.wantPath || r.skipped != "" || r.failed != "" {
					t.Fatalf("got %q skipped=%q failed=%q", got, r.skipped, r.failed)
				}
			case tt.wantFail != "":
				if !strings.Contains(r.failed, tt.wantFail) || r.skipped != "" {
					t.Fatalf("failed=%q skipped=%q; want a failure saying %q", r.failed, r.skipped, tt.wantFail)
				}
			default:
				if !strings.Contains(r.skipped, tt.wantSkip) || r.failed != "" {
					t.Fatalf("skipped=%q failed=%q; want a skip saying %q", r.skipped, r.failed, tt.wantSkip)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := redact("set \"k\" value s3cr3t done s3cr3t", "s3cr3t"); strings.Contains(got, "s3cr3t") {
		t.Fatalf("redact left the value in %q", got)
	}
	if got := redact("unchanged", ""); got != "unchanged" {
		t.Fatalf("redact with an empty value changed the text to %q", got)
	}
}
