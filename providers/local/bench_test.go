package local

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dso-dev/dso/providers"
)

// benchStore is a 1,000-key store with 64-byte values, the size the issue's
// target (< 5 ms per get/set) is stated for.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s := newTestStore(b)
	err := s.update(func(c *container) error {
		for i := range 1000 {
			c.Entries[fmt.Sprintf("app%02d/secret-%04d", i%50, i)] = &entry{Value: []byte(fmt.Sprintf("%064d", i)), Version: 1, Updated: s.now()}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkGet1000 is `secret get` minus process start: decrypt + parse.
func BenchmarkGet1000(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get("app07/secret-0507"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenGet1000 includes loading the key file, as one CLI call does.
func BenchmarkOpenGet1000(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		o, err := Open(s.Path(), "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewClientFor(o).Get(context.Background(), providers.Ref{Key: "app07/secret-0507"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSet1000 is `secret set`: lock, decrypt, parse, encode, encrypt,
// write, fsync file, rename, fsync directory.
func BenchmarkSet1000(b *testing.B) {
	s := benchStore(b)
	v := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Set("app07/secret-0507", v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAtomicWriteFloor is the durability floor under BenchmarkSet1000:
// writing a file the size of the 1,000-key store with the same temp file,
// fsync, rename and directory fsync, and nothing else. Set minus this is
// dso's own CPU work.
func BenchmarkAtomicWriteFloor(b *testing.B) {
	s := benchStore(b)
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if err := writeAtomic(s.Path()+".floor", data); err != nil {
			b.Fatal(err)
		}
	}
}
