package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// SourceDefaults is the source Resolve reports when no config file exists.
const SourceDefaults = "built-in defaults"

// The fixed search locations after --config and $DSO_CONFIG, as documented.
const (
	SystemConfig = "/etc/dso/dso.yaml"
	userConfig   = ".dso/dso.yaml" // under $HOME
	localConfig  = "dso.yaml"      // in the working directory
)

// Resolve finds the config file the CLI and the agent use: the --config flag,
// then $DSO_CONFIG, then /etc/dso/dso.yaml, ~/.dso/dso.yaml and ./dso.yaml.
// source says which rule chose it ("--config", "$DSO_CONFIG", or the search
// location as written above). A file named explicitly must exist; when no
// file is found, path is "" and source is "built-in defaults".
func Resolve(flagPath string) (path, source string, err error) {
	home, _ := os.UserHomeDir()
	cwd, _ := os.Getwd()
	return ResolveWith(flagPath, os.Getenv, home, cwd, func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && !st.IsDir()
	})
}

// ResolveWith is Resolve with its environment passed in, for tests.
func ResolveWith(flagPath string, env func(string) string, home, cwd string, exists func(string) bool) (path, source string, err error) {
	if flagPath != "" {
		if !exists(flagPath) {
			return "", "", fmt.Errorf("config file %s (from --config) does not exist: fix the path or drop the flag", flagPath)
		}
		return flagPath, "--config", nil
	}
	if p := env("DSO_CONFIG"); p != "" {
		if !exists(p) {
			return "", "", fmt.Errorf("config file %s (from $DSO_CONFIG) does not exist: fix the path or unset DSO_CONFIG", p)
		}
		return p, "$DSO_CONFIG", nil
	}
	if exists(SystemConfig) {
		return SystemConfig, SystemConfig, nil
	}
	if home != "" {
		if p := filepath.Join(home, userConfig); exists(p) {
			return p, "~/" + userConfig, nil
		}
	}
	if cwd != "" {
		if p := filepath.Join(cwd, localConfig); exists(p) {
			return p, "./" + localConfig, nil
		}
	}
	return "", SourceDefaults, nil
}

// Load reads the config file at path (or only the built-in defaults when
// path is ""), then every *.yaml and *.yml file of the AgentConfig's
// bindings.dirs, sorted by name; a bindings folder that does not exist is
// fine. The error, if any, is an ErrorList holding every problem found.
func Load(path string) (*Bundle, error) {
	if path == "" {
		return LoadFiles(nil)
	}
	return LoadFiles([]string{path})
}

// LoadFiles is Load over several files at once (`config validate -f a -f b`):
// every file's errors are reported together, names must be unique across all
// of them, and at most one of them may hold an AgentConfig. The bindings
// folders of that AgentConfig (or the default folder) are read as well.
func LoadFiles(paths []string) (*Bundle, error) {
	var docs []*document
	var errs ErrorList
	seen := map[string]bool{}
	read := func(p string) {
		key := p
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if seen[key] {
			return
		}
		seen[key] = true
		data, err := readLimited(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			return
		}
		d, e := parseDocuments(p, data)
		docs = append(docs, d...)
		errs = append(errs, e...)
	}
	for _, p := range paths {
		read(p)
	}

	// The bindings folders come from the AgentConfig of the given files.
	agent := v1alpha1.AgentConfig{}
	for _, d := range docs {
		if d.agent != nil {
			agent = *d.agent
			break
		}
	}
	agent.Default()
	nConfigDocs := len(docs)
	for _, dir := range agent.Spec.Bindings.Dirs {
		if !filepath.IsAbs(dir) {
			continue // already reported by validation
		}
		files, err := bindingFiles(dir)
		if err != nil {
			errs = append(errs, &Error{File: dir, Msg: err.Error()})
			continue
		}
		for _, f := range files {
			read(f)
		}
	}
	for _, d := range docs[nConfigDocs:] {
		if d.agent != nil {
			msg := "an AgentConfig belongs in the config file, not in a bindings folder"
			if d.legacy != nil {
				msg = "agent:, logging: and rotation timeouts become the AgentConfig, which belongs in the config file, not in a bindings folder: move them there"
			}
			errs = append(errs, &Error{File: d.file, Line: d.line, Field: d.field("kind"), Msg: msg})
			d.agent = nil
		}
	}

	b, more := assemble(docs)
	errs = append(errs, more...)
	errs = append(errs, checkStoreRefs(b, docs)...)
	if b.Path == "" && len(paths) > 0 {
		b.Path = paths[0]
	}
	if len(errs) > 0 {
		errs.sort()
		settleLegacyHeadlines(b, errs)
		return b, errs
	}
	return b, nil
}

