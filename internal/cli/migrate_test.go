package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// legacyCorpus is the converter's corpus in internal/config: the CLI tests
// run the same files through the command.
var legacyCorpus = filepath.Join(testdata, "..", "..", "config", "testdata", "legacy")

// copyLegacy copies a file of the legacy corpus into dir.
func copyLegacy(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(legacyCorpus, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMigrate(t *testing.T) {
	tests := []struct {
		name     string
		fixture  string // a legacy corpus file, or config/<name> for the CLI's fixtures
		argv     func(path string) []string
		wantCode int
	}{
		{"stdout", "01-v2-multi-provider.yaml", func(p string) []string { return []string{"dso", "migrate", "-f", p} }, 0},
		{"resolved-config", "02-v1-vault.yaml", func(p string) []string { return []string{"dso", "--config", p, "migrate"} }, 0},
		{"errors", "15-error-structure.yaml", func(p string) []string { return []string{"dso", "migrate", "-f", p} }, 1},
		{"new-schema", "config/valid.yaml", func(p string) []string { return []string{"dso", "migrate", "-f", p} }, 0},
		{"new-schema-invalid", "config/invalid-unknown-field.yaml", func(p string) []string { return []string{"dso", "migrate", "-f", p} }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			var path string
			if f, ok := strings.CutPrefix(tc.fixture, "config/"); ok {
				path = copyFixture(t, dir, f)
			} else {
				path = copyLegacy(t, dir, tc.fixture)
			}
			r := run(t, nil, "", tc.argv(path)...)
			if r.code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tc.wantCode, r.err)
			}
			if tc.wantCode != 0 && r.out != "" {
				t.Errorf("stdout = %q, want nothing on failure", r.out)
			}
			for _, v := range []string{"hvs.not-a-real-token", "AKIAEXAMPLE"} {
				if strings.Contains(r.out+r.err, v) {
					t.Errorf("an inline credential was printed")
				}
			}
			golden(t, "migrate/"+tc.name, normalize("stdout:\n"+r.out+"stderr:\n"+r.err, dir))
		})
	}
}

