package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/invalid")

// parseClosed is what `config validate` does for one self-contained file:
// ParseFile plus the cross-document store reference check.
func parseClosed(name string, data []byte) (*Bundle, ErrorList) {
	docs, errs := parseDocuments(name, data)
	b, more := assemble(docs)
	errs = append(errs, more...)
	errs = append(errs, checkStoreRefs(b, docs)...)
	errs.sort()
	return b, errs
}

func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 35 {
		t.Fatalf("invalid corpus has %d files, want at least 35", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, errs := parseClosed(filepath.Base(f), data)
			if len(errs) == 0 {
				t.Fatal("file loaded without errors; every file of testdata/invalid must fail")
			}
			got := errs.Error() + "\n"
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
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
			// Every error names a file and a line: that is the contract.
			for _, e := range errs {
				if e.File == "" || e.Line == 0 {
					t.Errorf("error without file:line: %q", e.Error())
				}
			}
		})
	}
}

func validFiles(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var paths []string
	for _, pat := range []string{"testdata/valid/*.yaml", "../../config/samples/*/*.yaml", "../../config/samples/*.yaml", "../../config/dso.yaml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = data
	}
	// The quickstart template is rendered by a script that replaces @DIR@
	// with an absolute directory; check it the way it will be loaded.
	if tmpl, err := os.ReadFile("../../config/samples/quickstart/dso.yaml.tmpl"); err == nil {
		out["quickstart/dso.yaml.tmpl"] = []byte(strings.ReplaceAll(string(tmpl), "@DIR@", "/tmp/dso-quickstart"))
	}
	return out
}

func TestValidCorpus(t *testing.T) {
	files := validFiles(t)
	for _, must := range []string{"testdata/valid/guide-common-config-changes.yaml", "../../config/samples/bindings/api-db.yaml", "../../config/dso.yaml"} {
		if _, ok := files[must]; !ok {
			t.Errorf("%s is missing from the valid corpus", must)
		}
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			if _, errs := parseClosed(name, data); len(errs) > 0 {
				t.Errorf("valid file rejected:\n%v", errs)
			}
		})
	}
}

// TestGuideSnippets checks that the operations guide's plain snippets mean
// what the guide says: the written keys change, the rest keeps its default.
func TestGuideSnippets(t *testing.T) {
	tests := []struct {
		file  string
		check func(s v1alpha1.AgentSettings) bool
	}{
		{"guide-common-config-changes.yaml", func(s v1alpha1.AgentSettings) bool {
			return *s.Cache.MaxSize == 1<<30 && s.Rotation.Timeout.D() == 15*time.Second &&
				s.Watch.PollingInterval.D() == 15*time.Minute && s.Cache.TTL.D() == time.Hour && *s.Rotation.Parallelism == 2
		}},
		{"guide-performance-tuning.yaml", func(s v1alpha1.AgentSettings) bool {
			return s.Cache.TTL.D() == 8*time.Hour && *s.Cache.MaxSize == 2<<30 && s.Watch.PollingInterval.D() == 30*time.Minute &&
				s.Watch.DebounceWindow.D() == 10*time.Second && s.Rotation.Timeout.D() == 45*time.Second && *s.Rotation.Parallelism == 3
		}},
		{"guide-increase-cache.yaml", func(s v1alpha1.AgentSettings) bool {
			return *s.Cache.MaxSize == 1<<30 && s.Watch.DebounceWindow.D() == 5*time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/valid/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			b, errs := ParseFile(tt.file, data)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if !tt.check(b.Agent.Spec.Agent) {
				t.Errorf("unexpected settings: %+v", b.Agent.Spec.Agent)
			}
		})
	}
}

func TestCanonicalExampleDecodes(t *testing.T) {
	data, err := os.ReadFile("../../config/samples/bindings/api-db.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, errs := ParseFile("api-db.yaml", data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(b.Stores) != 1 || len(b.Bindings) != 1 {
		t.Fatalf("got %d stores, %d bindings", len(b.Stores), len(b.Bindings))
	}
	s, bd := b.Stores[0], b.Bindings[0]
	if s.Spec.Local.KeyFile != "/var/lib/dso/vault.enc.key" || s.Spec.RateLimit.Burst != 20 {
		t.Errorf("store: %+v", s.Spec)
	}
	f := bd.Spec.Data[1].File
	if f.Mode != "0400" || *f.UID != 1000 || bd.Spec.Data[0].Env != "DB_PASSWORD" || bd.Spec.Data[0].RemoteRef.Property != "password" {
		t.Errorf("binding data: %+v %+v", bd.Spec.Data[0], f)
	}
	if bd.Spec.Target.Selector.Compose.Service != "api" || bd.Spec.Target.Selector.Labels["app"] != "api" {
		t.Errorf("selector: %+v", bd.Spec.Target.Selector)
	}
	if bd.Spec.RefreshInterval.D() != 5*time.Minute || bd.Spec.Rotation.HealthTimeout.D() != 30*time.Second {
		t.Errorf("durations: %+v", bd.Spec)
	}
	if got := b.Origins["secretbinding/api-db"]; got != "api-db.yaml:13" {
		t.Errorf("origin = %q, want api-db.yaml:13", got)
	}
}

