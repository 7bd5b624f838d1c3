package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dso-dev/dso/providers/local"
)

func TestInitDefaultStore(t *testing.T) {
	dir := isolate(t)
	r := run(t, nil, "", "dso", "init")
	if r.code != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	golden(t, "init/default", normalize(r.out, dir))
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{".dso", 0o700}, {".dso/vault.enc", 0o600}, {".dso/vault.enc.key", 0o600}, {".dso/vault.enc.lock", 0o600},
	} {
		fi, err := os.Stat(filepath.Join(dir, c.path))
		if err != nil || fi.Mode().Perm() != c.mode {
			t.Errorf("%s: %v, mode %v; want %04o", c.path, err, fi.Mode().Perm(), c.mode)
		}
	}

	// The new store works for the secret commands straight away.
	if r := run(t, nil, "v", "dso", "secret", "set", "a/b"); r.code != 0 {
		t.Fatalf("secret set after init: %q", r.err)
	}
	// A second init refuses and keeps the secret; --force starts over.
	r = run(t, nil, "", "dso", "init")
	if r.code != 1 || !strings.Contains(r.err, "already exists") || !strings.Contains(r.err, "--force") {
		t.Fatalf("second init: exit %d, stderr %q", r.code, r.err)
	}
	if r := run(t, nil, "", "dso", "secret", "get", "a/b"); r.out != "v" {
		t.Fatalf("secret lost after a refused init: %q %q", r.out, r.err)
	}
	if r := run(t, nil, "", "dso", "init", "--force"); r.code != 0 {
		t.Fatalf("init --force: %q", r.err)
	}
	if r := run(t, nil, "", "dso", "secret", "list"); r.code != 0 || r.out != "" {
		t.Fatalf("after init --force the store must be empty: %q %q", r.out, r.err)
	}
}

func TestInitTargets(t *testing.T) {
	tests := []struct {
		name   string
		stores []string // local stores in the config; nil: no config
		argv   []string
		want   string // store path relative to the temp dir
		note   string // on stderr
	}{
		{"no config: the user default", nil, []string{"init"}, ".dso/vault.enc", ""},
		{"the config's only local store", []string{"a"}, []string{"init"}, "a/vault.enc", ""},
		{"several local stores: the user default, with a note", []string{"a", "b"}, []string{"init"}, ".dso/vault.enc", "declares several local stores (a, b); pass --path"},
		{"--path wins", []string{"a"}, []string{"init", "--path", "$DIR/p/s.enc"}, "p/s.enc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			argv := []string{"dso"}
			if tt.stores != nil {
				argv = append(argv, "--config", localStoresConfig(t, dir, tt.stores...))
			}
			for _, a := range tt.argv {
				argv = append(argv, strings.ReplaceAll(a, "$DIR", dir))
			}
			r := run(t, nil, "", argv...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			if (tt.note == "") != (r.err == "") || !strings.Contains(r.err, tt.note) {
				t.Errorf("stderr %q, want a note containing %q", r.err, tt.note)
			}
			want := filepath.Join(dir, tt.want)
			if !strings.Contains(r.out, "store:    "+want+"\n") {
				t.Errorf("output does not name %s:\n%s", want, r.out)
			}
			if _, err := local.Open(want, ""); err != nil {
				t.Errorf("store not usable: %v", err)
			}
		})
	}
}