// TestMigrateNotYAML: a file the YAML parser rejects (a tab in the
// indentation of an old config) is an error, never "already in the new
// schema, nothing to do".
func TestMigrateNotYAML(t *testing.T) {
	dir := isolate(t)
	src := filepath.Join(dir, "dso.yaml")
	if err := os.WriteFile(src, []byte("providers:\n  v:\n\ttype: vault\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "new.yaml")
	r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", out)
	if r.code != 1 || !strings.Contains(r.err, src+":3: invalid YAML") || !strings.Contains(r.err, "cannot be read") || strings.Contains(r.err, "nothing to do") {
		t.Errorf("exit %d, stderr %q; want the YAML error and exit 1", r.code, r.err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a file was written for a file that cannot be read")
	}
}

// TestMigrateOutputSymlink: -o through a symlink replaces its target with
// --force (the .bak next to the target); a dangling one is refused rather
// than replaced by a regular file.
func TestMigrateOutputSymlink(t *testing.T) {
	dir := isolate(t)
	src := copyLegacy(t, dir, "05-file-inject.yaml")
	target := filepath.Join(dir, "real.yaml")
	link := filepath.Join(dir, "dso.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", link)
	if r.code != 1 || !strings.Contains(r.err, "is a symlink to "+target+", which does not exist") {
		t.Errorf("dangling: exit %d, stderr %q", r.code, r.err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced (%v)", err)
	}
	if err := os.WriteFile(target, []byte("# before\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "", "dso", "migrate", "-f", src, "-o", link, "--force")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("--force replaced the symlink instead of its target (%v)", err)
	}
	if bak, _ := os.ReadFile(target + ".bak"); string(bak) != "# before\n" {
		t.Errorf("target .bak = %q", bak)
	}
	if v := run(t, nil, "", "dso", "config", "validate", "-f", link); v.code != 0 || v.err != "" {
		t.Errorf("validate through the link: exit %d, stderr %q", v.code, v.err)
	}
}

// TestMigrateInPlace: -o naming the -f file needs --force, keeps the old
// file as .bak, and a second run finds nothing to do and keeps that .bak.
func TestMigrateInPlace(t *testing.T) {
	dir := isolate(t)
	src := copyLegacy(t, dir, "02-v1-vault.yaml")
	orig, _ := os.ReadFile(src)
	if r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", src); r.code != 1 || !strings.Contains(r.err, "pass --force") {
		t.Errorf("without --force: exit %d, stderr %q", r.code, r.err)
	}
	for i := 0; i < 2; i++ {
		if r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", src, "--force"); r.code != 0 {
			t.Fatalf("run %d: exit %d, stderr %q", i+1, r.code, r.err)
		}
		if bak, _ := os.ReadFile(src + ".bak"); string(bak) != string(orig) {
			t.Errorf("run %d: .bak is not the old file", i+1)
		}
	}
	if v := run(t, nil, "", "dso", "config", "validate", "-f", src); v.code != 0 || v.err != "" {
		t.Errorf("validate: exit %d, stderr %q", v.code, v.err)
	}
}

func TestMigrateOutputDirMissing(t *testing.T) {
	dir := isolate(t)
	src := copyLegacy(t, dir, "05-file-inject.yaml")
	out := filepath.Join(dir, "nodir", "dso.yaml")
	r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", out)
	if want := "Error: cannot write " + out + ": the directory " + filepath.Dir(out) + " does not exist\n"; r.code != 1 || !strings.HasSuffix(r.err, want) {
		t.Errorf("exit %d, stderr %q; want it to end with %q", r.code, r.err, want)
	}
}

func TestMigrateNoConfigFile(t *testing.T) {
	isolate(t)
	r := run(t, nil, "", "dso", "migrate")
	if r.code != 1 || !strings.Contains(r.err, "no config file to migrate") {
		t.Errorf("exit %d, stderr %q", r.code, r.err)
	}
}

// TestMigrateOutputFile covers -o: a new file is 0600 and holds what
// stdout would; an existing file is kept without --force and backed up with
// it; and the written file validates without a warning.
func TestMigrateOutputFile(t *testing.T) {
	dir := isolate(t)
	src := copyLegacy(t, dir, "05-file-inject.yaml")
	out := filepath.Join(dir, "new", "dso.yaml")
	if err := os.Mkdir(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	want := run(t, nil, "", "dso", "migrate", "-f", src).out

	r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if wantOut := "wrote " + out + " (1 store, 3 bindings) from " + src + "\ncheck it with: dso config validate -f " + out + "\n"; r.out != wantOut {
		t.Errorf("stdout = %q, want %q", r.out, wantOut)
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != want {
		t.Fatalf("written file differs from the stdout output (%v):\n%s", err, got)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}

	// An existing file stays untouched without --force.
	if err := os.WriteFile(out, []byte("# hand-written\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "", "dso", "migrate", "-f", src, "-o", out)
	if r.code != 1 || !strings.Contains(r.err, "exists: pass --force to replace it") {
		t.Errorf("exit %d, stderr %q; want a refusal", r.code, r.err)
	}
	if got, _ := os.ReadFile(out); string(got) != "# hand-written\n" {
		t.Errorf("file changed without --force:\n%s", got)
	}
	if _, err := os.Stat(out + ".bak"); err == nil {
		t.Errorf("a .bak was written though nothing was replaced")
	}

	// --force replaces it and keeps the previous version.
	r = run(t, nil, "", "dso", "migrate", "-f", src, "-o", out, "--force")
	if r.code != 0 || !strings.Contains(r.out, "the previous version is kept as "+out+".bak") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	if got, _ := os.ReadFile(out); string(got) != want {
		t.Errorf("--force did not install the converted file:\n%s", got)
	}
	if bak, _ := os.ReadFile(out + ".bak"); string(bak) != "# hand-written\n" {
		t.Errorf(".bak is not the previous file:\n%s", bak)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after --force = %v, want 0600", st.Mode().Perm())
	}

	r = run(t, nil, "", "dso", "config", "validate", "-f", out)
	if r.code != 0 || r.err != "" {
		t.Errorf("the written file does not validate cleanly: exit %d, stderr %q", r.code, r.err)
	}
}

// corpusCredentials are the inline credential values of the legacy corpus:
// migrate and config validate never print or write them.
var corpusCredentials = []string{
	"hvs.not-a-real-token", "hvs.inline-token", "AKIAEXAMPLENOTREAL", "wJalrXUtnFEMI", "not-a-real-client-secret",
	"example-webhook-token", "never-copied",
}

// TestMigrateEveryCorpusFile migrates each convertible file of the corpus
// with -o and checks the result with `config validate`: valid, and no
// longer in the older schema (no warning).
func TestMigrateEveryCorpusFile(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(legacyCorpus, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus (%v)", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			dir := isolate(t)
			src := copyLegacy(t, dir, name)
			out := filepath.Join(dir, "migrated.yaml")
			r := run(t, nil, "", "dso", "migrate", "-f", src, "-o", out)
			if strings.Contains(name, "-error-") {
				if r.code != 1 || !strings.Contains(r.err, "cannot be converted") {
					t.Errorf("exit %d, stderr %q; want a conversion failure", r.code, r.err)
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("a file was written for a failed conversion")
				}
				return
			}
			old := run(t, nil, "", "dso", "config", "validate", "-f", src)
			written, _ := os.ReadFile(out)
			for _, v := range corpusCredentials {
				if strings.Contains(r.out+r.err+old.out+old.err+string(written), v) {
					t.Errorf("an inline credential (%s...) was printed or written", v[:6])
				}
			}
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.err)
			}
			v := run(t, nil, "", "dso", "config", "validate", "-f", out)
			if v.code != 0 || v.err != "" || !strings.HasPrefix(v.out, "configuration is valid") {
				t.Errorf("migrated file: exit %d, stdout %q, stderr %q", v.code, v.out, v.err)
			}
		})
	}
}

// TestConfigValidateLegacyFile: config validate accepts a file in the
// older schema and says on stderr that it was converted and how to rewrite
// it.
func TestConfigValidateLegacyFile(t *testing.T) {
	dir := isolate(t)
	src := copyLegacy(t, dir, "02-v1-vault.yaml")
	r := run(t, nil, "", "dso", "config", "validate", "-f", src)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.err)
	}
	first, _, _ := strings.Cut(r.err, "\n")
	if want := "Warning: " + src + ` uses the older DSO schema; it was converted in memory: run "docker dso migrate -f ` + src + `" to rewrite it`; first != want {
		t.Errorf("first stderr line = %q, want %q", first, want)
	}
	golden(t, "config-validate/legacy", normalize("stdout:\n"+r.out+"stderr:\n"+r.err, dir))

	bad := copyLegacy(t, dir, "11-error-no-targets.yaml")
	r = run(t, nil, "", "dso", "config", "validate", "-f", bad)
	if r.code != 1 || !strings.Contains(r.err, "uses the older DSO schema and could not be converted") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.err)
	}
	golden(t, "config-validate/legacy-errors", normalize("stdout:\n"+r.out+"stderr:\n"+r.err, dir))
}

func TestMigrateHelp(t *testing.T) {
	isolate(t)
	r := run(t, nil, "", "dso", "migrate", "--help")
	if r.code != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	golden(t, "help/migrate", r.out)
}

// TestConfigShowLegacyFile: config show of an older-schema file prints the
// converted configuration on stdout (still YAML for pipes) and says on
// stderr that the file was converted in memory.
func TestConfigShowLegacyFile(t *testing.T) {
	dir := isolate(t)
	src := copyLegacy(t, dir, "02-v1-vault.yaml")
	r := run(t, nil, "", "dso", "--config", src, "config", "show")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.err)
	}
	if !strings.Contains(r.err, "uses the older DSO schema; it was converted in memory") {
		t.Errorf("stderr lacks the conversion warning:\n%s", r.err)
	}
	if strings.Contains(r.out, "Warning") || !strings.Contains(r.out, "kind: SecretStore") {
		t.Errorf("stdout is not the converted YAML alone:\n%s", r.out)
	}
	if strings.Contains(r.out+r.err, "hvs.not-a-real-token") {
		t.Error("the inline token of the old file was printed")
	}
}
