package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/local"
)

// localStoresConfig writes a config declaring the given local stores
// (name -> path) and one vault store, with bindings read from dir only.
func localStoresConfig(t *testing.T, dir string, stores ...string) string {
	t.Helper()
	var b strings.Builder
	// Paths are quoted: a temp dir name can hold YAML flow characters.
	fmt.Fprintf(&b, "bindings:\n  dirs: [%q]\n", dir+"/bindings.d")
	b.WriteString("---\napiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: vault}\nspec:\n  vault:\n    address: http://127.0.0.1:8200\n    auth: {token: {fromEnv: DSO_TEST_VAULT_TOKEN}}\n")
	for _, name := range stores {
		fmt.Fprintf(&b, "---\napiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: %s}\nspec:\n  local: {path: %q}\n", name, dir+"/"+name+"/vault.enc")
	}
	// Not dso.yaml: isolate makes dir the working directory, and ./dso.yaml
	// would be found by the config search of tests that pass no --config.
	p := filepath.Join(dir, "stores-"+strings.Join(stores, "-")+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// secretTestStore isolates the test and creates the default store
// (~/.dso/vault.enc under the temporary HOME) with a fixed clock.
func secretTestStore(t *testing.T) (dir string, st *local.Store) {
	t.Helper()
	dir = isolate(t)
	fixed := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	st, err := local.Init(filepath.Join(dir, ".dso", "vault.enc"), "", false, local.WithClock(func() time.Time { return fixed }))
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func TestSecretSetGetExactBytesFromStdin(t *testing.T) {
	secretTestStore(t)
	tests := []struct {
		name  string
		value string
	}{
		{"plain", "s3cr3t"},
		{"trailing newline kept", "s3cr3t\n"},
		{"NUL bytes", "a\x00b\x00"},
		{"CRLF and spaces", "  x \r\n"},
		{"binary", "\xff\xfe\x00\x80\n"},
		{"PEM", "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("app/v%d", i)
			r := run(t, nil, tt.value, "dso", "secret", "set", key)
			if r.code != 0 {
				t.Fatalf("set: exit %d, stderr %q", r.code, r.err)
			}
			if strings.Contains(r.out+r.err, tt.value) && len(tt.value) > 3 {
				t.Fatalf("set printed the value: %q", r.out+r.err)
			}
			r = run(t, nil, "", "dso", "secret", "get", key)
			if r.code != 0 {
				t.Fatalf("get: exit %d, stderr %q", r.code, r.err)
			}
			if r.out != tt.value {
				t.Fatalf("get returned %q, want exactly %q", r.out, tt.value)
			}
		})
	}
}

func TestSecretSetOutput(t *testing.T) {
	dir, _ := secretTestStore(t)
	r := run(t, nil, "v1", "dso", "secret", "set", "shop/db")
	r2 := run(t, nil, "v2", "dso", "secret", "set", "shop/db")
	got := normalize(r.out+r2.out, dir)
	want := "set \"shop/db\" (version 1, 2 bytes) in $DIR/.dso/vault.enc\nset \"shop/db\" (version 2, 2 bytes) in $DIR/.dso/vault.enc\n"
	if got != want || r.err != "" || r2.err != "" {
		t.Fatalf("output %q (stderr %q %q), want %q", got, r.err, r2.err, want)
	}
}

func TestSecretSetRefusals(t *testing.T) {
	const value = "hunter2-from-argv"
	tests := []struct {
		name  string
		stdin string
		argv  []string
		want  []string
	}{
		{"value as second argument", "", []string{"secret", "set", "app/x", value}, []string{"command line", "stdin"}},
		{"several extra arguments", "", []string{"secret", "set", "app/x", value, value}, []string{"command line"}},
		{"no key", "", []string{"secret", "set"}, []string{"needs the KEY"}},
		{"empty stdin", "", []string{"secret", "set", "app/x"}, []string{"stdin was empty"}},
		{"oversized stdin", strings.Repeat("x", providers.MaxValueSize+1), []string{"secret", "set", "app/x"}, []string{"1 MiB"}},
		{"traversal key", value, []string{"secret", "set", "../x"}, []string{`".."`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, st := secretTestStore(t)
			r := run(t, nil, tt.stdin, append([]string{"dso"}, tt.argv...)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", r.code, r.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr %q does not contain %q", r.err, w)
				}
			}
			if strings.Contains(r.out+r.err, value) {
				t.Errorf("output repeats the value: %q", r.out+r.err)
			}
			if list, err := st.List(""); err != nil || len(list) != 0 {
				t.Errorf("store changed after a refusal: %v %v", list, err)
			}
		})
	}
}

