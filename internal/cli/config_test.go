package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretValue is set as the value of the token variable the fixture refers
// to. It must never be printed: config commands show references only.
const secretValue = "s3cr3t-token-value-7f1c"

// normalize replaces the temporary directory in output with $DIR so that
// golden files do not depend on where the test ran.
func normalize(s, dir string) string { return strings.ReplaceAll(s, dir, "$DIR") }

func TestConfigShow(t *testing.T) {
	dir := isolate(t)
	t.Setenv("DSO_TEST_VAULT_TOKEN", secretValue)
	cfg := copyFixture(t, dir, "valid.yaml")
	// A bindings folder, so that show lists an object from a second file.
	if err := os.Mkdir(filepath.Join(dir, "bindings.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFixture(t, filepath.Join(dir, "bindings.d"), "extra-binding.yaml")

	tests := []struct {
		name   string
		env    string // $DSO_CONFIG
		argv   []string
		source string
	}{
		{"flag", "", []string{"dso", "--config", cfg, "config", "show"}, "(--config)"},
		{"env", cfg, []string{"dso", "config", "show"}, "($DSO_CONFIG)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DSO_CONFIG", tc.env)
			r := run(t, nil, "", tc.argv...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			first, _, _ := strings.Cut(r.out, "\n")
			if want := "# config file: " + cfg + " " + tc.source; first != want {
				t.Errorf("first line = %q, want %q", first, want)
			}
			if strings.Contains(r.out, secretValue) {
				t.Fatalf("config show printed the value of a credential reference")
			}
			if tc.name == "flag" {
				golden(t, "config-show/valid", normalize(r.out, dir))
			}
		})
	}
}

// The operations guide's `docker dso config show | grep -A 5 providers`
// must show the stores.
func TestConfigShowGrepProviders(t *testing.T) {
	dir := isolate(t)
	cfg := copyFixture(t, dir, "valid.yaml")
	r := run(t, nil, "", "dso", "--config", cfg, "config", "show")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	lines := strings.Split(r.out, "\n")
	for i, l := range lines {
		if !strings.Contains(l, "providers") {
			continue
		}
		after := strings.Join(lines[i:min(i+6, len(lines))], "\n")
		for _, want := range []string{"vault: vault http://127.0.0.1:8200", "local: local /var/lib/dso/vault.enc"} {
			if !strings.Contains(after, want) {
				t.Errorf("grep -A 5 providers lacks %q:\n%s", want, after)
			}
		}
		return
	}
	t.Fatalf("no line mentions providers:\n%s", r.out)
}

func TestConfigValidate(t *testing.T) {
	dir := isolate(t)
	valid := copyFixture(t, dir, "valid.yaml")
	extra := copyFixture(t, dir, "extra-binding.yaml")
	unknown := copyFixture(t, dir, "invalid-unknown-field.yaml")
	several := copyFixture(t, dir, "invalid-several.yaml")

	tests := []struct {
		name     string
		argv     []string
		wantCode int
	}{
		{"valid", []string{"dso", "--config", valid, "config", "validate"}, 0},
		{"valid-files", []string{"dso", "config", "validate", "-f", valid, "-f", extra}, 0},
		{"unknown-field", []string{"dso", "--config", unknown, "config", "validate"}, 1},
		{"several-errors", []string{"dso", "config", "validate", "-f", several}, 1},
		{"errors-across-files", []string{"dso", "config", "validate", "-f", unknown, "-f", several}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, "", tc.argv...)
			if r.code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tc.wantCode, r.err)
			}
			if tc.wantCode == 0 {
				if !strings.HasPrefix(r.out, "configuration is valid") || r.err != "" {
					t.Errorf("stdout %q stderr %q, want \"configuration is valid...\" only", r.out, r.err)
				}
			} else {
				if r.out != "" {
					t.Errorf("stdout = %q, want nothing", r.out)
				}
				// One "file:line: field: msg" line per error, then one Error: line.
				sc := bufio.NewScanner(strings.NewReader(r.err))
				for sc.Scan() {
					l := sc.Text()
					if !strings.HasPrefix(l, "Error: ") && !strings.HasPrefix(l, dir+"/") {
						t.Errorf("stderr line %q is neither an error location nor the final Error: line", l)
					}
				}
			}
			golden(t, "config-validate/"+tc.name, normalize("stdout:\n"+r.out+"stderr:\n"+r.err, dir))
		})
	}
}

// editorScript returns an $EDITOR value running testdata/editor.sh in mode.
// Going through "sh" with an argument also exercises the word splitting.
func editorScript(t *testing.T, mode string) string {
	t.Helper()
	p := filepath.Join(testdata, "editor.sh")
	return "sh '" + p + "' " + mode
}