func TestUnquotedModeIsOctalText(t *testing.T) {
	doc := `apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata: {name: a}
spec:
  storeRef: {name: s}
  target: {selector: {containers: [a]}}
  data:
  - remoteRef: {key: k}
    file: {path: /run/secrets/a/k, mode: 0440}
`
	b, errs := ParseFile("m.yaml", []byte(doc))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if m := b.Bindings[0].Spec.Data[0].File.Mode; m != "0440" {
		t.Errorf("mode = %q, want the written text 0440", m)
	}
}

// TestSecretValuesNeverInErrors writes credential-looking values into every
// place where a value can be wrong and checks that no rendered error quotes
// them.
func TestSecretValuesNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-VALUE-do-not-print"
	docs := []string{
		"apiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: v}\nspec:\n  vault:\n    address: https://v:8200\n    auth:\n      token: " + secret + "\n",
		"apiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: v}\nspec:\n  vault:\n    address: https://user:" + secret + "@v:8200\n    auth: {token: {fromEnv: " + secret + "}}\n",
		"apiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: a}\nspec:\n  aws:\n    region: x\n    auth:\n      static: {accessKeyID: " + secret + ", secretAccessKey: {fromFile: " + secret + "}}\n",
		"agent:\n  watch:\n    webhook:\n      token: " + secret + "\n",
		"agent:\n  watch:\n    webhook:\n      token: [" + secret + "]\n      listen: " + secret + "\n",
		"apiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: " + secret + "}\nspec:\n  azure: {vaultURL: " + secret + "}\n",
		"agent:\n  cache:\n    ttl: " + secret + "\n    max_size: " + secret + "\n",
		"apiVersion: dso.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: b}\nspec:\n  storeRef: {name: x}\n  target: {selector: {containers: [a]}}\n  data:\n  - remoteRef: {key: k}\n    env: " + secret + "\n    file: {path: " + secret + ", mode: " + secret + "}\n",
	}
	for i, d := range docs {
		_, errs := parseClosed("s.yaml", []byte(d))
		if len(errs) == 0 {
			t.Errorf("doc %d: expected errors", i)
		}
		if strings.Contains(errs.Error(), secret) {
			t.Errorf("doc %d: an error quotes the value:\n%v", i, errs)
		}
	}
}

func TestErrorRendering(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Field: "spec.x", Msg: "bad"}, "a.yaml:3: spec.x: bad"},
		{Error{File: "a.yaml", Msg: "cannot read"}, "a.yaml: cannot read"},
		{Error{Line: 2, Msg: "m"}, "line 2: m"},
		{Error{Field: "f", Msg: "m"}, "f: m"},
		{Error{File: "a.yaml", Line: 1, Msg: "m"}, "a.yaml:1: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	l := ErrorList{{File: "b", Line: 1, Msg: "x"}, {File: "a", Line: 9, Msg: "y"}, {File: "a", Line: 2, Msg: "z"}}
	l.sort()
	if got := l.Error(); got != "a:2: z\na:9: y\nb:1: x" {
		t.Errorf("sorted list = %q", got)
	}
}

func TestResolveWith(t *testing.T) {
	files := func(names ...string) func(string) bool {
		return func(p string) bool { return slices.Contains(names, p) }
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "DSO_CONFIG" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name       string
		flag, envv string
		exists     func(string) bool
		wantPath   string
		wantSource string
		wantErr    bool
	}{
		{"flag wins", "/x/a.yaml", "/y/b.yaml", files("/x/a.yaml", "/y/b.yaml", "/etc/dso/dso.yaml"), "/x/a.yaml", "--config", false},
		{"flag missing is an error", "/x/a.yaml", "", files("/etc/dso/dso.yaml"), "", "", true},
		{"env next", "", "/y/b.yaml", files("/y/b.yaml", "/etc/dso/dso.yaml"), "/y/b.yaml", "$DSO_CONFIG", false},
		{"env missing is an error", "", "/y/b.yaml", files("/etc/dso/dso.yaml"), "", "", true},
		{"system file", "", "", files("/etc/dso/dso.yaml", "/home/u/.dso/dso.yaml"), "/etc/dso/dso.yaml", "/etc/dso/dso.yaml", false},
		{"home file", "", "", files("/home/u/.dso/dso.yaml", "/w/dso.yaml"), "/home/u/.dso/dso.yaml", "~/.dso/dso.yaml", false},
		{"working directory", "", "", files("/w/dso.yaml"), "/w/dso.yaml", "./dso.yaml", false},
		{"nothing: defaults", "", "", files(), "", "built-in defaults", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s, err := ResolveWith(tt.flag, env(tt.envv), "/home/u", "/w", tt.exists)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if p != tt.wantPath || s != tt.wantSource {
				t.Errorf("got (%q, %q), want (%q, %q)", p, s, tt.wantPath, tt.wantSource)
			}
		})
	}
}

