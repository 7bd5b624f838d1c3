package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// inlineValues are the credential values the legacy corpus writes inline.
// None of them may ever appear in converted output, a warning or an error.
var inlineValues = []string{
	"hvs.not-a-real-token", "hvs.inline-token", "AKIAEXAMPLENOTREAL", "wJalrXUtnFEMI", "not-a-real-client-secret",
	"example-webhook-token", "never-copied",
}

// TestLegacyCorpus converts every file of testdata/legacy. Files named
// *-error-* must fail, and their golden file is the error list; the others
// must convert, and their golden file is the converted YAML. A converted
// file must load without errors into exactly the objects the loader builds
// in memory from the old file, with the same notes.
func TestLegacyCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/legacy/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("legacy corpus has %d files, want at least 8", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wantErrors := strings.Contains(name, "-error-")
			m, errs := Migrate(name, data)
			if !m.Legacy {
				t.Fatal("not detected as the older schema")
			}
			inMemory, loadErrs := parseClosedFile(name, data)

			var got string
			switch {
			case wantErrors && len(errs) == 0:
				t.Fatalf("converted without errors; a *-error-* file must fail:\n%s", m.YAML)
			case !wantErrors && len(errs) > 0:
				t.Fatalf("conversion failed:\n%v", errs)
			case wantErrors:
				got = errs.Error() + "\n"
				for _, e := range errs {
					if e.File != name || e.Line == 0 {
						t.Errorf("error without file:line: %q", e.Error())
					}
				}
				// The loader reports exactly what migrate reports.
				if loadErrs.Error() != errs.Error() {
					t.Errorf("loader errors differ from migrate's:\n--- loader\n%v\n--- migrate\n%v", loadErrs, errs)
				}
				if len(inMemory.Warnings) == 0 || !strings.Contains(inMemory.Warnings[0].Error(), "could not be converted") {
					t.Errorf("loader warnings lack the could-not-convert headline: %v", inMemory.Warnings)
				}
			default:
				got = string(m.YAML)
				back, perrs := parseClosedFile("migrated-"+name, m.YAML)
				if len(perrs) > 0 {
					t.Fatalf("the converted file does not load:\n%v\n%s", perrs, m.YAML)
				}
				if len(back.Warnings) != 0 {
					t.Errorf("the converted file still gives warnings: %v", back.Warnings)
				}
				if len(loadErrs) > 0 {
					t.Fatalf("the loader rejects the old file that migrate converts:\n%v", loadErrs)
				}
				if !reflect.DeepEqual(inMemory.Agent, back.Agent) {
					t.Errorf("AgentConfig differs between the in-memory conversion and the migrated file:\n%+v\n%+v", inMemory.Agent.Spec, back.Agent.Spec)
				}
				if !reflect.DeepEqual(inMemory.Stores, back.Stores) {
					t.Errorf("stores differ:\n%+v\n%+v", inMemory.Stores, back.Stores)
				}
				if !reflect.DeepEqual(inMemory.Bindings, back.Bindings) {
					t.Errorf("bindings differ:\n%+v\n%+v", inMemory.Bindings, back.Bindings)
				}
				want := legacyHeadline(name, false).Error()
				if len(inMemory.Warnings) == 0 || inMemory.Warnings[0].Error() != want {
					t.Errorf("first loader warning = %v, want %q", inMemory.Warnings, want)
				} else if ErrorList(inMemory.Warnings[1:]).Error() != ErrorList(m.Warnings).Error() {
					t.Errorf("loader notes differ from migrate's:\n%v\n%v", inMemory.Warnings[1:], m.Warnings)
				}
				if m.Stores != len(back.Stores) || m.Bindings != len(back.Bindings) {
					t.Errorf("counts %d/%d, file has %d/%d", m.Stores, m.Bindings, len(back.Stores), len(back.Bindings))
				}
			}
			for _, w := range m.Warnings {
				if w.File != name || w.Line == 0 || w.Field == "" {
					t.Errorf("warning without file:line: field: %q", w.Error())
				}
			}
			all := got + ErrorList(m.Warnings).Error() + loadErrs.Error()
			for _, v := range inlineValues {
				if strings.Contains(all, v) {
					t.Errorf("an inline credential value (%s...) was echoed:\n%s", v[:6], all)
				}
			}

			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/config -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestIsLegacyNode(t *testing.T) {
	tests := []struct {
		doc  string
		want bool
	}{
		{"providers: {a: {type: vault}}\n", true},
		{"secrets: []\n", true},
		{"provider: vault\nconfig: {address: x}\n", true},
		{"provider: vault\n", false}, // provider: alone is not enough
		{"agent: {cache: {ttl: 1h}}\n", false},
		{"apiVersion: dso.dev/v1alpha1\nkind: SecretStore\nproviders: {}\n", false},
		{"kind: AgentConfig\nsecrets: []\n", false},
		{"- providers\n", false},
		{"", false},
	}
	for _, tt := range tests {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tt.doc), &n); err != nil {
			t.Fatal(err)
		}
		if got := isLegacyNode(&n); got != tt.want {
			t.Errorf("isLegacyNode(%q) = %v, want %v", tt.doc, got, tt.want)
		}
	}
}