// assemble builds a Bundle from documents in order, reporting a second
// AgentConfig and duplicate names with both places.
func assemble(docs []*document) (*Bundle, ErrorList) {
	var errs ErrorList
	b := &Bundle{Origins: map[string]string{}}
	var agentDoc *document
	for _, d := range docs {
		b.Warnings = append(b.Warnings, d.warnings...)
		switch {
		case d.agent != nil:
			if agentDoc != nil {
				errs = append(errs, &Error{File: d.file, Line: d.line, Field: d.field("kind"), Msg: "only one AgentConfig is allowed: another one is at " + agentDoc.origin()})
				continue
			}
			agentDoc = d
			b.Agent = *d.agent
			b.Path = d.file
		case d.store != nil, d.binding != nil:
			kind, name := d.kind, d.name
			if name == "" {
				// Reported by validation; without a name it cannot collide.
				add(b, d)
				continue
			}
			key := strings.ToLower(kind) + "/" + name
			if prev, dup := b.Origins[key]; dup {
				errs = append(errs, &Error{File: d.file, Line: d.lineOf("metadata.name"), Field: d.field("metadata.name"),
					Msg: fmt.Sprintf("duplicate %s name %q: also declared at %s", kind, name, prev)})
				continue
			}
			b.Origins[key] = d.origin()
			add(b, d)
		}
	}
	if agentDoc == nil {
		b.Agent.Default()
	}
	return b, errs
}

func add(b *Bundle, d *document) {
	if d.store != nil {
		b.Stores = append(b.Stores, *d.store)
	} else {
		b.Bindings = append(b.Bindings, *d.binding)
	}
}

// checkStoreRefs reports bindings whose store is declared nowhere in the
// loaded files. It runs over everything loaded together, because a binding
// in a bindings folder usually uses a store from the config file.
func checkStoreRefs(b *Bundle, docs []*document) ErrorList {
	var errs ErrorList
	stores := map[string]bool{}
	var names []string
	for _, s := range b.Stores {
		stores[s.Name] = true
		names = append(names, s.Name)
	}
	for _, d := range docs {
		if d.binding == nil || d.binding.Spec.StoreRef.Name == "" || stores[d.binding.Spec.StoreRef.Name] {
			continue
		}
		msg := fmt.Sprintf("no SecretStore named %q is declared in the config file or the bindings folders", d.binding.Spec.StoreRef.Name)
		if s := suggest(d.binding.Spec.StoreRef.Name, names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		errs = append(errs, &Error{File: d.file, Line: d.lineOf("spec.storeRef.name"), Field: "spec.storeRef.name", Msg: msg})
	}
	return errs
}

// bindingFiles lists dir's *.yaml and *.yml files, sorted by name. Hidden
// files are skipped: editors and git checkouts leave them behind.
func bindingFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read bindings folder: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if ext := filepath.Ext(n); ext == ".yaml" || ext == ".yml" {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a close error cannot lose data
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	if st.IsDir() {
		return nil, errors.New("is a directory, not a config file")
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("file is larger than %d MiB; is this the right file?", maxFileSize>>20)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	return data, nil
}
