package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// maxFileSize bounds what the loader reads from one file. Real configs are a
// few kilobytes; the bound keeps a mistaken path (a log, a disk image) from
// costing memory.
const maxFileSize = 4 << 20

// plainKeys are the top-level keys of an AgentConfig written the way the
// operations guide writes it, without apiVersion/kind/spec.
var plainKeys = []string{"agent", "logging", "state", "bindings", "notifications"}

var kinds = []string{v1alpha1.KindAgentConfig, v1alpha1.KindSecretStore, v1alpha1.KindSecretBinding}

// document is one parsed YAML document: the typed object plus what is needed
// to locate its validation errors.
type document struct {
	file  string
	line  int    // line of the document's top-level mapping
	kind  string // one of kinds
	name  string // metadata.name
	plain bool   // an AgentConfig written without spec:
	// lines maps a field path (validation syntax: spec.data[2].file.path) to
	// the line where it is written.
	lines map[string]int
	// failed holds paths whose value was rejected by the walk.
	failed []string

	agent   *v1alpha1.AgentConfig
	store   *v1alpha1.SecretStore
	binding *v1alpha1.SecretBinding

	// legacy is the conversion an object of an older-schema document came
	// from (legacy.go); warnings are notes that did not stop loading.
	legacy   *converted
	warnings []*Error
}

func (d *document) origin() string { return d.file + ":" + strconv.Itoa(d.line) }

// display turns an internal path into the path as written: a plain
// AgentConfig has no spec: level.
func (d *document) display(path string) string {
	if d.plain {
		if path == "spec" {
			return ""
		}
		return strings.TrimPrefix(path, "spec.")
	}
	return path
}

// field names a field path the way the file has it: for an object converted
// from an older-schema document, the old field it came from (providers.v
// for a store's metadata.name).
func (d *document) field(path string) string {
	if d.legacy != nil {
		if o := d.legacy.originOf(path); o.path != "" {
			return o.path
		}
	}
	return path
}

// lineOf finds the line of a field path, falling back to the closest
// ancestor that is written in the file (a missing field is reported where
// its parent is).
func (d *document) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return d.line
}

// coveredByWalk says whether a validation error at path was already reported
// by the walk (the value was rejected there and dropped). A "required" error
// on a parent of a dropped value ("a target selector is required" when its
// containers: was not a list) is a consequence of the same mistake, too.
func (d *document) coveredByWalk(path string, isRequired bool) bool {
	under := func(p, parent string) bool {
		return p == parent || strings.HasPrefix(p, parent+".") || strings.HasPrefix(p, parent+"[")
	}
	for _, f := range d.failed {
		if under(path, f) || (isRequired && under(f, path)) {
			return true
		}
	}
	return false
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// ParseFile parses, defaults and validates one file's documents without
// touching the disk. name is only used in error messages and origins. It
// reports every problem of the file; checks that need the other files
// (whether a binding's store exists anywhere) are left to Load/LoadFiles.
func ParseFile(name string, data []byte) (*Bundle, ErrorList) {
	docs, errs := parseDocuments(name, data)
	b, more := assemble(docs)
	errs = append(errs, more...)
	errs.sort()
	settleLegacyHeadlines(b, errs)
	return b, errs
}

// parseDocuments turns one file into documents, collecting every error.
func parseDocuments(name string, data []byte) (docs []*document, errs ErrorList) {
	if len(data) > maxFileSize {
		return nil, ErrorList{{File: name, Msg: fmt.Sprintf("file is larger than %d MiB; is this the right file?", maxFileSize>>20)}}
	}
	var nodes []*yaml.Node
	nodes, errs = decodeYAML(name, data)
	headline := true
	for _, n := range nodes {
		if isLegacyNode(n) {
			docs = append(docs, legacyDocuments(name, n, &errs, headline)...)
			headline = false
			continue
		}
		if d := parseDocument(name, n, &errs); d != nil {
			docs = append(docs, d)
		}
	}
	return docs, errs
}

// decodeYAML splits the stream into document nodes. A syntax error ends the
// stream (the YAML parser cannot resynchronise), but the documents before it
// are still checked.
func decodeYAML(name string, data []byte) (nodes []*yaml.Node, errs ErrorList) {
	defer func() {
		// The YAML library is third-party code fed with arbitrary input; a
		// panic inside it must become an error, never crash the agent.
		if r := recover(); r != nil {
			errs = append(errs, &Error{File: name, Msg: "invalid YAML: the parser failed on this file"})
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nodes, errs
		}
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			e := &Error{File: name}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			if l := syntaxErrorLine(data, e.Line, msg); l > 0 {
				e.Line = l
			}
			e.Msg = "invalid YAML: " + msg
			return nodes, append(errs, e)
		}
		nodes = append(nodes, &n)
	}
}