func TestLegacyObjectName(t *testing.T) {
	c := &legacyConv{names: map[string]bool{}}
	tests := []struct{ old, want string }{
		{"prod/db/credentials", "prod-db-credentials"},
		{"prod/db/credentials", "prod-db-credentials-2"},
		{"Prod_DB.credentials", "prod-db-credentials-3"},
		{"arn:aws:secretsmanager:eu-west-1:123:secret:shop/mysql-AbC", "shop-mysql-abc"},
		{"///", "fallback"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{strings.Repeat("a", 70), strings.Repeat("a", 61) + "-2"},
		{"-lead-and-trail-", "lead-and-trail"},
	}
	for _, tt := range tests {
		if got := c.objectName("binding", tt.old, "fallback"); got != tt.want {
			t.Errorf("objectName(%q) = %q, want %q", tt.old, got, tt.want)
		}
	}
	if got := c.objectName("store", "prod/db/credentials", "x"); got != "prod-db-credentials" {
		t.Errorf("names are unique per kind only; got %q", got)
	}
}

func TestDeriveEnvName(t *testing.T) {
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"stripe-api-key", "STRIPE_API_KEY", true},
		{"MYSQL-ROOT-PASSWORD", "MYSQL_ROOT_PASSWORD", true},
		{"db.pass", "DB_PASS", true},
		{"prod/db", "", false},
		{"arn:aws:x", "", false},
		{"9lives", "", false},
		{"has space", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := deriveEnvName(tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("deriveEnvName(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

// TestLoadLegacyFile checks the loader's side: a file in the older schema
// loads, and the first warning is the headline naming the file and the
// migrate command.
func TestLoadLegacyFile(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/legacy/02-v1-vault.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := write(t, filepath.Join(dir, "dso.yaml"), string(data))
	b, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg + ` uses the older DSO schema; it was converted in memory: run "docker dso migrate -f ` + cfg + `" to rewrite it`
	if len(b.Warnings) == 0 || b.Warnings[0].Error() != want {
		t.Fatalf("warnings = %v, want first %q", b.Warnings, want)
	}
	if len(b.Stores) != 1 || b.Stores[0].Spec.Vault.Auth.Token.FromEnv != "VAULT_TOKEN" || len(b.Bindings) != 1 {
		t.Errorf("bundle: %+v %+v", b.Stores, b.Bindings)
	}
	if b.Agent.Spec.Agent.Watch.PollingInterval.D().String() != "20s" {
		t.Errorf("polling interval = %v", b.Agent.Spec.Agent.Watch.PollingInterval)
	}
	if got := b.Origins["secretbinding/mysql"]; got != cfg+":20" {
		t.Errorf("origin = %q, want the old secret's line %s:20", got, cfg)
	}
}

// TestLoadLegacyBindingsFile: an older-schema file in a bindings folder that
// sets agent settings is refused at the old field, not at a kind: the file
// does not have.
func TestLoadLegacyBindingsFile(t *testing.T) {
	dir := t.TempDir()
	bd := filepath.Join(dir, "bindings.d")
	if err := os.Mkdir(bd, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := write(t, filepath.Join(dir, "dso.yaml"), "apiVersion: dso.dev/v1alpha1\nkind: AgentConfig\nspec:\n  bindings: {dirs: ["+bd+"]}\n")
	old := write(t, filepath.Join(bd, "old.yaml"), "providers:\n  v: {type: file, config: {path: /srv/s}}\nagent:\n  watch: {polling_interval: 1m}\nsecrets:\n  - {name: k, mappings: {p: P}, targets: {containers: [c]}}\n")
	b, err := Load(cfg)
	var errs ErrorList
	errors.As(err, &errs)
	if len(errs) != 1 || errs[0].File != old || errs[0].Line != 3 || errs[0].Field != "agent" || !strings.Contains(errs[0].Msg, "belongs in the config file") {
		t.Errorf("errors = %v; want one at %s:3: agent", err, old)
	}
	if want := legacyHeadline(old, true).Error(); b == nil || len(b.Warnings) == 0 || b.Warnings[0].Error() != want {
		t.Errorf("warnings = %v; want first %q", b.Warnings, want)
	}
}

// TestLoadLegacyHeadlineOnce: a file with two older-schema documents gets
// one headline, not one per document.
func TestLoadLegacyHeadlineOnce(t *testing.T) {
	doc := "providers:\n  v%d: {type: file, config: {path: /srv/s}}\nsecrets:\n  - {name: k%d, mappings: {p: P}, targets: {containers: [c]}}\n"
	b, errs := ParseFile("two.yaml", []byte(fmt.Sprintf(doc, 1, 1)+"---\n"+fmt.Sprintf(doc, 2, 2)))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	n := 0
	for _, w := range b.Warnings {
		if strings.Contains(w.Error(), "uses the older DSO schema") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d headlines, want 1: %v", n, b.Warnings)
	}
}

func TestMigrateNewSchemaFile(t *testing.T) {
	data, err := os.ReadFile("../../config/samples/bindings/api-db.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, errs := Migrate("api-db.yaml", data)
	if m.Legacy || len(errs) > 0 || m.YAML != nil {
		t.Errorf("a new-schema file: legacy=%v errs=%v", m.Legacy, errs)
	}
}

// FuzzLegacy feeds arbitrary bytes to the converter: it must never panic,
// every problem must name the file, and whatever it converts must load.
func FuzzLegacy(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/legacy/*.yaml")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("providers: &p {a: {type: vault, config: *p}}\nsecrets: [*p, *p]\n"))
	f.Add([]byte("secrets:\n- &s {name: a, mappings: {x: X}, targets: {containers: [a]}}\n- *s\nproviders: {v: {type: file, config: {path: /x}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, errs := Migrate("fuzz.yaml", data)
		for _, e := range append(errs, m.Warnings...) {
			if e.File != "fuzz.yaml" {
				t.Fatalf("problem without the file name: %q", e.Error())
			}
		}
		if len(errs) == 0 && m.YAML != nil {
			if _, perrs := parseClosedFile("out.yaml", m.YAML); len(perrs) > 0 {
				t.Fatalf("converted output does not load:\n%v\n%s", perrs, m.YAML)
			}
		}
		if b, _ := ParseFile("fuzz.yaml", data); b == nil {
			t.Fatal("ParseFile returned no bundle")
		}
	})
}
