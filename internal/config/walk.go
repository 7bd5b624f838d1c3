package config

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// The walker checks a YAML node tree against a Go type before anything is
// decoded. Decoding straight into the struct would stop at the first
// problem and lose line numbers; walking the yaml.Node tree lets the loader
// report every unknown field, wrong type and duplicate key of a document at
// once, each with its line, and record the line of every field path so that
// validation errors found later (on the typed object) can be located too.
//
// The walk returns a plain JSON-able value (maps, slices, strings,
// json.Number, bools) built from the nodes' raw text, which is then decoded
// with encoding/json into the typed object. Using the raw text is what lets
// `mode: 0400` written unquoted mean the string "0400" rather than the
// number 256 that a YAML 1.1 reader would make of it.

var (
	durationType    = reflect.TypeFor[v1alpha1.Duration]()
	sizeType        = reflect.TypeFor[v1alpha1.Size]()
	valueSourceType = reflect.TypeFor[v1alpha1.ValueSource]()
)

// maxNodes bounds the work of one document. Aliases can make a small file
// expand exponentially (the "billion laughs" shape); every visited node,
// including each alias expansion, costs one unit.
const maxNodes = 200000

type walker struct {
	file   string
	doc    *document
	errs   *ErrorList
	budget int
	// overBudget is reported once per document.
	overBudget bool
}

// fail records an error at a node and marks the path as failed, so that
// validation errors on the same path (caused by the value that was dropped)
// are not reported a second time.
func (w *walker) fail(n *yaml.Node, path, msg string) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.doc.failed = append(w.doc.failed, path)
	*w.errs = append(*w.errs, &Error{File: w.file, Line: line, Field: w.doc.display(path), Msg: msg})
}

// report records an error that does not invalidate the value at path (a
// duplicate or unknown key: the first/known value is still used and
// validated).
func (w *walker) report(n *yaml.Node, path, msg string) {
	*w.errs = append(*w.errs, &Error{File: w.file, Line: n.Line, Field: w.doc.display(path), Msg: msg})
}

func (w *walker) mark(path string, line int) {
	if _, ok := w.doc.lines[path]; !ok {
		w.doc.lines[path] = line
	}
}

// walk checks n against t and returns the JSON-able value and whether one
// was produced (false: absent, e.g. null, or dropped after an error).
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) (any, bool) {
	w.budget--
	if w.budget < 0 {
		if !w.overBudget {
			w.overBudget = true
			w.fail(n, path, fmt.Sprintf("document is too large (more than %d YAML nodes, counting alias expansions)", maxNodes))
		}
		return nil, false
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, false
		}
		n = n.Alias
		w.budget--
	}
	w.mark(path, n.Line)
	if isNull(n) {
		return nil, false
	}
	switch t {
	case durationType:
		return w.duration(n, path)
	case sizeType:
		return w.size(n, path)
	case valueSourceType:
		if n.Kind == yaml.ScalarNode {
			w.fail(n, path, "inline credentials are not allowed: use {fromEnv: NAME} or {fromFile: PATH}")
			return map[string]any{}, true
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walk(n, t.Elem(), path)
	case reflect.Struct:
		return w.structure(n, t, path)
	case reflect.Slice:
		return w.sequence(n, t, path)
	case reflect.Map:
		return w.mapping(n, t, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "expected a string, got "+describe(n))
			return nil, false
		}
		if n.ShortTag() == "!!bool" {
			w.fail(n, path, "expected a string, got a boolean: quote it if the text is meant")
			return nil, false
		}
		return n.Value, true
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			w.fail(n, path, "expected true or false, got "+describe(n))
			return nil, false
		}
		return b, true
	case reflect.Int32, reflect.Int64, reflect.Int:
		var v int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
			w.fail(n, path, "expected a whole number, got "+describe(n))
			return nil, false
		}
		if t.Kind() == reflect.Int32 && (v < math.MinInt32 || v > math.MaxInt32) {
			w.fail(n, path, "number is out of range")
			return nil, false
		}
		return json.Number(strconv.FormatInt(v, 10)), true
	case reflect.Float64, reflect.Float32:
		var v float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&v) != nil {
			w.fail(n, path, "expected a number, got "+describe(n))
			return nil, false
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			w.fail(n, path, "must be a finite number")
			return nil, false
		}
		return v, true
	}
	// Every field type of v1alpha1 is handled above; reaching this means a
	// type was added without teaching the loader about it.
	w.fail(n, path, "this field cannot be read from a file")
	return nil, false
}

