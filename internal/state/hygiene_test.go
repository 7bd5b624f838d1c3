package state_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/state"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// The store keeps whatever JSON it is handed, so the guarantee "no plaintext
// in the state store" rests on the record types the agent hands in. These
// tests pin both halves: the store's write methods take only record JSON plus
// addressing (names, times, trace ids), and the record types have no field
// that could hold a secret value.

func TestWriteMethodsTakeOnlyRecords(t *testing.T) {
	allowed := map[reflect.Type]bool{
		reflect.TypeFor[string]():    true, // kind, name, binding, trace id
		reflect.TypeFor[[]string]():  true, // bindings of a rotation
		reflect.TypeFor[[]byte]():    true, // the record's JSON
		reflect.TypeFor[time.Time](): true,
	}
	st := reflect.TypeFor[*state.Store]()
	writers := 0
	for i := range st.NumMethod() {
		m := st.Method(i)
		if !strings.HasPrefix(m.Name, "Put") && !strings.HasPrefix(m.Name, "Append") {
			continue
		}
		writers++
		bytesParams := 0
		for j := 1; j < m.Type.NumIn(); j++ { // 0 is the receiver
			in := m.Type.In(j)
			if !allowed[in] {
				t.Errorf("%s takes a %s: write methods take record JSON, names and times only", m.Name, in)
			}
			if in == reflect.TypeFor[[]byte]() {
				bytesParams++
			}
		}
		if bytesParams != 1 {
			t.Errorf("%s takes %d []byte parameters, want exactly one (the record)", m.Name, bytesParams)
		}
	}
	if writers != 5 {
		t.Errorf("found %d Put/Append methods, want 5 (PutObject, PutStatus, AppendRotation, AppendRecovery, AppendEvent): update this test with the new one", writers)
	}
}

// suspicious names a field that sounds like it carries a credential or a
// secret's value.
var suspicious = regexp.MustCompile(`(?i)value|secret|plaintext|password|passwd|token|credential|privatekey`)

func TestRecordTypesHoldNoValues(t *testing.T) {
	records := []any{
		v1.SecretStore{}, v1.SecretBinding{}, v1.SecretBindingStatus{}, v1.SecretStoreStatus{},
		containerswap.Rotation{}, containerswap.RecoveryAction{},
	}
	for _, r := range records {
		rt := reflect.TypeOf(r)
		t.Run(rt.Name(), func(t *testing.T) {
			for _, p := range checkFields(rt, rt.Name(), map[reflect.Type]bool{}) {
				t.Errorf("%s sounds like it holds a secret value; records stored in the state store carry names, hashes and timings only", p)
			}
		})
	}
}

// TestCheckFieldsFlags proves the checker above can fail.
func TestCheckFieldsFlags(t *testing.T) {
	type ref struct{ FromEnv string }
	type inner struct{ Password []byte }
	type bad struct {
		Name   string
		Token  ref            // a reference: fine
		Value  *string        // flagged
		Nested []inner        // flagged inside
		Data   map[string]int // not suspicious by name
	}
	got := checkFields(reflect.TypeFor[bad](), "bad", map[reflect.Type]bool{})
	want := []string{"bad.Value (*string)", "bad.Nested.Password ([]uint8)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("checkFields = %v, want %v", got, want)
	}
}

// checkFields fails on a string, []byte or map field with a suspicious name:
// such a field can hold a value. A suspicious name is fine on a struct (a
// reference such as v1alpha1.ValueSource: fromEnv/fromFile).
func checkFields(rt reflect.Type, path string, seen map[reflect.Type]bool) (problems []string) {
	for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Array || rt.Kind() == reflect.Map {
		if rt.Kind() == reflect.Slice && rt.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		rt = rt.Elem()
	}
	if rt.Kind() != reflect.Struct || seen[rt] {
		return nil
	}
	seen[rt] = true
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		canHold := ft.Kind() == reflect.String || ft.Kind() == reflect.Map || (ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Uint8)
		if canHold && suspicious.MatchString(f.Name) {
			problems = append(problems, fmt.Sprintf("%s.%s (%s)", path, f.Name, f.Type))
		}
		problems = append(problems, checkFields(f.Type, path+"."+f.Name, seen)...)
	}
	return problems
}

// TestErrorsDoNotQuoteRecords hands every write method a record that carries
// a marker and is refused; no error may contain the marker.
func TestErrorsDoNotQuoteRecords(t *testing.T) {
	const marker = "s3cr3t-MARKER-value"
	s, err := state.Open(filepath.Join(t.TempDir(), "st"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	broken := []byte(`{"password":"` + marker + `"`) // not valid JSON
	valid := []byte(`{"password":"` + marker + `"}`)
	now := time.Now()
	calls := map[string]func() error{
		"PutObject invalid":      func() error { _, err := s.PutObject(state.KindSecretBinding, "b", broken); return err },
		"PutObject bad kind":     func() error { _, err := s.PutObject("Secret", "b", valid); return err },
		"PutStatus invalid":      func() error { return s.PutStatus(state.KindSecretBinding, "b", broken) },
		"PutStatus bad name":     func() error { return s.PutStatus(state.KindSecretBinding, "", valid) },
		"AppendRotation invalid": func() error { return s.AppendRotation(now, "tr", []string{"b"}, broken) },
		"AppendRotation no time": func() error { return s.AppendRotation(time.Time{}, "tr", nil, valid) },
		"AppendRecovery invalid": func() error { return s.AppendRecovery(now, broken) },
		"AppendEvent invalid":    func() error { return s.AppendEvent(now, "b", broken) },
		"AppendEvent no time":    func() error { return s.AppendEvent(time.Time{}, "b", valid) },
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s: accepted, want a refusal", name)
			continue
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("%s: error quotes the record: %q", name, err)
		}
	}
}