func TestSecretGetOutputFile(t *testing.T) {
	dir, st := secretTestStore(t)
	value := []byte("line1\n\x00tail\n")
	if _, err := st.Set("shop/tls", value); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tls.pem")
	check := func(what string) {
		t.Helper()
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("%s: file holds %q (%v), want %q", what, got, err, value)
		}
		if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %04o, want 0600", what, fi.Mode().Perm())
		}
	}

	r := run(t, nil, "", "dso", "secret", "get", "shop/tls", "--output", out)
	if r.code != 0 || normalize(r.out, dir) != "wrote \"shop/tls\" (version 1, 12 bytes) to $DIR/tls.pem\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	check("new file")

	// An existing file is kept unless --force.
	if err := os.WriteFile(out, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "", "dso", "secret", "get", "shop/tls", "-o", out)
	if r.code != 1 || !strings.Contains(r.err, "already exists") || !strings.Contains(r.err, "--force") {
		t.Fatalf("overwrite without --force: exit %d, stderr %q", r.code, r.err)
	}
	if got, _ := os.ReadFile(out); string(got) != "keep me" {
		t.Fatalf("file was changed without --force: %q", got)
	}
	// --force replaces a world-readable file and leaves it 0600.
	r = run(t, nil, "", "dso", "secret", "get", "shop/tls", "-o", out, "--force")
	if r.code != 0 {
		t.Fatalf("--force: exit %d, stderr %q", r.code, r.err)
	}
	check("forced")

	// A symlink in place of the output is not followed.
	link := filepath.Join(dir, "link.pem")
	target := filepath.Join(dir, "victim")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "", "dso", "secret", "get", "shop/tls", "-o", link)
	if _, err := os.Stat(target); r.code != 1 || err == nil {
		t.Fatalf("symlinked output: exit %d, target written: %v", r.code, err == nil)
	}
}

func TestSecretListAndRm(t *testing.T) {
	dir, st := secretTestStore(t)
	for _, k := range []string{"shop/db", "shop/api_key", "billing/token", "shop/db"} {
		if _, err := st.Set(k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		golden string
		argv   []string
	}{
		{"secret/list", []string{"secret", "list"}},
		{"secret/list-prefix", []string{"secret", "list", "shop/"}},
		{"secret/list-long", []string{"secret", "list", "--long"}},
		{"secret/list-none", []string{"secret", "ls", "nothing/"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			r := run(t, nil, "", append([]string{"dso"}, tt.argv...)...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, tt.golden, r.out)
		})
	}

	r := run(t, nil, "", "dso", "secret", "rm", "shop/db")
	if r.code != 0 || normalize(r.out, dir) != "removed \"shop/db\" from $DIR/.dso/vault.enc\n" {
		t.Fatalf("rm: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	r = run(t, nil, "", "dso", "secret", "rm", "shop/db")
	if r.code != 1 || !strings.Contains(r.err, `key "shop/db": not found`) {
		t.Fatalf("rm of a missing key: exit %d, stderr %q", r.code, r.err)
	}
	r = run(t, nil, "", "dso", "secret", "get", "shop/db")
	if r.code != 1 || !strings.Contains(r.err, "not found") || !strings.Contains(r.err, "secret set shop/db") {
		t.Fatalf("get of a removed key: exit %d, stderr %q", r.code, r.err)
	}
}

func TestSecretStoreSelection(t *testing.T) {
	dir := isolate(t)
	one := localStoresConfig(t, dir, "a")
	two := localStoresConfig(t, dir, "a", "b")
	for _, n := range []string{"a", "b"} {
		if _, err := local.Init(filepath.Join(dir, n, "vault.enc"), "", false); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		argv    []string
		wantErr string
		wantIn  string // store (directory under dir) that must now hold key
		key     string
	}{
		{"only local store of the config", []string{"--config", one, "secret", "set", "k1"}, "", "a", "k1"},
		{"several local stores need --store", []string{"--config", two, "secret", "set", "k2"}, "declares 2 local stores (a, b): pick one with --store NAME", "", ""},
		{"--store picks one", []string{"--config", two, "secret", "--store", "b", "set", "k3"}, "", "b", "k3"},
		{"--store after the verb", []string{"--config", two, "secret", "set", "k4", "--store", "a"}, "", "a", "k4"},
		{"--store naming a vault store", []string{"--config", two, "secret", "--store", "vault", "set", "k5"}, "is not a local store", "", ""},
		{"--store naming nothing", []string{"--config", two, "secret", "--store", "c", "list"}, `no store named "c"; its local stores are: a, b`, "", ""},
		{"--store without a config", []string{"secret", "--store", "a", "list"}, "no config file was found", "", ""},
		{"no config: default store not created yet", []string{"secret", "list"}, "run `docker dso init`", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, nil, "value", append([]string{"dso"}, tt.argv...)...)
			if tt.wantErr != "" {
				if r.code != 1 || !strings.Contains(r.err, tt.wantErr) {
					t.Fatalf("exit %d, stderr %q; want an error containing %q", r.code, r.err, tt.wantErr)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			key := tt.key
			st, err := local.Open(filepath.Join(dir, tt.wantIn, "vault.enc"), "")
			if err != nil {
				t.Fatal(err)
			}
			if e, err := st.Get(key); err != nil || string(e.Value) != "value" {
				t.Fatalf("store %s: Get(%s) = %q, %v", tt.wantIn, key, e.Value, err)
			}
		})
	}
}

func TestSecretHelpGolden(t *testing.T) {
	isolate(t)
	plugin := map[string]string{originalCLICommandEnv: "docker"}
	tests := []struct {
		golden string
		env    map[string]string
		argv   []string
	}{
		{"secret/help", nil, []string{"dso", "secret", "--help"}},
		{"secret/help-set", nil, []string{"dso", "secret", "set", "--help"}},
		{"secret/help-set-plugin", plugin, []string{"docker-dso", "dso", "secret", "set", "--help"}},
		{"secret/help-get", nil, []string{"dso", "secret", "get", "--help"}},
		{"secret/help-list", nil, []string{"dso", "secret", "list", "--help"}},
		{"secret/help-rm", nil, []string{"dso", "secret", "rm", "--help"}},
		{"init/help", nil, []string{"dso", "init", "--help"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			r := run(t, tc.env, "", tc.argv...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, tc.golden, r.out)
		})
	}
}