func TestConfigEdit(t *testing.T) {
	tests := []struct {
		name        string
		mode        string
		force       bool
		terminal    bool
		stdin       string
		wantCode    int
		wantContent string // "" = the original must be unchanged
		wantBackup  bool
		wantOut     string
		wantErr     string
	}{
		{name: "valid edit installs and keeps .bak", mode: "valid", wantContent: "parallelism: 4", wantBackup: true, wantOut: "updated (previous version kept as"},
		{name: "invalid edit leaves the original", mode: "invalid", wantCode: 1, wantErr: "was left unchanged"},
		{name: "--force installs an invalid edit", mode: "invalid", force: true, wantContent: "parallelism: many", wantBackup: true, wantErr: "--force"},
		{name: "no change", mode: "noop", wantOut: "no changes"},
		{name: "editor fails", mode: "fail", wantCode: 1, wantErr: "exited with exit status 3"},
		{name: "terminal: re-edit fixes it", mode: "invalid-then-valid", terminal: true, stdin: "\n", wantContent: "parallelism: 4", wantBackup: true, wantOut: "re-edit? [Y/n]"},
		{name: "terminal: answer no", mode: "invalid", terminal: true, stdin: "n\n", wantCode: 1, wantOut: "re-edit? [Y/n]", wantErr: "was left unchanged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			cfg := copyFixture(t, dir, "valid.yaml")
			orig, _ := os.ReadFile(cfg)
			t.Setenv("VISUAL", "")
			t.Setenv("EDITOR", editorScript(t, tc.mode))
			t.Setenv("DSO_TEST_EDITOR_STATE", filepath.Join(t.TempDir(), "ran-once"))
			stdinIsTerminal = func(any) bool { return tc.terminal }
			t.Cleanup(func() { stdinIsTerminal = isTerminal })

			argv := []string{"dso", "--config", cfg, "config", "edit"}
			if tc.force {
				argv = append(argv, "--force")
			}
			r := run(t, nil, tc.stdin, argv...)
			if r.code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, r.out, r.err)
			}
			if !strings.Contains(r.out, tc.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", r.out, tc.wantOut)
			}
			if !strings.Contains(r.err, tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", r.err, tc.wantErr)
			}
			got, _ := os.ReadFile(cfg)
			if tc.wantContent == "" {
				if string(got) != string(orig) {
					t.Errorf("config file changed, want it untouched:\n%s", got)
				}
			} else if !strings.Contains(string(got), tc.wantContent) {
				t.Errorf("config file lacks %q:\n%s", tc.wantContent, got)
			}
			bak, err := os.ReadFile(cfg + ".bak")
			switch {
			case tc.wantBackup && err != nil:
				t.Errorf("no backup: %v", err)
			case tc.wantBackup && string(bak) != string(orig):
				t.Errorf("backup is not the previous file:\n%s", bak)
			case !tc.wantBackup && err == nil:
				t.Errorf("a backup was written though nothing was installed")
			}
			if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("config mode = %v (%v), want the original 0640", fi.Mode().Perm(), err)
			}
			// Errors about the edited copy name the real file, never the
			// temporary one, and no temporary file is left behind.
			if strings.Contains(r.err, ".edit-") {
				t.Errorf("stderr names the temporary copy:\n%s", r.err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left in the config directory", e.Name())
				}
			}
		})
	}
}

func TestConfigEditNeedsAFile(t *testing.T) {
	isolate(t)
	if _, err := os.Stat("/etc/dso/dso.yaml"); err == nil {
		t.Skip("/etc/dso/dso.yaml exists on this host; the built-in-defaults case cannot be reached")
	}
	r := run(t, nil, "", "dso", "config", "edit")
	if r.code != 1 || !strings.Contains(r.err, "no config file to edit") {
		t.Errorf("exit %d, stderr %q; want 1 and \"no config file to edit\"", r.code, r.err)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"vi", []string{"vi"}, false},
		{"  code   --wait ", []string{"code", "--wait"}, false},
		{`"/opt/My Editor/edit" -w`, []string{"/opt/My Editor/edit", "-w"}, false},
		{`'it''s' x`, []string{"its", "x"}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`emacs -nw ""`, []string{"emacs", "-nw", ""}, false},
		{`'$HOME' "$HOME"`, []string{"$HOME", "$HOME"}, false},
		{`"unterminated`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := splitWords(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("splitWords(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEditorCommand(t *testing.T) {
	tests := []struct {
		name   string
		visual string
		editor string
		want   string
	}{
		{"VISUAL wins", "code --wait", "nano", "code|--wait"},
		{"EDITOR next", "", "nano -w", "nano|-w"},
		{"blank VISUAL is ignored", "   ", "nano", "nano"},
		{"vi last", "", "", "vi"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"VISUAL": tc.visual, "EDITOR": tc.editor}
			got, err := editorCommand(func(k string) string { return env[k] })
			if err != nil || strings.Join(got, "|") != tc.want {
				t.Errorf("editorCommand = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// A credential written inline by mistake passes through the loader and the
// commands' error paths: its value must appear in none of their output.
func TestConfigCommandsNeverEchoInlineCredentials(t *testing.T) {
	const value = "hunter2-inline-plaintext"
	dir := isolate(t)
	cfg := copyFixture(t, dir, "invalid-inline-credential.yaml")
	t.Setenv("VISUAL", "")
	t.Setenv("EDITOR", "sh -c 'echo \"# touched\" >> \"$0\"'")
	for _, argv := range [][]string{
		{"dso", "--config", cfg, "config", "validate"},
		{"dso", "config", "validate", "-f", cfg},
		{"dso", "--config", cfg, "config", "show"},
		{"dso", "--config", cfg, "config", "edit"},
	} {
		r := run(t, nil, "", argv...)
		if r.code != 1 {
			t.Errorf("%v: exit %d, want 1 (the file is invalid)", argv[1:], r.code)
		}
		if strings.Contains(r.out+r.err, value) {
			t.Errorf("%v printed the inline credential:\n%s%s", argv[1:], r.out, r.err)
		}
		if !strings.Contains(r.err, "spec.vault.auth.token") {
			t.Errorf("%v: the error does not name the field:\n%s", argv[1:], r.err)
		}
	}
}
