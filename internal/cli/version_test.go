package cli

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionJSON(t *testing.T) {
	r := run(t, nil, "", "dso", "version", "--json")
	if r.code != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.out)
	}
	// Scripts depend on these keys; each must be a non-empty string.
	keys := []string{"version", "commit", "buildDate", "goVersion", "platform"}
	for _, k := range keys {
		s, ok := m[k].(string)
		if !ok || s == "" {
			t.Errorf("%q = %#v, want a non-empty string", k, m[k])
		}
	}
	if len(m) != len(keys) {
		t.Errorf("got keys %v, want exactly %v", m, keys)
	}
	if m["goVersion"] != runtime.Version() || m["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("goVersion/platform = %v/%v, want %s/%s/%s", m["goVersion"], m["platform"], runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
}

func TestVersionText(t *testing.T) {
	r := run(t, nil, "", "dso", "version")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	for _, label := range []string{"Version:", "Git commit:", "Built:", "Go version:", "OS/Arch:"} {
		if !strings.Contains(r.out, "\n"+label) && !strings.HasPrefix(r.out, label) {
			t.Errorf("missing %q line:\n%s", label, r.out)
		}
	}
	if !strings.Contains(r.out, runtime.Version()) {
		t.Errorf("Go version %s not shown:\n%s", runtime.Version(), r.out)
	}
}

// Every failure exits 1 and prints exactly one "Error: " line to stderr,
// nothing to stdout.
func TestErrorsArePrintedOnce(t *testing.T) {
	isolate(t)
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"unknown command", []string{"dso", "frobnicate"}, `unknown command "frobnicate" for "dso"`},
		{"unknown subcommand", []string{"dso", "config", "frobnicate"}, `unknown command "frobnicate" for "dso config"`},
		{"unknown flag", []string{"dso", "version", "--bogus"}, "unknown flag: --bogus"},
		{"extra argument", []string{"dso", "version", "extra"}, `unknown command "extra" for "dso version"`},
		{"bad completion shell", []string{"dso", "completion", "tcsh"}, `invalid argument "tcsh"`},
		{"missing config file", []string{"dso", "--config", "/nonexistent/dso.yaml", "config", "validate"}, "/nonexistent/dso.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, "", tc.argv...)
			if r.code != 1 {
				t.Errorf("exit code %d, want 1", r.code)
			}
			if r.out != "" {
				t.Errorf("stdout = %q, want nothing", r.out)
			}
			if n := strings.Count(r.err, "Error: "); n != 1 || !strings.HasPrefix(r.err, "Error: ") {
				t.Errorf("stderr has %d \"Error: \" prefixes, want one at the start:\n%s", n, r.err)
			}
			if !strings.Contains(r.err, tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", r.err, tc.want)
			}
		})
	}
}