func write(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const storeDoc = "apiVersion: dso.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: local}\nspec:\n  local: {path: /var/lib/dso/vault.enc}\n"

func bindingDoc(name, store string) string {
	return "apiVersion: dso.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: " + name + "}\nspec:\n  storeRef: {name: " + store + "}\n  target: {selector: {containers: [a]}}\n  data:\n  - remoteRef: {key: k}\n    env: A\n"
}

func TestLoadReadsBindingsFolders(t *testing.T) {
	dir := t.TempDir()
	bdir := filepath.Join(dir, "bindings.d")
	cfg := write(t, filepath.Join(dir, "dso.yaml"), "bindings:\n  dirs: ["+bdir+", "+filepath.Join(dir, "missing")+"]\n---\n"+storeDoc)
	write(t, filepath.Join(bdir, "b.yml"), bindingDoc("second", "local"))
	write(t, filepath.Join(bdir, "a.yaml"), bindingDoc("first", "local"))
	write(t, filepath.Join(bdir, "notes.txt"), "not yaml: [")
	write(t, filepath.Join(bdir, ".hidden.yaml"), "not yaml: [")

	b, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, bd := range b.Bindings {
		names = append(names, bd.Name)
	}
	if !slices.Equal(names, []string{"first", "second"}) {
		t.Errorf("bindings = %v, want [first second] (sorted by file name)", names)
	}
	if b.Path != cfg || b.Origins["secretbinding/second"] != filepath.Join(bdir, "b.yml")+":1" {
		t.Errorf("path %q, origins %v", b.Path, b.Origins)
	}
}

func TestLoadCrossFileErrors(t *testing.T) {
	dir := t.TempDir()
	bdir := filepath.Join(dir, "bindings.d")
	cfg := write(t, filepath.Join(dir, "dso.yaml"), "bindings:\n  dirs: ["+bdir+"]\n---\n"+storeDoc)
	write(t, filepath.Join(bdir, "a.yaml"), storeDoc+"---\n"+bindingDoc("x", "nowhere"))
	write(t, filepath.Join(bdir, "b.yaml"), "agent: {cache: {ttl: 2h}}\n")

	_, err := Load(cfg)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		filepath.Join(bdir, "a.yaml") + `:3: metadata.name: duplicate SecretStore name "local": also declared at ` + cfg + ":4",
		filepath.Join(bdir, "a.yaml") + `:11: spec.storeRef.name: no SecretStore named "nowhere"`,
		filepath.Join(bdir, "b.yaml") + ":1: kind: an AgentConfig belongs in the config file",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestLoadFilesReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	a := write(t, filepath.Join(dir, "a.yaml"), "agent: {cache: {ttl: 5}}\nbindings: {dirs: ["+filepath.Join(dir, "none")+"]}\n")
	b := write(t, filepath.Join(dir, "b.yaml"), "logging: {level: loud}\n")
	_, err := LoadFiles([]string{a, b, filepath.Join(dir, "missing.yaml")})
	if err == nil {
		t.Fatal("want errors")
	}
	got := err.Error()
	for _, want := range []string{a + ":1: agent.cache.ttl:", b + ":1: kind: only one AgentConfig is allowed", b + ":1: logging.level:", "missing.yaml: cannot read config file"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	b, err := Load("")
	if err != nil {
		// Only a real /etc/dso/bindings.d on this machine could fail this.
		t.Skipf("host has a bindings folder that does not load: %v", err)
	}
	a := b.Agent.Spec
	if *a.Agent.Cache.MaxSize != 500<<20 || a.Agent.API.Socket != "/run/dso/dso.sock" || a.Logging.Format != "json" ||
		!slices.Equal(a.Bindings.Dirs, []string{"/etc/dso/bindings.d"}) || b.Agent.Kind != "AgentConfig" {
		t.Errorf("defaults: %+v", a)
	}
}

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// every error it reports must be renderable with a file name.
func FuzzLoad(f *testing.F) {
	for _, data := range validFiles(f) {
		f.Add(data)
	}
	inv, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, p := range inv {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nagent: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, errs := ParseFile("fuzz.yaml", data)
		if b == nil {
			t.Fatal("ParseFile returned no bundle")
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" {
				t.Fatalf("error without the file name: %q", e.Error())
			}
		}
	})
}
