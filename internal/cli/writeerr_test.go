package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// brokenWriter fails every write, like a stdout whose reader went away.
type brokenWriter struct{}

var errBrokenOut = errors.New("stdout is gone")

func (brokenWriter) Write([]byte) (int, error) { return 0, errBrokenOut }

// A command whose output is its result must not report success when that
// output could not be written: a script reading it would get nothing and
// exit code 0.
func TestResultWriteFailureFails(t *testing.T) {
	_, st := secretTestStore(t)
	if _, err := st.Set("shop/db", []byte("v")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		argv []string
	}{
		{"version", []string{"dso", "version"}},
		{"version json", []string{"dso", "version", "--json"}},
		{"secret list", []string{"dso", "secret", "list"}},
		{"secret list long", []string{"dso", "secret", "list", "--long"}},
		{"secret get to stdout", []string{"dso", "secret", "get", "shop/db"}},
		{"secret rm confirmation", []string{"dso", "secret", "rm", "shop/db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb bytes.Buffer
			s := Streams{In: strings.NewReader(""), Out: brokenWriter{}, Err: &errb}
			code := Main(tt.argv, s, func(string) string { return "" })
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(errb.String(), "Error: ") || !strings.Contains(errb.String(), errBrokenOut.Error()) {
				t.Errorf("stderr = %q, want an Error line naming the failed write", errb.String())
			}
		})
	}
}

// A mistyped flag points at the command's --help on a line of its own.
func TestFlagErrorPointsAtHelp(t *testing.T) {
	r := run(t, nil, "", "dso", "version", "--bogus")
	want := "Error: unknown flag: --bogus\nSee 'dso version --help'.\n"
	if r.code != 1 || r.err != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.err, want)
	}
}
