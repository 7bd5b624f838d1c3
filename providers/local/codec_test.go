package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123, time.UTC)
	c := &container{
		Entries: map[string]*entry{
			"b":      {Value: []byte("a\x00b\n"), Version: 3, Updated: at},
			"a/long": {Value: bytes.Repeat([]byte{0xff}, 300), Version: 1 << 40, Updated: at},
			"empty":  {Value: []byte{}, Version: 1, Updated: at},
		},
		Deleted: map[string]int64{"gone": 9},
	}
	got, err := decode(encode(c))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 3 || got.Deleted["gone"] != 9 {
		t.Fatalf("decode = %+v", got)
	}
	for k, want := range c.Entries {
		e := got.Entries[k]
		if e == nil || !bytes.Equal(e.Value, want.Value) || e.Version != want.Version || !e.Updated.Equal(want.Updated) {
			t.Errorf("key %q: got %+v, want %+v", k, e, want)
		}
	}
	// find agrees with decode for every key, and misses an absent one.
	plain := encode(c)
	for k, want := range c.Entries {
		e, ok, err := find(plain, k)
		if err != nil || !ok || !bytes.Equal(e.Value, want.Value) || e.Version != want.Version || !e.Updated.Equal(want.Updated) {
			t.Errorf("find(%q) = %+v, %v, %v; want %+v", k, e, ok, err, want)
		}
	}
	if _, ok, err := find(plain, "gone"); ok || err != nil {
		t.Errorf("find of a deleted key = %v, %v; want not found", ok, err)
	}
	// Sorted keys make the layout deterministic.
	if !bytes.Equal(encode(c), encode(got)) {
		t.Error("encoding is not deterministic")
	}
}

// overInt64 is the uvarint of 1<<63, one past the largest version.
var overInt64 = binary.AppendUvarint(nil, 1<<63)

func TestCodecRejectsDamage(t *testing.T) {
	good := encode(&container{Entries: map[string]*entry{"k": {Value: []byte("value"), Version: 1, Updated: time.Unix(1, 0)}}})
	tests := []struct {
		name  string
		plain []byte
		want  error
	}{
		{"empty", nil, errCorrupt},
		{"not a store", []byte(`{"json":true}`), errCorrupt},
		{"newer format", []byte(formatPrefix + "2\n\x00\x00"), errNewerFormat},
		{"trailing bytes", append(bytes.Clone(good), 0), errCorrupt},
		{"huge count", []byte(FormatV1 + "\n\xff\xff\xff\xff\x0f"), errCorrupt},
		// 1<<63 would turn into a negative version if it were accepted.
		{"entry version past MaxInt64", slices.Concat([]byte(FormatV1+"\n\x01\x01k"), overInt64, []byte{0x00, 0x00, 0x00}), errCorrupt},
		{"tombstone version past MaxInt64", slices.Concat([]byte(FormatV1+"\n\x00\x01\x01d"), overInt64), errCorrupt},
	}
	for i := len(FormatV1) + 1; i < len(good); i++ {
		tests = append(tests, struct {
			name  string
			plain []byte
			want  error
		}{"truncated", good[:i], errCorrupt})
	}
	for _, tt := range tests {
		if _, err := decode(tt.plain); !errors.Is(err, tt.want) {
			t.Errorf("%s (%d bytes): err = %v, want %v", tt.name, len(tt.plain), err, tt.want)
		}
	}
	// The read path of Get rejects the same out-of-range version.
	if _, _, err := find(slices.Concat([]byte(FormatV1+"\n\x01\x01k"), overInt64, []byte{0x00, 0x00}), "k"); !errors.Is(err, errCorrupt) {
		t.Errorf("find with a version past MaxInt64: err = %v, want %v", err, errCorrupt)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(&container{Entries: map[string]*entry{"k": {Value: []byte("v"), Version: 2}}, Deleted: map[string]int64{"d": 1}}))
	f.Add([]byte(FormatV1 + "\n"))
	f.Fuzz(func(t *testing.T, plain []byte) {
		c, err := decode(plain)
		if err != nil {
			return
		}
		for k, want := range c.Entries {
			if e, ok, err := find(plain, k); err != nil || !ok || !bytes.Equal(e.Value, want.Value) {
				t.Fatalf("find(%q) disagrees with decode: %v %v", k, ok, err)
			}
		}
		// Whatever decodes must re-encode to something that decodes the same.
		again, err := decode(encode(c))
		if err != nil || len(again.Entries) != len(c.Entries) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