// syntaxErrorLine finds the line a YAML syntax error is really on. The
// parser often reports the line where the enclosing block started ("line 1:
// did not find expected key" for a bad indent on line 4) or no line at all.
// The shortest prefix of the file (in whole lines) that fails with the same
// message ends on the offending line; it is found by binary search from the
// reported line, since a prefix that contains the bad line keeps failing.
// The result is checked, and 0 returned when the search was fooled.
func syntaxErrorLine(data []byte, from int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:k], nil)))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			got := strings.TrimPrefix(err.Error(), "yaml: ")
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				got = m[2]
			}
			return got == msg
		}
	}
	lo, hi := max(from, 1), len(lines)
	if lo > hi || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > 1 && fails(lo-1) {
		return 0
	}
	return lo
}

func parseDocument(file string, n *yaml.Node, errs *ErrorList) *document {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if isNull(n) {
		return nil // an empty document, e.g. a trailing "---"
	}
	d := &document{file: file, line: n.Line, lines: map[string]int{}}
	w := &walker{file: file, doc: d, errs: errs, budget: maxNodes}
	if n.Kind != yaml.MappingNode {
		w.fail(n, "", "a document must be a mapping with apiVersion, kind, metadata and spec, got "+describe(n))
		return nil
	}
	top := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode {
			if _, ok := top[k.Value]; !ok {
				top[k.Value] = k
			}
		}
	}
	value := func(key string) *yaml.Node {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i] == top[key] {
				return n.Content[i+1]
			}
		}
		return nil
	}

	if k := top["apiVersion"]; k != nil {
		v := value("apiVersion")
		if v.Kind != yaml.ScalarNode || v.Value != v1alpha1.APIVersion {
			w.fail(v, "apiVersion", "must be "+v1alpha1.APIVersion)
		}
	}
	if k := top["kind"]; k != nil {
		v := value("kind")
		switch {
		case v.Kind != yaml.ScalarNode:
			w.fail(v, "kind", "expected a string, got "+describe(v))
			return nil
		case containsString(kinds, v.Value):
			d.kind = v.Value
		default:
			msg := "unknown kind: want one of " + strings.Join(kinds, ", ")
			if s := suggest(v.Value, kinds); s != "" {
				msg = fmt.Sprintf("unknown kind; did you mean %q?", s)
			}
			w.fail(v, "kind", msg)
			return nil
		}
	} else {
		// Without kind, a document is an AgentConfig written plainly when its
		// keys are (or look like misspellings of) the guide's top-level keys.
		plainish := false
		for key := range top {
			if containsString(plainKeys, key) || suggest(key, plainKeys) != "" {
				plainish = true
			}
		}
		switch {
		case plainish:
			d.kind = v1alpha1.KindAgentConfig
			d.plain = true
		case top["providers"] != nil || top["secrets"] != nil:
			// Without apiVersion such a document is converted (legacy.go).
			w.fail(n, "kind", "this looks like the older DSO schema (providers:/secrets:) but has an apiVersion: remove apiVersion to have it converted (docker dso migrate rewrites it), or write SecretStore and SecretBinding documents")
			return nil
		default:
			w.fail(n, "kind", "kind is required: one of "+strings.Join(kinds, ", ")+" (a file with only agent:, logging:, state: or bindings: keys is an AgentConfig)")
			return nil
		}
	}
	if d.kind != v1alpha1.KindAgentConfig && top["apiVersion"] == nil {
		w.fail(n, "apiVersion", "apiVersion is required: "+v1alpha1.APIVersion)
	}
	if d.kind == v1alpha1.KindAgentConfig && !d.plain && top["spec"] == nil {
		// kind: AgentConfig may still use the plain top-level keys.
		for _, k := range plainKeys {
			if top[k] != nil {
				d.plain = true
			}
		}
	}

	// Walk the top level. The spec type depends on the kind; a plain
	// AgentConfig's spec keys sit at the top level beside apiVersion/kind.
	var specType reflect.Type
	switch d.kind {
	case v1alpha1.KindAgentConfig:
		specType = reflect.TypeFor[v1alpha1.AgentConfigSpec]()
	case v1alpha1.KindSecretStore:
		specType = reflect.TypeFor[v1alpha1.SecretStoreSpec]()
	default:
		specType = reflect.TypeFor[v1alpha1.SecretBindingSpec]()
	}
	known := []string{"apiVersion", "kind", "metadata", "spec", "status"}
	if d.plain {
		known = append([]string{"apiVersion", "kind", "metadata"}, plainKeys...)
	} else if d.kind == v1alpha1.KindAgentConfig {
		known = append(known, plainKeys...) // reported as mixed below
	}
	obj := map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": d.kind}
	spec := map[string]any{}
	specFields := fieldsOf(specType)
	d.lines["spec"] = n.Line
	w.pairs(n, "", known, func(key, val *yaml.Node, child string) {
		switch key.Value {
		case "apiVersion", "kind":
		case "metadata":
			if m, ok := w.metadata(val); ok {
				obj["metadata"] = m
			}
		case "status":
			w.fail(key, "status", "status is written by the agent: remove it from the file")
		case "spec":
			if v, ok := w.walk(val, specType, "spec"); ok {
				if m, ok := v.(map[string]any); ok {
					spec = m
				}
			}
		default: // a plain AgentConfig key
			p := "spec." + key.Value
			if !d.plain {
				w.fail(key, key.Value, "an AgentConfig is written either under spec: or with plain top-level keys, not both: move "+key.Value+": under spec:")
				return
			}
			d.lines[p] = key.Line
			if v, ok := w.walk(val, specFields.byName[key.Value], p); ok {
				spec[key.Value] = v
			}
		}
	})
	obj["spec"] = spec

	raw, err := json.Marshal(obj)
	if err == nil {
		var target any
		switch d.kind {
		case v1alpha1.KindAgentConfig:
			d.agent = &v1alpha1.AgentConfig{}
			target = d.agent
		case v1alpha1.KindSecretStore:
			d.store = &v1alpha1.SecretStore{}
			target = d.store
		default:
			d.binding = &v1alpha1.SecretBinding{}
			target = d.binding
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(target)
	}
	if err != nil {
		// The walk checked every type already, so this is a loader bug; say
		// so rather than print a decoder message that may quote a value.
		w.fail(n, "", "internal error: the checked document could not be decoded; please report this")
		return nil
	}

	var verrs field.ErrorList
	switch {
	case d.agent != nil:
		d.name = d.agent.Name
		d.agent.Default()
		verrs = d.agent.Validate()
	case d.store != nil:
		d.name = d.store.Name
		d.store.Default()
		verrs = d.store.Validate()
	default:
		d.name = d.binding.Name
		d.binding.Default()
		verrs = d.binding.Validate()
	}
	for _, fe := range verrs {
		if d.coveredByWalk(fe.Field, fe.Type == field.ErrorTypeRequired) {
			continue
		}
		detail := fe.Detail
		field := d.display(fe.Field)
		*errs = append(*errs, &Error{File: file, Line: d.lineOf(fe.Field), Field: field, Msg: detail})
	}
	return d
}

// metadata walks the few ObjectMeta fields a file may set. The rest of
// ObjectMeta (uid, generation, timestamps...) is the agent's to fill.
func (w *walker) metadata(n *yaml.Node) (any, bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	w.mark("metadata", n.Line)
	if isNull(n) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		w.fail(n, "metadata", "expected a mapping, got "+describe(n))
		return nil, false
	}
	out := map[string]any{}
	strMap := reflect.TypeFor[map[string]string]()
	w.pairs(n, "metadata", []string{"name", "labels", "annotations"}, func(key, val *yaml.Node, child string) {
		t := strMap
		if key.Value == "name" {
			t = reflect.TypeFor[string]()
		}
		if v, ok := w.walk(val, t, child); ok {
			out[key.Value] = v
		}
	})
	return out, true
}
