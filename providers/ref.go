package providers

import (
	"encoding/json"
	"strings"
)

// ValidateRef refuses keys that could escape a store's namespace or confuse
// a backend: empty, absolute, containing "..", NUL or control characters.
// It runs before any provider call.
func ValidateRef(store string, ref Ref) error {
	k := ref.Key
	switch {
	case k == "":
		return Errorf(KindInvalidRef, store, k, "key is empty")
	case strings.HasPrefix(k, "/"):
		return Errorf(KindInvalidRef, store, k, "key must not be an absolute path")
	case strings.ContainsRune(k, 0):
		return Errorf(KindInvalidRef, store, "", "key contains a NUL byte")
	}
	for _, part := range strings.Split(k, "/") {
		if part == ".." {
			return Errorf(KindInvalidRef, store, k, `key must not contain ".."`)
		}
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return Errorf(KindInvalidRef, store, "", "key contains a control character")
		}
	}
	if strings.ContainsRune(ref.Property, 0) || strings.ContainsRune(ref.Version, 0) {
		return Errorf(KindInvalidRef, store, k, "property or version contains a NUL byte")
	}
	return nil
}

// CheckSize refuses values larger than MaxValueSize.
func CheckSize(store, key string, n int) error {
	if n > MaxValueSize {
		return Errorf(KindInvalidRef, store, key, "value is %d bytes, over the 1 MiB limit", n)
	}
	return nil
}

// Finish applies the common post-fetch rules to a raw value: the size limit,
// JSON field parsing, and Property extraction. Providers call it last.
func Finish(store string, ref Ref, raw []byte, version string) (Secret, error) {
	if err := CheckSize(store, ref.Key, len(raw)); err != nil {
		return Secret{}, err
	}
	s := Secret{Value: raw, Version: version, Fields: JSONFields(raw)}
	if ref.Property == "" {
		return s, nil
	}
	if s.Fields == nil {
		return Secret{}, Errorf(KindNotFound, store, ref.Key, "property %q requested but the secret is not a JSON object", ref.Property)
	}
	v, ok := s.Fields[ref.Property]
	if !ok {
		return Secret{}, Errorf(KindNotFound, store, ref.Key, "field %q not in secret", ref.Property)
	}
	return Secret{Value: v, Version: version, Fields: nil}, nil
}

// JSONFields parses raw as a flat JSON object; strings keep their bytes,
// numbers and booleans their JSON text, nested objects/arrays their JSON.
// It returns nil when raw is not a JSON object.
func JSONFields(raw []byte) map[string][]byte {
	t := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(t, "{") {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		if len(v) > 0 && v[0] == '"' {
			var str string
			if json.Unmarshal(v, &str) != nil {
				continue
			}
			out[k] = []byte(str)
			continue
		}
		out[k] = append([]byte(nil), v...)
	}
	return out
}
