package config

// Reading configs written for the older DSO schema.
//
// The product dso replaces wrote one YAML document with a providers: map (or
// one top-level provider: plus config:), agent:, defaults:, logging: and a
// secrets: list whose entries carry their own inject, rotation, mappings and
// targets. Such a document is converted here into this product's objects —
// one AgentConfig (when the old document sets anything it carries), one
// SecretStore per provider, one SecretBinding per secret — and those objects
// then go through the same defaulting and validation as any other document.
// Every problem is reported against the old file: its line and the old field
// path (secrets[2].inject.path), so that the person reading the error can
// find it in the file they wrote.
//
// The converter never copies an inline credential. Where the old file held a
// token or key, the new object refers to an environment variable instead and
// a warning says which one to export; the value itself is never quoted in a
// warning, an error or the converted output. Keys that have no equivalent
// are reported as warnings, one each: nothing is dropped silently.
//
// docs/migration.md is the user-facing description of these rules; keep the
// two in step.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// The top-level keys of the older schema.
var legacyTopKeys = []string{"providers", "provider", "config", "agent", "defaults", "logging", "secrets"}

// isLegacyNode says whether a document node is written in the older schema:
// a mapping without apiVersion or kind whose top level has providers:,
// secrets:, or the first version's provider: with config:.
func isLegacyNode(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return false
		}
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	keys := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode {
			keys[k.Value] = true
		}
	}
	if keys["apiVersion"] || keys["kind"] {
		return false
	}
	return keys["providers"] || keys["secrets"] || (keys["provider"] && keys["config"])
}

// legacyHeadline is the warning that says a file was converted in memory,
// or that it could not be.
func legacyHeadline(file string, failed bool) *Error {
	if failed {
		return &Error{Msg: fmt.Sprintf("%s uses the older DSO schema and could not be converted: fix the errors listed, then run \"docker dso migrate -f %s\" to rewrite it", file, file)}
	}
	return &Error{Msg: fmt.Sprintf("%s uses the older DSO schema; it was converted in memory: run \"docker dso migrate -f %s\" to rewrite it", file, file)}
}

// settleLegacyHeadlines turns the headline of each file that has errors
// into the could-not-be-converted one. It runs once every error is known:
// some (duplicate names, a second AgentConfig, an AgentConfig in a
// bindings folder) are only found when the documents are put together.
func settleLegacyHeadlines(b *Bundle, errs ErrorList) {
	if b == nil {
		return
	}
	// The headline names its file in the message only (no file: prefix).
	failed := map[string]string{}
	for _, e := range errs {
		failed[legacyHeadline(e.File, false).Msg] = e.File
	}
	for i, w := range b.Warnings {
		if f, ok := failed[w.Msg]; ok && w.File == "" && w.Line == 0 {
			b.Warnings[i] = legacyHeadline(f, true)
		}
	}
}

// legacyDocuments converts one older-schema document for the loader: the
// converted objects, defaulted and validated, as documents located in the
// old file. The first returned document carries the warnings: the headline
// naming the file (when headline is set: once per file), then one per note
// of the conversion.
func legacyDocuments(file string, n *yaml.Node, errs *ErrorList, headline bool) []*document {
	before := len(*errs)
	res := convertLegacy(file, n, errs)
	docs := res.documents()
	for _, d := range docs {
		validateLegacy(d, errs)
	}
	carrier := &document{file: file, line: res.line, lines: map[string]int{}}
	if headline {
		carrier.warnings = []*Error{legacyHeadline(file, len(*errs) > before)}
	}
	carrier.warnings = append(carrier.warnings, res.warnings...)
	return append([]*document{carrier}, docs...)
}

// origin is where in the old document a converted field came from.
type origin struct {
	path string // the old field path, e.g. secrets[2].inject.path
	line int
}

// converted is one object made from the old document.
type converted struct {
	kind string
	name string
	// obj is the object as converted, before defaulting: what migrate
	// prints. *v1alpha1.AgentConfig, *v1alpha1.SecretStore or
	// *v1alpha1.SecretBinding.
	obj any
	at  origin
	// origins maps a field path of the new object (validation syntax:
	// spec.data[0].env) to where it came from; "" is the whole object.
	origins map[string]origin
	// failed holds new field paths the converter already reported an error
	// for; validation errors under them are consequences of that error.
	failed []string
}

func (c *converted) set(path string, o origin) { c.origins[path] = o }

// originOf finds where a new field path came from, falling back to the
// nearest ancestor the converter recorded.
func (c *converted) originOf(path string) origin {
	for {
		if o, ok := c.origins[path]; ok {
			return o
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return c.origins[""]
		}
		path = path[:i]
	}
}

// legacyResult is the conversion of one old document.
type legacyResult struct {
	file     string
	line     int
	agent    *converted // nil when the old document sets nothing an AgentConfig carries
	stores   []*converted
	bindings []*converted
	warnings []*Error
}

func (r *legacyResult) objects() []*converted {
	var out []*converted
	if r.agent != nil {
		out = append(out, r.agent)
	}
	out = append(out, r.stores...)
	return append(out, r.bindings...)
}

// documents defaults and validates copies of the converted objects and
// returns them as loader documents. Validation errors are not reported
// here: validate does that, once.
func (r *legacyResult) documents() []*document {
	var docs []*document
	for _, c := range r.objects() {
		d := &document{file: r.file, line: c.at.line, kind: c.kind, name: c.name, lines: map[string]int{}, failed: c.failed, legacy: c}
		for p, o := range c.origins {
			d.lines[p] = o.line
		}
		switch o := c.obj.(type) {
		case *v1alpha1.AgentConfig:
			d.agent = o.DeepCopy()
			d.agent.Default()
			d.plain = true
		case *v1alpha1.SecretStore:
			d.store = o.DeepCopy()
			d.store.Default()
		case *v1alpha1.SecretBinding:
			d.binding = o.DeepCopy()
			d.binding.Default()
		}
		docs = append(docs, d)
	}
	return docs
}

// validateLegacy runs the normal validation on a converted document and
// reports each error where its value came from in the old file.
func validateLegacy(d *document, errs *ErrorList) {
	var verrs field.ErrorList
	switch {
	case d.agent != nil:
		verrs = d.agent.Validate()
	case d.store != nil:
		verrs = d.store.Validate()
	case d.binding != nil:
		verrs = d.binding.Validate()
	}
	c := d.legacy
	for _, fe := range verrs {
		if d.coveredByWalk(fe.Field, fe.Type == field.ErrorTypeRequired) {
			continue
		}
		o := c.originOf(fe.Field)
		what := c.kind
		if c.name != "" {
			what += " " + c.name
		}
		// A detail may name another field ("already written by
		// spec.data[1].env"): name it as the old file has it.
		detail := newPathRE.ReplaceAllStringFunc(fe.Detail, func(p string) string {
			if o := c.originOf(p); o.path != "" {
				return o.path
			}
			return p
		})
		*errs = append(*errs, &Error{File: d.file, Line: o.line, Field: o.path,
			Msg: fmt.Sprintf("%s (converted to %s: %s)", detail, what, d.display(fe.Field))})
	}
}

var newPathRE = regexp.MustCompile(`spec\.[A-Za-z0-9_.\[\]]*[A-Za-z0-9_\]]`)

// legacyConv walks one old document. Like the loader's walker it reports
// every problem it finds, never quotes a value (only key names, kinds and
// the names of secrets and providers), and bounds its work so that YAML
// aliases cannot make it expand a small file without end.
type legacyConv struct {
	file   string
	errs   *ErrorList
	warns  []*Error
	budget int
	over   bool
	names  map[string]bool // object names in use, per kind
	// merged holds the mappings that had a (refused) merge key: a field
	// missing from them may be in the merged mapping, so "required" errors
	// there would only follow from the merge key's error.
	merged map[*yaml.Node]bool
}

type kv struct{ key, val *yaml.Node }