func (w *walker) duration(n *yaml.Node, path string) (any, bool) {
	if n.Kind != yaml.ScalarNode {
		w.fail(n, path, "expected a duration such as 30s, 5m or 4h, got "+describe(n))
		return nil, false
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		w.fail(n, path, "a duration needs a unit: write e.g. "+strings.TrimSpace(n.Value)+"s or "+strings.TrimSpace(n.Value)+"m")
		return nil, false
	}
	if _, err := v1alpha1.ParseDuration(n.Value); err != nil {
		w.fail(n, path, "invalid duration: want e.g. 30s, 5m, 4h or 7d")
		return nil, false
	}
	return n.Value, true
}

func (w *walker) size(n *yaml.Node, path string) (any, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!bool" {
		w.fail(n, path, "expected a size such as 500Mi, 1Gi or 500MB, got "+describe(n))
		return nil, false
	}
	if _, err := v1alpha1.ParseSize(n.Value); err != nil {
		w.fail(n, path, "invalid size: want e.g. 500Mi, 1Gi, 500MB or a plain number of bytes")
		return nil, false
	}
	return n.Value, true
}

func (w *walker) structure(n *yaml.Node, t reflect.Type, path string) (any, bool) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "expected a mapping, got "+describe(n))
		// An empty mapping keeps the parent's pointer set, so validation
		// reports missing sub-fields (dropped as failed) rather than a
		// confusing "this provider is not set".
		return map[string]any{}, true
	}
	fields := fieldsOf(t)
	out := map[string]any{}
	w.pairs(n, path, fields.names, func(key, val *yaml.Node, child string) {
		f, ok := fields.byName[key.Value]
		if !ok {
			return
		}
		if v, ok := w.walk(val, f, child); ok {
			out[key.Value] = v
		}
	})
	return out, true
}

// pairs iterates a mapping's key/value pairs, reporting non-string keys,
// merge keys, duplicate keys and (when known is not nil) unknown keys; each
// remaining pair is passed to fn with its child path.
func (w *walker) pairs(n *yaml.Node, path string, known []string, fn func(key, val *yaml.Node, child string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		for key.Kind == yaml.AliasNode && key.Alias != nil {
			key = key.Alias
		}
		if key.Kind != yaml.ScalarNode {
			w.fail(key, path, "mapping keys must be plain names, got "+describe(key))
			continue
		}
		child := joinPath(path, key.Value)
		if known == nil {
			child = path + "[" + key.Value + "]"
		}
		if key.Value == "<<" && key.ShortTag() == "!!merge" {
			w.fail(key, path, "YAML merge keys (<<) are not supported: write the fields out")
			continue
		}
		if first, dup := seen[key.Value]; dup {
			w.report(key, child, fmt.Sprintf("duplicate key: already set on line %d", first))
			continue
		}
		seen[key.Value] = key.Line
		if known != nil && !containsString(known, key.Value) {
			msg := "unknown field"
			if s := suggest(key.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else if len(known) <= 8 {
				msg += ": expected one of " + strings.Join(known, ", ")
			}
			w.report(key, child, msg)
			continue
		}
		w.mark(child, key.Line)
		fn(key, val, child)
	}
}

func (w *walker) sequence(n *yaml.Node, t reflect.Type, path string) (any, bool) {
	if n.Kind != yaml.SequenceNode {
		w.fail(n, path, "expected a list, got "+describe(n))
		return nil, false
	}
	out := make([]any, 0, len(n.Content))
	for i, item := range n.Content {
		v, ok := w.walk(item, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		if !ok {
			v = nil // keep indices aligned with the file
		}
		out = append(out, v)
	}
	return out, true
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) (any, bool) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "expected a mapping, got "+describe(n))
		return nil, false
	}
	out := map[string]any{}
	w.pairs(n, path, nil, func(key, val *yaml.Node, child string) {
		if v, ok := w.walk(val, t.Elem(), child); ok {
			out[key.Value] = v
		}
	})
	return out, true
}

// structFields is the json-tag view of a struct type.
type structFields struct {
	names  []string // in declaration order, for suggestions and messages
	byName map[string]reflect.Type
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*structFields)
	}
	sf := &structFields{byName: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" && strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				add(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			sf.names = append(sf.names, name)
			sf.byName[name] = f.Type
		}
	}
	add(t)
	fieldCache.Store(t, sf)
	return sf
}

func joinPath(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's kind for "expected X, got Y" messages without
// quoting its value (the value may be a credential pasted in the wrong
// place).
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		}
		return "a scalar"
	}
	return "an unexpected node"
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
