package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testdata is absolute because tests change their working directory.
var testdata = func() string {
	p, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	return p
}()

// result is what one run of the command tree produced.
type result struct {
	out, err string
	code     int
}

// run executes the command tree in-process like the binary would be run
// with argv (argv[0] is the program name), with env as the environment seen
// by the invocation parsing and stdin as input.
func run(t *testing.T, env map[string]string, stdin string, argv ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	s := Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb}
	code := Main(argv, s, func(k string) string { return env[k] })
	return result{out: out.String(), err: errb.String(), code: code}
}

// golden compares got with testdata/<name>.golden; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testdata, name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run 'go test ./internal/cli -update' to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// isolate keeps the developer's own config out of a test: no $DSO_CONFIG,
// a HOME and working directory without a dso.yaml. /etc/dso/dso.yaml can
// still exist on a host; tests that depend on the search order pass
// --config or $DSO_CONFIG explicitly.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DSO_CONFIG", "")
	t.Setenv("HOME", dir)
	t.Chdir(dir)
	return dir
}

// copyFixture copies testdata/config/<name> into dir, replacing $DIR in it
// with dir, and returns its path.
func copyFixture(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, "config", name))
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte("$DIR"), []byte(dir))
	p := filepath.Join(dir, filepath.Base(name))
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}