func (c *legacyConv) errorf(n *yaml.Node, path, format string, args ...any) {
	*c.errs = append(*c.errs, &Error{File: c.file, Line: lineOfNode(n), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *legacyConv) warnf(n *yaml.Node, path, format string, args ...any) {
	c.warns = append(c.warns, &Error{File: c.file, Line: lineOfNode(n), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func lineOfNode(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// resolve follows aliases, charging the work budget for every node visited.
func (c *legacyConv) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		c.spend(n)
		n = n.Alias
	}
	c.spend(n)
	return n
}

func (c *legacyConv) spend(n *yaml.Node) {
	c.budget--
	if c.budget < 0 && !c.over {
		c.over = true
		c.errorf(n, "", "document is too large (more than %d YAML nodes, counting alias expansions)", maxNodes)
	}
}

func absent(n *yaml.Node) bool { return n == nil || isNull(n) }

// hadMerge says whether mapping n (through aliases) had a merge key.
func (c *legacyConv) hadMerge(n *yaml.Node) bool {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return c.merged[n]
}

// mapping returns a mapping's pairs in file order, reporting non-string,
// merge and duplicate keys. An absent (null) node has no pairs.
func (c *legacyConv) mapping(n *yaml.Node, path string) []kv {
	n = c.resolve(n)
	if c.over || absent(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, path, "expected a mapping, got %s", describe(n))
		return nil
	}
	seen := map[string]int{}
	var out []kv
	for i := 0; i+1 < len(n.Content) && !c.over; i += 2 {
		k := c.resolve(n.Content[i])
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
			c.errorf(k, path, "mapping keys must be plain names, got %s", describe(k))
			continue
		case k.Value == "<<" && k.ShortTag() == "!!merge":
			c.errorf(k, path, "YAML merge keys (<<) are not supported: write the fields out")
			if c.merged == nil {
				c.merged = map[*yaml.Node]bool{}
			}
			c.merged[n] = true
			continue
		}
		if first, dup := seen[k.Value]; dup {
			c.errorf(k, joinPath(path, k.Value), "duplicate key: already set on line %d", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, kv{k, n.Content[i+1]})
	}
	return out
}

// fields is mapping for a fixed set of keys: an unknown key is an error
// (with a suggestion), since a misspelt key would otherwise lose a setting.
func (c *legacyConv) fields(n *yaml.Node, path string, known ...string) map[string]kv {
	out := map[string]kv{}
	for _, p := range c.mapping(n, path) {
		if !containsString(known, p.key.Value) {
			msg := "unknown field in the older DSO schema"
			if s := suggest(p.key.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += ": expected one of " + strings.Join(known, ", ")
			}
			c.errorf(p.key, joinPath(path, p.key.Value), "%s", msg)
			continue
		}
		out[p.key.Value] = p
	}
	return out
}

// str reads a scalar's text. The older DSO read every scalar into Go
// strings, so 1000 or true are accepted as their text.
func (c *legacyConv) str(n *yaml.Node, path string) (string, bool) {
	n = c.resolve(n)
	if c.over || absent(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		c.errorf(n, path, "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (c *legacyConv) boolean(n *yaml.Node, path string) (bool, bool) {
	n = c.resolve(n)
	if c.over || absent(n) {
		return false, false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		c.errorf(n, path, "expected true or false, got %s", describe(n))
		return false, false
	}
	return b, true
}

func (c *legacyConv) integer(n *yaml.Node, path string) (int64, bool) {
	n = c.resolve(n)
	if c.over || absent(n) {
		return 0, false
	}
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		c.errorf(n, path, "expected a whole number, got %s", describe(n))
		return 0, false
	}
	return v, true
}

func (c *legacyConv) duration(n *yaml.Node, path string) (*v1alpha1.Duration, bool) {
	n = c.resolve(n)
	if c.over || absent(n) {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode {
		c.errorf(n, path, "expected a duration such as 30s, 5m or 4h, got %s", describe(n))
		return nil, false
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		c.errorf(n, path, "a duration needs a unit: write e.g. %ss or %sm", strings.TrimSpace(n.Value), strings.TrimSpace(n.Value))
		return nil, false
	}
	d, err := v1alpha1.ParseDuration(n.Value)
	if err != nil {
		c.errorf(n, path, "invalid duration: want e.g. 30s, 5m, 4h or 7d")
		return nil, false
	}
	return &d, true
}

// stringList reads a list of scalars, with the node of each.
func (c *legacyConv) stringList(n *yaml.Node, path string) ([]string, []*yaml.Node) {
	n = c.resolve(n)
	if c.over || absent(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		c.errorf(n, path, "expected a list, got %s", describe(n))
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	for i, item := range n.Content {
		if s, ok := c.str(item, path+"["+strconv.Itoa(i)+"]"); ok {
			out = append(out, s)
			nodes = append(nodes, item)
		}
	}
	return out, nodes
}

// objectName derives a valid object name (a DNS label) from an old name:
// lower case, runs of other characters made one '-', at most 63
// characters. For an AWS ARN only the part after the last ':' is used (the
// secret's own name). The result is unique among the names given so far
// for that kind: a clash gets -2, -3, ...
func (c *legacyConv) objectName(kind, old, fallback string) string {
	s := old
	if strings.HasPrefix(s, "arn:") {
		s = s[strings.LastIndexByte(s, ':')+1:]
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	base := trimName(b.String(), 63)
	if base == "" {
		base = fallback
	}
	name := base
	for i := 2; c.names[kind+"/"+name]; i++ {
		suffix := "-" + strconv.Itoa(i)
		name = trimName(base, 63-len(suffix)) + suffix
	}
	c.names[kind+"/"+name] = true
	return name
}

func trimName(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Trim(s, "-")
}

// oldProvider is one entry of providers: (or the first version's top-level
// provider: with config:).
type oldProvider struct {
	name  string
	path  string
	key   *yaml.Node
	typ   string
	f     map[string]kv // its fields
	store *converted    // nil when it could not be converted
	// merged: its mapping had a merge key (already an error).
	merged bool
}

// convertLegacy converts one old document. Conversion problems go to errs;
// validation of the result is left to the caller (validateLegacy).
func convertLegacy(file string, n *yaml.Node, errs *ErrorList) *legacyResult {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	c := &legacyConv{file: file, errs: errs, budget: maxNodes, names: map[string]bool{}}
	res := &legacyResult{file: file, line: n.Line}
	top := c.fields(n, "", legacyTopKeys...)

	// Providers, in file order; the first version's provider:/config: is
	// added unless providers: already has an entry of that name (which is
	// what the older DSO did).
	var provs []*oldProvider
	byName := map[string]*oldProvider{}
	for _, p := range c.mapping(top["providers"].val, "providers") {
		op := &oldProvider{name: p.key.Value, path: "providers." + p.key.Value, key: p.key}
		op.f = c.fields(p.val, op.path, "type", "region", "auth", "retry", "config")
		op.merged = c.hadMerge(p.val)
		if t, ok := c.str(op.f["type"].val, op.path+".type"); ok {
			op.typ = t
		}
		provs = append(provs, op)
		byName[op.name] = op
	}
	if v1, ok := top["provider"]; ok {
		name, _ := c.str(v1.val, "provider")
		switch {
		case name == "":
			c.errorf(v1.key, "provider", "must name the provider type, e.g. vault")
		case byName[name] != nil:
			c.warnf(v1.key, "provider", "providers.%s is declared too; the top-level provider: and config: were not used (as in the older DSO)", name)
		default:
			op := &oldProvider{name: name, path: "provider", key: v1.key, typ: name, f: map[string]kv{}}
			if cf, ok := top["config"]; ok {
				op.f["config"] = cf
			}
			provs = append(provs, op)
			byName[name] = op
		}
	} else if cf, ok := top["config"]; ok {
		c.errorf(cf.key, "config", "config: belongs to a top-level provider: (the first version of the older schema); with providers: each provider has its own config")
	}
	perType := map[string]int{}
	for _, op := range provs {
		perType[op.typ]++
	}
	for _, op := range provs {
		op.store = c.store(op, perType[op.typ] > 1)
		if op.store != nil {
			res.stores = append(res.stores, op.store)
		}
	}

	agent := c.agent(top)
	def := c.defaults(top["defaults"])
	if agent.rotation.timeout == nil && def.rotation.timeout != nil {
		// The defaults' health check timeout becomes the agent-wide
		// rotation timeout, unless agent.rotation set that already.
		agent.setTimeout(def.rotation.timeout, def.rotation.timeoutAt)
		def.rotation.timeout = nil
	}
	if !reflect.DeepEqual(agent.obj.Spec, v1alpha1.AgentConfigSpec{}) {
		res.agent = agent.conv
	}

	if sv, ok := top["secrets"]; ok {
		sn := c.resolve(sv.val)
		switch {
		case c.over || absent(sn):
		case sn.Kind != yaml.SequenceNode:
			c.errorf(sn, "secrets", "expected a list, got %s", describe(sn))
		default:
			for i, item := range sn.Content {
				if c.over {
					break
				}
				if b := c.binding(item, i, provs, byName, def, agent.rotation); b != nil {
					res.bindings = append(res.bindings, b)
				}
			}
		}
	}
	if len(res.stores) == 0 && len(provs) == 0 {
		c.errorf(n, "providers", "no provider is declared: add providers: {NAME: {type: vault|aws|azure|file, ...}}")
	}
	// Notes are found section by section; report them in file order.
	slices.SortStableFunc(c.warns, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	res.warnings = c.warns
	return res
}

// ---- Providers -> SecretStores ----

// envName is the environment variable a credential is read from: the
// conventional name, or with the store's name appended when several stores
// of one type need one each.
func envName(base, store string, several bool) string {
	if !several {
		return base
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(store) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return base + "_" + b.String()
}

// looksLikeCredential says whether a key of a free-form map names a secret
// value: such a value is never copied.
func looksLikeCredential(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"token", "secret", "password", "passwd", "key", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func (c *legacyConv) store(op *oldProvider, several bool) *converted {
	typeAt := op.key
	if t, ok := op.f["type"]; ok {
		typeAt = t.val
	}
	switch op.typ {
	case "":
		if _, ok := op.f["type"]; !ok && !op.merged {
			c.errorf(op.key, op.path+".type", "type is required: one of aws, vault, azure, file")
		}
		return nil
	case "huawei":
		c.errorf(typeAt, op.path+".type", "dso has no huawei provider: move these secrets to a store dso reads (vault, aws, azure, the local store of dso init, or files) and declare that as the provider")
		return nil
	case "vault", "aws", "azure", "file":
	default:
		msg := "unknown provider type: want one of aws, vault, azure, file"
		if s := suggest(op.typ, []string{"aws", "vault", "azure", "file"}); s != "" {
			msg = fmt.Sprintf("unknown provider type; did you mean %q?", s)
		}
		c.errorf(typeAt, op.path+".type", "%s", msg)
		return nil
	}
	name := c.objectName("store", op.name, "store")
	s := &v1alpha1.SecretStore{ObjectMeta: metaName(name)}
	s.APIVersion, s.Kind = v1alpha1.APIVersion, v1alpha1.KindSecretStore
	conv := &converted{kind: v1alpha1.KindSecretStore, name: name, obj: s, at: origin{op.path, op.key.Line}, origins: map[string]origin{}}
	conv.set("", conv.at)
	conv.set("metadata.name", conv.at)
	what := fmt.Sprintf("SecretStore %s", name)

	if r, ok := op.f["retry"]; ok {
		c.warnf(r.key, op.path+".retry", "not carried over: dso retries failed provider calls itself, with backoff (and holds calls while a store asks it to)")
	}
	region, hasRegion := "", false
	var regionAt origin
	if r, ok := op.f["region"]; ok {
		region, hasRegion = c.str(r.val, op.path+".region")
		regionAt = origin{op.path + ".region", r.key.Line}
		if op.typ != "aws" {
			c.warnf(r.key, op.path+".region", "not carried over: only aws providers have a region")
			hasRegion = false
		}
	}
	cfgPath := op.path + ".config"
	if op.path == "provider" {
		cfgPath = "config"
	}
	cfg := map[string]kv{}
	var cfgOrder []kv
	if cf, ok := op.f["config"]; ok {
		for _, p := range c.mapping(cf.val, cfgPath) {
			cfg[p.key.Value] = p
			cfgOrder = append(cfgOrder, p)
		}
		conv.set("spec."+op.typ, origin{cfgPath, cf.key.Line})
	} else {
		conv.set("spec."+op.typ, conv.at)
	}
	used := map[string]bool{}
	get := func(k string) (string, *yaml.Node, bool) {
		p, ok := cfg[k]
		if !ok {
			return "", nil, false
		}
		used[k] = true
		v, ok := c.str(p.val, cfgPath+"."+k)
		return v, p.key, ok
	}
	// dropCredential reports an inline credential of the config map that
	// the converted store reads from env instead.
	dropCredential := func(k, env, where string) {
		if p, ok := cfg[k]; ok {
			used[k] = true
			if !absent(c.resolve(p.val)) {
				c.warnf(p.key, cfgPath+"."+k, "the inline %s was not copied; export %s to the agent or use fromFile (%s of %s)", credentialWord(k), env, where, what)
			}
		}
	}

	method, params, authKey := c.auth(op)
	switch op.typ {
	case "vault":
		v := &v1alpha1.VaultProvider{}
		if addr, k, ok := get("address"); ok {
			v.Address = addr
			conv.set("spec.vault.address", origin{cfgPath + ".address", k.Line})
			if u, err := url.Parse(addr); err == nil && u.Scheme == "http" && !v1alpha1.IsLoopbackHost(u.Hostname()) {
				// The older DSO spoke plain http to any host. Keep that
				// working, but as a visible opt-in the operator can drop.
				v.AllowInsecureHTTP = true
				c.warnf(k, cfgPath+".address", "plain http to a host that is not loopback sends the Vault token unencrypted: %s gets allowInsecureHTTP: true to keep the older DSO's behaviour; switch the address to https and remove it", what)
			}
		}
		if m, k, ok := get("mount"); ok {
			v.Mount = m
			conv.set("spec.vault.mount", origin{cfgPath + ".mount", k.Line})
		}
		if ns, k, ok := get("namespace"); ok {
			v.Namespace = ns
			conv.set("spec.vault.namespace", origin{cfgPath + ".namespace", k.Line})
		}
		switch method {
		case "", "token", "env":
		default:
			c.errorf(authKey, op.path+".auth.method", "a vault provider logs in with a token: use method token (or write an appRole auth in the converted %s)", what)
		}
		env := envName("VAULT_TOKEN", name, several)
		v.Auth.Token = &v1alpha1.ValueSource{FromEnv: env}
		n := len(c.warns)
		dropCredential("token", env, "spec.vault.auth.token")
		if several && len(c.warns) == n {
			c.warnf(op.key, op.path, "%s reads its Vault token from %s: with several vault providers each store has its own variable; export it to the agent", what, env)
		}
		c.dropParams(op, params, map[string]string{"token": env, "vault_token": env}, what)
		s.Spec.Vault = v
	case "aws":
		a := &v1alpha1.AWSProvider{}
		if !hasRegion {
			if r, k, ok := get("region"); ok {
				region, hasRegion, regionAt = r, true, origin{cfgPath + ".region", k.Line}
			}
		}
		if hasRegion {
			a.Region = region
			conv.set("spec.aws.region", regionAt)
		}
		keyID := envName("AWS_ACCESS_KEY_ID", name, several)
		secretKey := envName("AWS_SECRET_ACCESS_KEY", name, several)
		session := envName("AWS_SESSION_TOKEN", name, several)
		// Inline params of the older schema, by the names its docs used.
		envs := map[string]string{
			"access_key_id": keyID, "aws_access_key_id": keyID, "access_key": keyID,
			"secret_access_key": secretKey, "aws_secret_access_key": secretKey, "secret_key": secretKey,
			"session_token": session, "aws_session_token": session, "token": session,
		}
		switch method {
		case "", "iam_role", "env":
			// The SDK's default chain: environment, shared config, instance role.
		case "access_key", "token":
			a.Auth.Static = &v1alpha1.AWSStaticAuth{
				AccessKeyID:     v1alpha1.ValueSource{FromEnv: keyID},
				SecretAccessKey: v1alpha1.ValueSource{FromEnv: secretKey},
			}
			if method == "token" {
				a.Auth.Static.SessionToken = &v1alpha1.ValueSource{FromEnv: session}
			}
			conv.set("spec.aws.auth", origin{op.path + ".auth", authKey.Line})
		default:
			c.errorf(authKey, op.path+".auth.method", "unknown auth method: want one of iam_role, access_key, token, env")
		}
		if p, ok := params["profile"]; ok {
			pp := op.path + ".auth.params.profile"
			if prof, ok := c.str(p.val, pp); ok {
				if a.Auth.Static != nil {
					c.warnf(p.key, pp, "not carried over: auth.method %s reads a static key pair, and dso uses either static keys or a profile", method)
				} else {
					a.Auth.Profile = prof
					conv.set("spec.aws.auth.profile", origin{pp, p.key.Line})
				}
			}
			delete(params, "profile")
		}
		if a.Auth.Static == nil {
			// No static keys: the SDK's default chain reads the
			// conventional variables, never a store's own.
			chain := map[string]string{}
			for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
				chain[envName(v, name, several)] = v
			}
			for _, p := range sortedParams(params) {
				k := p.key.Value
				if env, ok := envs[strings.ToLower(k)]; ok {
					c.warnf(p.key, op.path+".auth.params."+k, "the inline %s was not copied: %s uses the AWS SDK's default credential chain, which reads %s from the agent's environment; auth.method access_key gives the store variables of its own", credentialWord(k), what, chain[env])
					delete(params, k)
				}
			}
		}
		c.dropParams(op, params, envs, what)
		s.Spec.AWS = a
	case "azure":
		az := &v1alpha1.AzureProvider{}
		if u, k, ok := get("vault_url"); ok {
			az.VaultURL = u
			conv.set("spec.azure.vaultURL", origin{cfgPath + ".vault_url", k.Line})
		}
		tenant, tk, hasTenant := get("tenant_id")
		client, ck, hasClient := get("client_id")
		switch {
		case hasTenant && hasClient:
			env := envName("AZURE_CLIENT_SECRET", name, several)
			az.Auth.ClientSecret = &v1alpha1.AzureClientSecretAuth{TenantID: tenant, ClientID: client, ClientSecret: v1alpha1.ValueSource{FromEnv: env}}
			conv.set("spec.azure.auth.clientSecret.tenantID", origin{cfgPath + ".tenant_id", tk.Line})
			conv.set("spec.azure.auth.clientSecret.clientID", origin{cfgPath + ".client_id", ck.Line})
			dropCredential("client_secret", env, "spec.azure.auth.clientSecret.clientSecret")
		case hasTenant || hasClient:
			k := tk
			if k == nil {
				k = ck
			}
			c.warnf(k, cfgPath, "tenant_id and client_id go together (a service principal); with only one of them the converted %s uses DefaultAzureCredential, which reads AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET from the agent's environment", what)
			dropCredential("client_secret", "AZURE_CLIENT_SECRET", "DefaultAzureCredential")
		default:
			dropCredential("client_secret", "AZURE_CLIENT_SECRET", "DefaultAzureCredential")
		}
		switch method {
		case "", "env":
		case "iam_role":
			if az.Auth.ClientSecret == nil {
				az.Auth.ManagedIdentity = &v1alpha1.AzureManagedIdentityAuth{}
				conv.set("spec.azure.auth", origin{op.path + ".auth", authKey.Line})
			}
		default:
			c.errorf(authKey, op.path+".auth.method", "not an Azure auth method: use iam_role (managed identity), env, or config tenant_id/client_id with the client secret exported as AZURE_CLIENT_SECRET")
		}
		// Only a service principal store reads a variable of its own;
		// DefaultAzureCredential reads the conventional one.
		c.dropParams(op, params, map[string]string{"client_secret": envName("AZURE_CLIENT_SECRET", name, several && az.Auth.ClientSecret != nil)}, what)
		s.Spec.Azure = az
	case "file":
		f := &v1alpha1.FileProvider{}
		if p, k, ok := get("path"); ok {
			if !strings.HasPrefix(p, "/") {
				c.errorf(k, cfgPath+".path", "must be an absolute directory: the agent does not run in the directory the older DSO was started from; write the full path")
				conv.failed = append(conv.failed, "spec.file.dir")
			}
			f.Dir = p
			conv.set("spec.file.dir", origin{cfgPath + ".path", k.Line})
		} else if _, ok := cfg["path"]; !ok {
			if cf, ok := op.f["config"]; !op.merged && (!ok || !c.hadMerge(cf.val)) {
				c.errorf(op.key, cfgPath+".path", "a file provider needs config.path: the absolute directory holding one file per secret")
			}
			conv.failed = append(conv.failed, "spec.file.dir")
		}
		if authKey != nil {
			c.warnf(authKey, op.path+".auth", "not carried over: a file store needs no credentials")
		}
		s.Spec.File = f
	}
	for _, p := range cfgOrder {
		k := p.key.Value
		if used[k] {
			continue
		}
		if looksLikeCredential(k) {
			c.warnf(p.key, cfgPath+"."+k, "the inline %s was not copied: %s has no setting for it; give the agent the credential through its environment", credentialWord(k), what)
			continue
		}
		c.warnf(p.key, cfgPath+"."+k, "not carried over: a %s store has no such setting", op.typ)
	}
	return conv
}

// auth reads a provider's auth: {method, params}. The params are returned
// for the provider to pick the ones it understands; the rest are reported
// by dropParams.
func (c *legacyConv) auth(op *oldProvider) (method string, params map[string]kv, key *yaml.Node) {
	a, ok := op.f["auth"]
	if !ok {
		return "", nil, nil
	}
	path := op.path + ".auth"
	f := c.fields(a.val, path, "method", "params")
	if m, ok := f["method"]; ok {
		method, _ = c.str(m.val, path+".method")
	}
	params = map[string]kv{}
	for _, p := range c.mapping(f["params"].val, path+".params") {
		params[p.key.Value] = p
	}
	return method, params, a.key
}

// dropParams reports the auth params a provider did not use: credentials
// (never copied: export envs[k]) and other settings.
func (c *legacyConv) dropParams(op *oldProvider, params map[string]kv, envs map[string]string, what string) {
	for _, p := range sortedParams(params) {
		k := p.key.Value
		path := op.path + ".auth.params." + k
		if env, ok := envs[strings.ToLower(k)]; ok {
			c.warnf(p.key, path, "the inline %s was not copied; export %s to the agent or use fromFile (%s)", credentialWord(k), env, what)
			continue
		}
		if looksLikeCredential(k) {
			c.warnf(p.key, path, "the inline %s was not copied: %s has no setting for it; give the agent the credential through its environment", credentialWord(k), what)
			continue
		}
		c.warnf(p.key, path, "not carried over: %s has no such auth setting", what)
	}
}

// sortedParams lists auth params in file order.
func sortedParams(params map[string]kv) []kv {
	keys := make([]kv, 0, len(params))
	for _, p := range params {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b kv) int {
		return cmp.Or(cmp.Compare(a.key.Line, b.key.Line), cmp.Compare(a.key.Column, b.key.Column))
	})
	return keys
}

// credentialWord names a credential in a warning by its key ("token",
// "secret_access_key"), never by its value.
func credentialWord(k string) string {
	lk := strings.ToLower(k)
	if lk == "token" || strings.HasSuffix(lk, "_token") {
		return "token"
	}
	return "credential " + k
}

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// ---- agent:, logging:, defaults: -> AgentConfig ----

// oldRotation is a rotation setting of the older schema at one level
// (a secret, defaults:, agent:), each field with where it was written.
type oldRotation struct {
	enabled    *bool
	enabledAt  origin
	enabledKey *yaml.Node
	strategy   string
	strategyAt origin
	stratKey   *yaml.Node
	signal     string
	signalAt   origin
	signalKey  *yaml.Node
	timeout    *v1alpha1.Duration
	timeoutAt  origin
}

// merge fills the unset fields of r from lower (a less specific level).
func (r oldRotation) merge(lower oldRotation) oldRotation {
	if r.enabled == nil {
		r.enabled, r.enabledAt, r.enabledKey = lower.enabled, lower.enabledAt, lower.enabledKey
	}
	if r.strategy == "" {
		r.strategy, r.strategyAt, r.stratKey = lower.strategy, lower.strategyAt, lower.stratKey
	}
	if r.signal == "" {
		r.signal, r.signalAt, r.signalKey = lower.signal, lower.signalAt, lower.signalKey
	}
	return r
}

// rotation reads a v2 rotation mapping, or a v1 boolean.
func (c *legacyConv) rotation(n *yaml.Node, path string) oldRotation {
	var r oldRotation
	rn := c.resolve(n)
	if c.over || absent(rn) {
		return r
	}
	if rn.Kind == yaml.ScalarNode && rn.ShortTag() == "!!bool" {
		if b, ok := c.boolean(rn, path); ok {
			r.enabled, r.enabledAt, r.enabledKey = &b, origin{path, rn.Line}, rn
		}
		return r
	}
	f := c.fields(rn, path, "enabled", "strategy", "signal", "health_check_timeout")
	if e, ok := f["enabled"]; ok {
		if b, ok := c.boolean(e.val, path+".enabled"); ok {
			r.enabled, r.enabledAt, r.enabledKey = &b, origin{path + ".enabled", e.key.Line}, e.key
		}
	}
	if s, ok := f["strategy"]; ok {
		if v, ok := c.str(s.val, path+".strategy"); ok {
			if !containsStrategy(v) {
				c.errorf(s.val, path+".strategy", "unknown rotation strategy: want one of restart, signal, rolling, auto, none")
			} else {
				r.strategy, r.strategyAt, r.stratKey = v, origin{path + ".strategy", s.key.Line}, s.key
			}
		}
	}
	if s, ok := f["signal"]; ok {
		if v, ok := c.str(s.val, path+".signal"); ok {
			r.signal, r.signalAt, r.signalKey = v, origin{path + ".signal", s.key.Line}, s.key
		}
	}
	if t, ok := f["health_check_timeout"]; ok {
		if d, ok := c.duration(t.val, path+".health_check_timeout"); ok {
			r.timeout, r.timeoutAt = d, origin{path + ".health_check_timeout", t.key.Line}
		}
	}
	return r
}

func containsStrategy(s string) bool {
	for _, v := range v1alpha1.RotationStrategies {
		if string(v) == s {
			return true
		}
	}
	return false
}

type oldAgent struct {
	conv     *converted
	obj      *v1alpha1.AgentConfig
	rotation oldRotation // agent.rotation: the least specific rotation default
}

func (a *oldAgent) setTimeout(d *v1alpha1.Duration, at origin) {
	a.obj.Spec.Agent.Rotation.Timeout = d
	a.conv.set("spec.agent.rotation.timeout", at)
}

func (c *legacyConv) agent(top map[string]kv) *oldAgent {
	obj := &v1alpha1.AgentConfig{}
	obj.APIVersion, obj.Kind = v1alpha1.APIVersion, v1alpha1.KindAgentConfig
	conv := &converted{kind: v1alpha1.KindAgentConfig, obj: obj, at: origin{"", 1}, origins: map[string]origin{}}
	a := &oldAgent{conv: conv, obj: obj}
	spec := &obj.Spec
	for _, k := range []string{"agent", "logging", "defaults"} {
		if p, ok := top[k]; ok {
			conv.at = origin{k, p.key.Line}
			break
		}
	}
	conv.set("", conv.at)

	if ag, ok := top["agent"]; ok {
		f := c.fields(ag.val, "agent", "cache", "refresh_interval", "auto_sync", "restart_strategy", "watch", "rotation")
		if k, ok := f["cache"]; ok {
			c.warnf(k.key, "agent.cache", "not carried over: dso always caches fetched values; agent.cache.ttl and agent.cache.max_size tune the cache")
		}
		if k, ok := f["auto_sync"]; ok {
			c.warnf(k.key, "agent.auto_sync", "not carried over: the dso agent always keeps containers converged to their bindings")
		}
		if rs, ok := f["restart_strategy"]; ok {
			rf := c.fields(rs.val, "agent.restart_strategy", "type", "grace_period")
			if k, ok := rf["type"]; ok {
				c.warnf(k.key, "agent.restart_strategy.type", "not carried over: each SecretBinding has its own spec.rotation.strategy; the default, auto, is a health-gated rolling swap")
			}
			if k, ok := rf["grace_period"]; ok {
				c.warnf(k.key, "agent.restart_strategy.grace_period", "not carried over: dso stops an old container with the container's own stop timeout, and waits up to agent.rotation.timeout for the new one to be healthy")
			}
			if len(rf) == 0 {
				c.warnf(rs.key, "agent.restart_strategy", "not carried over: each SecretBinding has its own spec.rotation.strategy")
			}
		}
		var refresh *v1alpha1.Duration
		var refreshAt origin
		if k, ok := f["refresh_interval"]; ok {
			if d, ok := c.duration(k.val, "agent.refresh_interval"); ok {
				refresh, refreshAt = d, origin{"agent.refresh_interval", k.key.Line}
			}
		}
		if w, ok := f["watch"]; ok {
			wf := c.fields(w.val, "agent.watch", "mode", "polling_interval", "webhook")
			if k, ok := wf["mode"]; ok {
				c.warnf(k.key, "agent.watch.mode", "not carried over: dso polls each store every agent.watch.polling_interval (or the store's refreshInterval), and agent.watch.webhook can ask it to fetch at once")
			}
			if k, ok := wf["polling_interval"]; ok {
				if d, ok := c.duration(k.val, "agent.watch.polling_interval"); ok {
					spec.Agent.Watch.PollingInterval = d
					conv.set("spec.agent.watch.polling_interval", origin{"agent.watch.polling_interval", k.key.Line})
				}
			}
			if wh, ok := wf["webhook"]; ok {
				c.webhook(wh, a)
			}
		}
		if refresh != nil {
			if spec.Agent.Watch.PollingInterval == nil {
				spec.Agent.Watch.PollingInterval = refresh
				conv.set("spec.agent.watch.polling_interval", refreshAt)
			} else {
				c.warnf(f["refresh_interval"].key, "agent.refresh_interval", "not carried over: agent.watch.polling_interval is set too and is used")
			}
		}
		if r, ok := f["rotation"]; ok {
			a.rotation = c.rotation(r.val, "agent.rotation")
			if a.rotation.timeout != nil {
				a.setTimeout(a.rotation.timeout, a.rotation.timeoutAt)
			}
		}
	}
	if lg, ok := top["logging"]; ok {
		f := c.fields(lg.val, "logging", "level", "format")
		if k, ok := f["level"]; ok {
			if v, ok := c.str(k.val, "logging.level"); ok {
				if v == "warning" {
					v = "warn"
				}
				spec.Logging.Level = v
				conv.set("spec.logging.level", origin{"logging.level", k.key.Line})
			}
		}
		if k, ok := f["format"]; ok {
			if v, ok := c.str(k.val, "logging.format"); ok {
				if v == "text" {
					v = "console"
				}
				spec.Logging.Format = v
				conv.set("spec.logging.format", origin{"logging.format", k.key.Line})
			}
		}
	}
	return a
}

func (c *legacyConv) webhook(wh kv, a *oldAgent) {
	const path = "agent.watch.webhook"
	f := c.fields(wh.val, path, "enabled", "auth_token", "endpoint")
	w := &a.obj.Spec.Agent.Watch.Webhook
	a.conv.set("spec.agent.watch.webhook", origin{path, wh.key.Line})
	enabled := false
	if k, ok := f["enabled"]; ok {
		if b, ok := c.boolean(k.val, path+".enabled"); ok {
			enabled = b
			w.Enabled = b
			a.conv.set("spec.agent.watch.webhook.enabled", origin{path + ".enabled", k.key.Line})
		}
	}
	tok, hasTok := f["auth_token"]
	inline := hasTok && !absent(c.resolve(tok.val))
	if enabled || inline {
		w.Token = &v1alpha1.ValueSource{FromEnv: "DSO_WEBHOOK_TOKEN"}
		a.conv.set("spec.agent.watch.webhook.token", origin{path, wh.key.Line})
	}
	switch {
	case inline:
		c.warnf(tok.key, path+".auth_token", "the inline token was not copied; export DSO_WEBHOOK_TOKEN to the agent or use fromFile (agent.watch.webhook.token)")
	case enabled:
		c.warnf(f["enabled"].key, path, "the webhook's bearer token is read from DSO_WEBHOOK_TOKEN: export it to the agent, or use fromFile (agent.watch.webhook.token)")
	}
	if k, ok := f["endpoint"]; ok {
		c.warnf(k.key, path+".endpoint", "not carried over: dso's webhook listens on agent.watch.webhook.listen (default 127.0.0.1:9470)")
	}
}

// oldInject is an inject setting, each field with where it was written.
type oldInject struct {
	typ          string
	typAt        origin
	path         string
	pathAt       origin
	uid, gid     *int64
	uidAt, gidAt origin
	// bad: an inject type was written but is not env or file (reported).
	bad bool
}

type oldDefaults struct {
	inject   oldInject
	rotation oldRotation
}

func (c *legacyConv) defaults(d kv) oldDefaults {
	var out oldDefaults
	if d.key == nil {
		return out
	}
	f := c.fields(d.val, "defaults", "inject", "rotation")
	if in, ok := f["inject"]; ok {
		out.inject = c.inject(in, "defaults.inject")
	}
	if r, ok := f["rotation"]; ok {
		out.rotation = c.rotation(r.val, "defaults.rotation")
	}
	return out
}

// inject reads a v2 inject mapping, or a v1 string (the type alone).
func (c *legacyConv) inject(in kv, path string) oldInject {
	var out oldInject
	n := c.resolve(in.val)
	if c.over || absent(n) {
		return out
	}
	if n.Kind == yaml.ScalarNode {
		if v, ok := c.str(n, path); ok {
			out.typ, out.typAt = v, origin{path, n.Line}
			if v != "env" && v != "file" {
				c.errorf(n, path, "unknown inject type: want env, file, or {type: file, path: ...}")
				out.typ, out.bad = "", true
			}
		}
		return out
	}
	f := c.fields(n, path, "type", "path", "uid", "gid")
	if k, ok := f["type"]; ok {
		if v, ok := c.str(k.val, path+".type"); ok {
			out.typ, out.typAt = v, origin{path + ".type", k.key.Line}
		}
	}
	if k, ok := f["path"]; ok {
		if v, ok := c.str(k.val, path+".path"); ok {
			out.path, out.pathAt = v, origin{path + ".path", k.key.Line}
		}
	}
	if k, ok := f["uid"]; ok {
		if v, ok := c.integer(k.val, path+".uid"); ok {
			out.uid, out.uidAt = &v, origin{path + ".uid", k.key.Line}
		}
	}
	if k, ok := f["gid"]; ok {
		if v, ok := c.integer(k.val, path+".gid"); ok {
			out.gid, out.gidAt = &v, origin{path + ".gid", k.key.Line}
		}
	}
	if out.typ != "" && out.typ != "env" && out.typ != "file" {
		c.errorf(f["type"].val, path+".type", "unknown inject type: want env or file")
		out.typ, out.bad = "", true
	}
	return out
}

// ---- secrets: -> SecretBindings ----

func (c *legacyConv) binding(n *yaml.Node, i int, provs []*oldProvider, byName map[string]*oldProvider, def oldDefaults, agentRot oldRotation) *converted {
	p := "secrets[" + strconv.Itoa(i) + "]"
	rn := c.resolve(n)
	if c.over || absent(rn) {
		return nil
	}
	f := c.fields(rn, p, "name", "provider", "inject", "rotation", "reload_strategy", "mappings", "targets")
	merged := c.hadMerge(rn)
	if rn.Kind != yaml.MappingNode {
		return nil
	}
	at := origin{p, rn.Line}

	key, hasKey := "", false
	if k, ok := f["name"]; ok {
		key, hasKey = c.str(k.val, p+".name")
	}
	if !hasKey || strings.TrimSpace(key) == "" {
		if !merged {
			c.errorf(rn, p+".name", "name is required: the secret's key in the store, e.g. prod/db/credentials")
		}
		hasKey = false // what follows from the missing key is this error
	}
	name := c.objectName("binding", key, "secret-"+strconv.Itoa(i+1))
	b := &v1alpha1.SecretBinding{ObjectMeta: metaName(name)}
	b.APIVersion, b.Kind = v1alpha1.APIVersion, v1alpha1.KindSecretBinding
	conv := &converted{kind: v1alpha1.KindSecretBinding, name: name, obj: b, at: at, origins: map[string]origin{}}
	conv.set("", at)
	if k, ok := f["name"]; ok {
		conv.set("metadata.name", origin{p + ".name", k.key.Line})
	}
	what := "SecretBinding " + name

	// The store.
	var prov *oldProvider
	if k, ok := f["provider"]; ok {
		if pn, ok := c.str(k.val, p+".provider"); ok {
			prov = byName[pn]
			if prov == nil {
				var names []string
				for _, op := range provs {
					names = append(names, op.name)
				}
				msg := "no provider of that name is declared"
				if s := suggest(pn, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				} else if len(names) > 0 {
					msg += ": declared are " + strings.Join(names, ", ")
				}
				c.errorf(k.val, p+".provider", "%s", msg)
			}
		}
		conv.set("spec.storeRef.name", origin{p + ".provider", k.key.Line})
	} else {
		switch len(provs) {
		case 1:
			prov = provs[0]
		case 0:
			// Reported once for the document.
		default:
			var names []string
			for _, op := range provs {
				names = append(names, op.name)
			}
			if !merged {
				c.errorf(rn, p+".provider", "several providers are declared (%s): name the one this secret comes from", strings.Join(names, ", "))
			}
		}
		conv.set("spec.storeRef.name", at)
	}
	if prov != nil && prov.store != nil {
		b.Spec.StoreRef.Name = prov.store.name
	} else {
		conv.failed = append(conv.failed, "spec.storeRef.name")
	}

	// Targets.
	errsBefore := len(*c.errs)
	if t, ok := f["targets"]; ok {
		tp := p + ".targets"
		conv.set("spec.target.selector", origin{tp, t.key.Line})
		tf := c.fields(t.val, tp, "containers", "labels")
		if k, ok := tf["containers"]; ok {
			names, nodes := c.stringList(k.val, tp+".containers")
			b.Spec.Target.Selector.Containers = names
			conv.set("spec.target.selector.containers", origin{tp + ".containers", k.key.Line})
			for j, nd := range nodes {
				conv.set(fmt.Sprintf("spec.target.selector.containers[%d]", j), origin{fmt.Sprintf("%s.containers[%d]", tp, j), nd.Line})
			}
		}
		if k, ok := tf["labels"]; ok {
			lp := tp + ".labels"
			conv.set("spec.target.selector.labels", origin{lp, k.key.Line})
			for _, l := range c.mapping(k.val, lp) {
				if v, ok := c.str(l.val, lp+"."+l.key.Value); ok {
					if b.Spec.Target.Selector.Labels == nil {
						b.Spec.Target.Selector.Labels = map[string]string{}
					}
					b.Spec.Target.Selector.Labels[l.key.Value] = v
				}
			}
		}
	}
	sel := b.Spec.Target.Selector
	if len(sel.Containers) == 0 && len(sel.Labels) == 0 {
		at := rn
		if t, ok := f["targets"]; ok {
			at = t.key
		}
		if t, ok := f["targets"]; merged || (ok && c.hadMerge(t.val)) || len(*c.errs) > errsBefore {
			// targets: was written but wrong (or may be in a refused
			// merge), and that was reported.
			conv.failed = append(conv.failed, "spec.target.selector")
		} else {
			c.errorf(at, p+".targets", "a SecretBinding needs a target selector: add targets: {containers: [NAME, ...]} or targets: {labels: {KEY: VALUE}} naming the containers that get this secret")
			conv.failed = append(conv.failed, "spec.target.selector")
		}
	}

	// Inject: the secret's own, else defaults.inject.
	var in oldInject
	if k, ok := f["inject"]; ok {
		in = c.inject(k, p+".inject")
	}
	if in.typ == "" && def.inject.typ != "" {
		in.typ, in.typAt = def.inject.typ, def.inject.typAt
	}
	if in.path == "" && def.inject.path != "" {
		in.path, in.pathAt = def.inject.path, def.inject.pathAt
	}
	if in.uid == nil && in.gid == nil {
		in.uid, in.uidAt, in.gid, in.gidAt = def.inject.uid, def.inject.uidAt, def.inject.gid, def.inject.gidAt
	}
	if in.typ == "" && !in.bad && !def.inject.bad {
		in.typ = "env"
		c.warnf(rn, p+".inject", "no inject type here or in defaults.inject: env assumed (mappings name environment variables)")
	}

	// Mappings: JSON field -> env var name.
	var maps []kv
	mp := p + ".mappings"
	if k, ok := f["mappings"]; ok {
		conv.set("spec.data", origin{mp, k.key.Line})
		maps = c.mapping(k.val, mp)
	}
	isAzure := prov != nil && prov.typ == "azure"
	property := func(fieldName string) string {
		// The older DSO wrapped every Azure value as {"value": ...}, so
		// the field "value" is the whole secret.
		if isAzure && fieldName == "value" {
			return ""
		}
		return fieldName
	}
	keyAt := origin{p + ".name", at.line}
	if k, ok := f["name"]; ok {
		keyAt.line = k.key.Line
	}

	switch in.typ {
	case "env":
		if in.path != "" && strings.HasPrefix(in.pathAt.path, p) {
			c.warnf(rn, in.pathAt.path, "not carried over: path is only used by file inject")
		}
		if (in.uid != nil && strings.HasPrefix(in.uidAt.path, p)) || (in.gid != nil && strings.HasPrefix(in.gidAt.path, p)) {
			c.warnf(rn, p+".inject", "not carried over: uid and gid are only used by file inject")
		}
		for _, m := range maps {
			mpath := mp + "." + m.key.Value
			v, ok := c.str(m.val, mpath)
			if !ok {
				continue
			}
			dp := fmt.Sprintf("spec.data[%d]", len(b.Spec.Data))
			b.Spec.Data = append(b.Spec.Data, v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: key, Property: property(m.key.Value)}, Env: v})
			conv.set(dp, origin{mpath, m.key.Line})
			conv.set(dp+".remoteRef.key", keyAt)
		}
		if k, ok := f["mappings"]; ok && len(maps) == 0 && c.hadMerge(k.val) {
			conv.failed = append(conv.failed, "spec.data") // the merge key's error
			break
		}
		if len(maps) == 0 && hasKey {
			env, ok := deriveEnvName(key)
			if !ok {
				c.errorf(rn, mp, "inject env without mappings: no environment variable name can be derived from the key %q without guessing; add mappings: {FIELD: VAR_NAME} naming each JSON field of the secret and its variable", key)
				conv.failed = append(conv.failed, "spec.data")
				break
			}
			b.Spec.Data = append(b.Spec.Data, v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: key}, Env: env})
			conv.set("spec.data[0]", at)
			conv.set("spec.data[0].remoteRef.key", keyAt)
			c.warnf(rn, p, "no mappings: the whole value of %q is delivered as %s (named after the key); add mappings: {FIELD: VAR_NAME} if the secret is JSON and its fields are wanted", key, env)
		}
	case "file":
		if len(maps) > 1 {
			file := "one file"
			if in.path != "" {
				file += " (" + in.path + ")"
			}
			c.errorf(f["mappings"].key, mp, "file inject writes %s, but %d mappings name %d fields: split this secret into one entry per field, each with its own inject.path (or write a dataFrom with a dir in the converted SecretBinding to get one file per field)", file, len(maps), len(maps))
			conv.failed = append(conv.failed, "spec.data")
		}
		if in.path == "" {
			c.errorf(rn, p+".inject.path", "file inject needs a path (here or in defaults.inject): the absolute path of the file inside the container")
			conv.failed = append(conv.failed, "spec.data")
			break
		}
		prop := ""
		if len(maps) == 1 {
			prop = property(maps[0].key.Value)
		}
		ft := &v1alpha1.FileTarget{Path: in.path, UID: in.uid, GID: in.gid}
		b.Spec.Data = append(b.Spec.Data, v1alpha1.SecretData{RemoteRef: v1alpha1.RemoteRef{Key: key, Property: prop}, File: ft})
		if len(maps) == 1 {
			conv.set("spec.data[0]", origin{mp + "." + maps[0].key.Value, maps[0].key.Line})
		} else {
			conv.set("spec.data[0]", at)
		}
		conv.set("spec.data[0].remoteRef.key", keyAt)
		conv.set("spec.data[0].file.path", in.pathAt)
		if in.uid != nil {
			conv.set("spec.data[0].file.uid", in.uidAt)
		}
		if in.gid != nil {
			conv.set("spec.data[0].file.gid", in.gidAt)
		}
	default:
		conv.failed = append(conv.failed, "spec.data")
	}
	if !hasKey {
		for j := range b.Spec.Data {
			conv.failed = append(conv.failed, fmt.Sprintf("spec.data[%d].remoteRef.key", j))
		}
		if len(b.Spec.Data) == 0 {
			conv.failed = append(conv.failed, "spec.data")
		}
	}

	c.bindingRotation(b, conv, f, p, def.rotation, agentRot, in.typ == "file", what)
	return conv
}

// bindingRotation maps the merged rotation settings (the secret's, then
// defaults.rotation, then agent.rotation) onto spec.rotation.
func (c *legacyConv) bindingRotation(b *v1alpha1.SecretBinding, conv *converted, f map[string]kv, p string, def, agentRot oldRotation, fileOnly bool, what string) {
	var own oldRotation
	if k, ok := f["rotation"]; ok {
		own = c.rotation(k.val, p+".rotation")
	}
	if k, ok := f["reload_strategy"]; ok {
		rp := p + ".reload_strategy"
		rf := c.fields(k.val, rp, "type")
		if t, ok := rf["type"]; ok {
			if v, ok := c.str(t.val, rp+".type"); ok {
				switch {
				case !containsStrategy(v):
					c.errorf(t.val, rp+".type", "unknown rotation strategy: want one of restart, signal, rolling, auto, none")
				case own.strategy == "":
					own.strategy, own.strategyAt, own.stratKey = v, origin{rp + ".type", t.key.Line}, t.key
					if own.enabled == nil {
						yes := true
						own.enabled, own.enabledAt, own.enabledKey = &yes, own.strategyAt, t.key
					}
				default:
					c.warnf(t.key, rp+".type", "not carried over: rotation.strategy is set too and is used")
				}
			}
		}
	}
	r := own.merge(def).merge(agentRot)
	rot := &b.Spec.Rotation
	if own.timeout != nil {
		rot.HealthTimeout = own.timeout
		conv.set("spec.rotation.healthTimeout", own.timeoutAt)
	} else if def.timeout != nil {
		// Only when agent.rotation set the agent-wide timeout already.
		rot.HealthTimeout = def.timeout
		conv.set("spec.rotation.healthTimeout", def.timeoutAt)
	}

	strategy, at, key := r.strategy, r.strategyAt, r.stratKey
	switch {
	case r.enabled != nil && !*r.enabled:
		if fileOnly {
			strategy, at, key = string(v1alpha1.RotationNone), r.enabledAt, r.enabledKey
		} else {
			c.warnf(r.enabledKey, r.enabledAt.path, "rotation is disabled, but %s (%s) delivers env vars, which only a new container can pick up: it is rotated with strategy auto (a health-gated swap) when the secret changes", what, p)
			switch v1alpha1.RotationStrategy(strategy) {
			case v1alpha1.RotationRestart, v1alpha1.RotationSignal, v1alpha1.RotationNone:
				strategy = "" // said by the warning above
			}
		}
	case strategy == "" && r.enabled != nil && *r.enabled && fileOnly:
		// The older DSO's strategy when rotation was enabled without one.
		strategy, at, key = string(v1alpha1.RotationRestart), r.enabledAt, r.enabledKey
	}
	switch v1alpha1.RotationStrategy(strategy) {
	case v1alpha1.RotationRestart, v1alpha1.RotationSignal, v1alpha1.RotationNone:
		if !fileOnly {
			c.warnf(key, at.path, "strategy %s only rewrites files in dso, but %s (%s) delivers env vars, which only a new container can pick up: it uses auto (a health-gated swap)", strategy, what, p)
			strategy = string(v1alpha1.RotationAuto)
		}
	}
	if strategy != "" {
		rot.Strategy = v1alpha1.RotationStrategy(strategy)
		conv.set("spec.rotation.strategy", at)
	}
	if r.signal != "" {
		switch {
		case rot.Strategy == v1alpha1.RotationSignal:
			rot.Signal = r.signal
			conv.set("spec.rotation.signal", r.signalAt)
		case strings.HasPrefix(r.signalAt.path, p+"."):
			c.warnf(r.signalKey, r.signalAt.path, "not carried over: a signal is only sent by strategy signal, and %s uses %s", what, strategyName(rot.Strategy))
		}
	}
}

func strategyName(s v1alpha1.RotationStrategy) string {
	if s == "" {
		return string(v1alpha1.RotationAuto)
	}
	return string(s)
}

// deriveEnvName names the env var of a secret delivered whole when the old
// entry had no mappings. Only a key that is one plain word is used (db-pass
// -> DB_PASS): a path or an ARN has several plausible names, and guessing
// would put the value into a variable nobody reads.
func deriveEnvName(key string) (string, bool) {
	if key == "" || strings.ContainsAny(key, "/:") {
		return "", false
	}
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_':
			b.WriteRune(r)
		case r == '-' || r == '.':
			b.WriteByte('_')
		default:
			return "", false
		}
	}
	s := b.String()
	if s[0] >= '0' && s[0] <= '9' {
		return "", false
	}
	return s, true
}

// ---- Migration: the converted file ----

// Migration is the result of converting a file for `docker dso migrate`.
type Migration struct {
	// Legacy says whether the file holds an older-schema document at all;
	// when false there is nothing to convert.
	Legacy bool
	// YAML is the converted file: a header comment, then the AgentConfig
	// (when the old file sets anything it carries), the SecretStores and the
	// SecretBindings, then any document of the file that was already in the
	// new schema. Set only when there are no errors.
	YAML []byte
	// Stores and Bindings count the converted objects.
	Stores, Bindings int
	// Warnings are the conversion's notes, in file order.
	Warnings []*Error
}

// Migrate converts a file written for the older DSO schema. name is used in
// messages and in the header of the output. Every problem is returned at
// once. The output is checked by loading it back, so what Migrate returns
// always loads and validates.
func Migrate(name string, data []byte) (*Migration, ErrorList) {
	m := &Migration{}
	if len(data) > maxFileSize {
		return m, ErrorList{{File: name, Msg: fmt.Sprintf("file is larger than %d MiB; is this the right file?", maxFileSize>>20)}}
	}
	nodes, errs := decodeYAML(name, data)
	var docs []*document
	var results []*legacyResult
	var others []*yaml.Node
	for _, n := range nodes {
		if isLegacyNode(n) {
			m.Legacy = true
			r := convertLegacy(name, n, &errs)
			results = append(results, r)
			m.Warnings = append(m.Warnings, r.warnings...)
			for _, d := range r.documents() {
				validateLegacy(d, &errs)
				docs = append(docs, d)
			}
			continue
		}
		if d := parseDocument(name, n, &errs); d != nil {
			docs = append(docs, d)
			others = append(others, n)
		}
	}
	if !m.Legacy {
		// Not YAML, or not valid in the new schema either: report it as
		// config validate would, never as "nothing to do".
		errs.sort()
		return m, errs
	}
	b, more := assemble(docs)
	errs = append(errs, more...)
	errs = append(errs, checkStoreRefs(b, docs)...)
	if len(errs) > 0 {
		errs.sort()
		return m, errs
	}
	var objs []*converted
	for _, r := range results {
		objs = append(objs, r.objects()...)
	}
	out, err := renderMigration(name, m.Warnings, objs, others)
	if err != nil {
		return m, ErrorList{{File: name, Msg: "internal error: the converted objects could not be written as YAML; please report this"}}
	}
	if _, perrs := parseClosedFile(name, out); len(perrs) > 0 {
		return m, append(ErrorList{{File: name, Msg: "internal error: the converted file does not load; please report this"}}, perrs...)
	}
	m.YAML = out
	m.Stores, m.Bindings = len(b.Stores), len(b.Bindings)
	return m, nil
}

// parseClosedFile is ParseFile plus the store reference check: what
// `config validate -f` does for one self-contained file.
func parseClosedFile(name string, data []byte) (*Bundle, ErrorList) {
	docs, errs := parseDocuments(name, data)
	b, more := assemble(docs)
	errs = append(errs, more...)
	errs = append(errs, checkStoreRefs(b, docs)...)
	errs.sort()
	settleLegacyHeadlines(b, errs)
	return b, errs
}

// renderMigration writes the converted objects as one multi-document file.
func renderMigration(name string, warns []*Error, objs []*converted, others []*yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Converted by \"docker dso migrate\" from %s,\n", oneLine(name))
	buf.WriteString("# which was written for the older DSO schema (providers:/secrets:).\n")
	buf.WriteString("# Check it with \"docker dso config validate\"; docs/migration.md explains each rule.\n")
	if len(warns) > 0 {
		buf.WriteString("#\n# Notes from the conversion:\n")
		for _, w := range warns {
			buf.WriteString("#   " + oneLine(w.Error()) + "\n")
		}
	}
	first := true
	emit := func(n *yaml.Node) error {
		if !first {
			buf.WriteString("---\n")
		}
		first = false
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(n); err != nil {
			return err
		}
		return enc.Close()
	}
	for _, c := range objs {
		n, err := objectNode(c.obj)
		if err != nil {
			return nil, err
		}
		if err := emit(n); err != nil {
			return nil, err
		}
	}
	for _, n := range others {
		if err := emit(n); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// objectNode turns an object into a YAML node in the API's field order
// (through JSON, whose tags the types carry), without null values, empty
// mappings or status. An AgentConfig is written the way the operations
// guide writes it: apiVersion and kind, then its keys at the top level.
func objectNode(obj any) (*yaml.Node, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	n := doc.Content[0]
	dropKey(n, "status")
	// TypeMeta's JSON order is kind, apiVersion; files say apiVersion first.
	if len(n.Content) >= 4 && n.Content[0].Value == "kind" && n.Content[2].Value == "apiVersion" {
		n.Content[0], n.Content[1], n.Content[2], n.Content[3] = n.Content[2], n.Content[3], n.Content[0], n.Content[1]
	}
	if _, ok := obj.(*v1alpha1.AgentConfig); ok {
		dropKey(n, "metadata")
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "spec" {
				spec := n.Content[i+1]
				n.Content = append(n.Content[:i:i], append(spec.Content, n.Content[i+2:]...)...)
				break
			}
		}
	}
	prune(n)
	restyle(n, true)
	return n, nil
}

func dropKey(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}

// prune removes null values and mappings left empty, depth first; it
// reports whether n itself is now empty.
func prune(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode:
		var kept []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			v := n.Content[i+1]
			if isNull(v) || prune(v) {
				continue
			}
			kept = append(kept, n.Content[i], v)
		}
		n.Content = kept
		return len(kept) == 0
	case yaml.SequenceNode:
		for _, c := range n.Content {
			prune(c)
		}
	}
	return false
}

// restyle drops the JSON quoting (the encoder quotes where YAML needs it)
// and writes small mappings and lists of scalars in flow style, as the
// samples do: storeRef: {name: vault}, containers: [api].
func restyle(n *yaml.Node, top bool) {
	n.Style = 0
	for _, c := range n.Content {
		restyle(c, false)
	}
	if (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && !top && len(n.Content) <= 6 {
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return
			}
		}
		n.Style = yaml.FlowStyle
	}
}
