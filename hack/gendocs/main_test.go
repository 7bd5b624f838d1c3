package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// docs/cli.md must be what generate writes now: a command or flag changed
// without `make docs` fails here, in every `go test` run, not only in
// `make verify-docs`.
func TestDocsAreCurrent(t *testing.T) {
	var buf bytes.Buffer
	if err := generate(&buf); err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatalf("reading docs/cli.md (run 'make docs'): %v", err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		t.Fatalf("docs/cli.md is stale: run 'make docs' and commit the result")
	}
}

func TestGenerateIsDeterministicAndComplete(t *testing.T) {
	var a, b bytes.Buffer
	if err := generate(&a); err != nil {
		t.Fatal(err)
	}
	if err := generate(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("two runs of generate differ")
	}
	for _, h := range []string{"## dso\n", "## dso version\n", "## dso config\n", "## dso config show\n", "## dso config validate\n", "## dso config edit\n", "## dso completion\n", "--config string"} {
		if !strings.Contains(a.String(), h) {
			t.Errorf("reference lacks %q", h)
		}
	}
	if strings.Contains(a.String(), "## dso help") {
		t.Error("the help command is documented; it should be left out")
	}
}
