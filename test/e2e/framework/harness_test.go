package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIsStale(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ago := func(d time.Duration) string { return strconv.FormatInt(now.Add(-d).Unix(), 10) }
	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{name: "old run", labels: map[string]string{LabelRun: "r1", LabelCreated: ago(2 * time.Hour)}, want: true},
		{name: "recent run", labels: map[string]string{LabelRun: "r1", LabelCreated: ago(59 * time.Minute)}},
		{name: "exactly one hour", labels: map[string]string{LabelRun: "r1", LabelCreated: ago(time.Hour)}},
		{name: "created in the future", labels: map[string]string{LabelRun: "r1", LabelCreated: ago(-time.Hour)}},
		// The guard that matters: without dso.test nothing is ever ours,
		// however old it claims to be.
		{name: "no dso.test label", labels: map[string]string{LabelCreated: ago(48 * time.Hour)}},
		{name: "empty dso.test label", labels: map[string]string{LabelRun: "", LabelCreated: ago(48 * time.Hour)}},
		{name: "other labels only", labels: map[string]string{"com.docker.compose.project": "shop"}},
		{name: "no creation time", labels: map[string]string{LabelRun: "r1"}},
		{name: "garbled creation time", labels: map[string]string{LabelRun: "r1", LabelCreated: "yesterday"}},
		{name: "nil labels", labels: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsStale(tt.labels, now); got != tt.want {
				t.Fatalf("IsStale(%v) = %v, want %v", tt.labels, got, tt.want)
			}
		})
	}
}

func TestLabelsCannotBeOverridden(t *testing.T) {
	h := &Harness{RunID: "run-1"}
	l := h.Labels(map[string]string{LabelRun: "someone-else", LabelCreated: "0", "app": "api"})
	if l[LabelRun] != "run-1" || l["app"] != "api" {
		t.Fatalf("labels = %v", l)
	}
	if sec, err := strconv.ParseInt(l[LabelCreated], 10, 64); err != nil || time.Since(time.Unix(sec, 0)) > time.Minute {
		t.Fatalf("creation label %q is not the current time", l[LabelCreated])
	}
	if n := h.Name("web"); n != "dso-e2e-run-1-web" {
		t.Fatalf("Name = %q", n)
	}
}

func TestRunIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newRunID()
		if seen[id] {
			t.Fatalf("run id %s repeated", id)
		}
		seen[id] = true
	}
}

func TestGETRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:80", "example.invalid:80", "0.0.0.0:8080", "nonsense"} {
		_, _, err := GET(context.Background(), addr, "/")
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("GET %s: err = %v, want a refusal", addr, err)
		}
	}
}

// recordingTB captures Skip/Fatal calls; it embeds testing.TB only to
// satisfy the interface's unexported method.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestUnavailableSkipsOrFails(t *testing.T) {
	for _, strict := range []string{"", "1"} {
		t.Run("DSO_STRICT="+strict, func(t *testing.T) {
			t.Setenv("DSO_STRICT", strict)
			r := &recordingTB{}
			Unavailable(r, "no engine at %s", "unix:///x")
			if strict == "1" {
				if r.failed == "" || r.skipped != "" || !strings.Contains(r.failed, "no engine at unix:///x") {
					t.Fatalf("strict: failed=%q skipped=%q", r.failed, r.skipped)
				}
				return
			}
			if r.skipped == "" || r.failed != "" || !strings.Contains(r.skipped, "DSO_STRICT=1") {
				t.Fatalf("lenient: failed=%q skipped=%q", r.failed, r.skipped)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "hack", "build-testimage.sh")); err != nil {
		t.Fatalf("root %q does not hold hack/build-testimage.sh: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if _, err := RepoRoot(); err == nil {
		t.Fatal("RepoRoot outside the repository returned no error")
	}
}
