package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// The plaintext layout (all integers are unsigned varints unless noted):
//
//	"dso.dev/local-store/v" <format number> "\n"
//	<entry count> { <key len> <key> <version> <updated unix ns, signed varint> <value len> <value> }
//	<tombstone count> { <key len> <key> <last version> }
//
// It started as JSON and moved to this length-prefixed form because
// encoding/json spent ~3 ms parsing a 1,000-key store — most of a `secret
// get` — while this loop takes a small fraction of that. Values are raw
// bytes, so they are binary-safe without base64. Keys are written sorted so
// the same content always encrypts from the same plaintext layout.

const formatPrefix = "dso.dev/local-store/v"

var (
	errCorrupt     = errors.New("store content is malformed")
	errNewerFormat = errors.New("store format is newer than this dso")
)

func encode(c *container) []byte {
	size := len(FormatV1) + 1 + 20
	keys := make([]string, 0, len(c.Entries))
	for k, e := range c.Entries {
		keys = append(keys, k)
		size += len(k) + len(e.Value) + 4*binary.MaxVarintLen64
	}
	sort.Strings(keys)
	dead := make([]string, 0, len(c.Deleted))
	for k := range c.Deleted {
		dead = append(dead, k)
		size += len(k) + 2*binary.MaxVarintLen64
	}
	sort.Strings(dead)

	b := make([]byte, 0, size)
	b = append(b, FormatV1...)
	b = append(b, '\n')
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		e := c.Entries[k]
		b = appendBytes(b, []byte(k))
		b = appendVersion(b, e.Version)
		b = binary.AppendVarint(b, e.Updated.UnixNano())
		b = appendBytes(b, e.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(dead)))
	for _, k := range dead {
		b = appendBytes(b, []byte(k))
		b = appendVersion(b, c.Deleted[k])
	}
	return b
}

// appendVersion writes a version number. Versions start at 1 and only grow,
// so a negative one is a bug in this package, never input: failing loudly
// beats writing a store that decodes to a different version.
func appendVersion(b []byte, v int64) []byte {
	if v < 0 {
		panic(fmt.Sprintf("local store: negative version %d", v))
	}
	return binary.AppendUvarint(b, uint64(v))
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder walks the plaintext; any short read or bad varint sets err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

// version reads a version number. encode never writes one above
// math.MaxInt64, so a larger value means the content is malformed.
func (d *decoder) version() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.err = errCorrupt
		return 0
	}
	return int64(v)
}

// bytes returns a copy: the plaintext buffer is zeroed after decoding.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	v := bytes.Clone(d.b[:n])
	if v == nil {
		v = []byte{}
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// count reads an element count and bounds it by the bytes left (every
// element takes at least two bytes), so a corrupt count cannot make us
// allocate a huge map.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return 0
	}
	return int(n) //nolint:gosec // G115: n <= len(d.b), which is an int
}

func (d *decoder) skip() {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return
	}
	d.b = d.b[n:]
}

// header checks the format line and returns a decoder over the records.
func header(plain []byte) (*decoder, error) {
	line, rest, ok := bytes.Cut(plain, []byte{'\n'})
	if !ok || !strings.HasPrefix(string(line), formatPrefix) {
		return nil, errCorrupt
	}
	if string(line) != FormatV1 {
		return nil, errNewerFormat
	}
	return &decoder{b: rest}, nil
}

// find is the read path of Get: it walks the entries without building the
// map and copies only the value asked for, so a lookup in a 1,000-key store
// allocates a handful of objects instead of three per key. It does not
// validate the part of the plaintext after the match; age has already
// authenticated every byte, so a malformed tail can only come from a bug,
// and decode (used by every write) still checks it.
func find(plain []byte, key string) (e *entry, found bool, err error) {
	d, err := header(plain)
	if err != nil {
		return nil, false, err
	}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		kl := d.uvarint()
		if d.err != nil || kl > uint64(len(d.b)) {
			return nil, false, errCorrupt
		}
		match := string(d.b[:kl]) == key // no allocation for the comparison
		d.b = d.b[kl:]
		if !match {
			d.uvarint()
			d.varint()
			d.skip()
			continue
		}
		e := &entry{Version: d.version()}
		e.Updated = time.Unix(0, d.varint()).UTC()
		e.Value = d.bytes()
		if d.err != nil {
			return nil, false, d.err
		}
		return e, true, nil
	}
	return nil, false, d.err
}

func decode(plain []byte) (*container, error) {
	d, err := header(plain)
	if err != nil {
		return nil, err
	}
	n := d.count()
	c := &container{Entries: make(map[string]*entry, n)}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		e := &entry{Version: d.version()}
		e.Updated = time.Unix(0, d.varint()).UTC()
		e.Value = d.bytes()
		c.Entries[k] = e
	}
	if m := d.count(); m > 0 {
		c.Deleted = make(map[string]int64, m)
		for i := 0; i < m && d.err == nil; i++ {
			k := d.string()
			c.Deleted[k] = d.version()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}
