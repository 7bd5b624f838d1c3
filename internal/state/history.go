package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// timeKey encodes t as 8 big-endian bytes that sort like the times do
// (flipping the sign bit keeps pre-1970 times, should a clock be that wrong,
// before later ones).
func timeKey(t time.Time) []byte {
	k := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano())^(1<<63))
	return k
}

// keyTime decodes the time prefix of a history key.
func keyTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	//nolint:gosec // G115: the reverse of timeKey's sign flip; the bit pattern is the point
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63)))
}

// seqKey is a time key plus the bucket's next sequence, so two records in the
// same nanosecond both survive, in the order they were appended.
func seqKey(b *bolt.Bucket, t time.Time) ([]byte, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(timeKey(t), seq), nil
}

// Main history buckets hold the caller's record JSON untouched, so reading
// the history is a copy, not a decode. The bindings an entry is indexed under
// live beside it in a refs bucket (same key, JSON list of binding names);
// only pruning and replacing read them, to remove the index entries.

// index adds key to the index of every binding and records the back
// references.
func index(idx, refs *bolt.Bucket, key []byte, bindings []string) error {
	if len(bindings) == 0 {
		return nil
	}
	for _, b := range bindings {
		bb, err := idx.CreateBucketIfNotExists([]byte(b))
		if err != nil {
			return err
		}
		if err := bb.Put(key, []byte{}); err != nil {
			return err
		}
	}
	ref, err := json.Marshal(bindings)
	if err != nil {
		return err
	}
	return refs.Put(key, ref)
}

// unindex removes key from the indexes it was added to.
func unindex(idx, refs *bolt.Bucket, key []byte) error {
	ref := refs.Get(key)
	if ref == nil {
		return nil
	}
	var bindings []string
	if err := json.Unmarshal(ref, &bindings); err != nil {
		return fmt.Errorf("index references at %x are damaged: %w", key, err)
	}
	for _, b := range bindings {
		if err := deleteIndexed(idx, b, key); err != nil {
			return err
		}
	}
	return refs.Delete(key)
}

// AppendRotation records a rotation under its start time and trace id. The
// record is the JSON of containerswap.Rotation (opaque here). Appending again
// with the same start and trace id replaces the record, so a rotation can be
// written when it starts and again when it finishes without a duplicate.
func (s *Store) AppendRotation(started time.Time, traceID string, bindings []string, rec []byte) error {
	if started.IsZero() {
		return errors.New("rotation start time is zero: set the rotation's start before recording it")
	}
	if traceID == "" {
		return errors.New("rotation trace id is empty: every rotation needs its trace id")
	}
	for _, b := range bindings {
		if b == "" {
			return fmt.Errorf("rotation %s lists an empty binding name", traceID)
		}
	}
	if err := checkJSON("rotation "+traceID, rec); err != nil {
		return err
	}
	key := append(timeKey(started), traceID...)
	err := s.db.Update(func(tx *bolt.Tx) error {
		idx, refs := tx.Bucket(bucketRotationIdx), tx.Bucket(bucketRotationRefs)
		if err := unindex(idx, refs, key); err != nil { // a replaced record
			return err
		}
		if err := tx.Bucket(bucketRotations).Put(key, rec); err != nil {
			return err
		}
		return index(idx, refs, key, dedup(bindings))
	})
	if err != nil {
		return fmt.Errorf("record rotation %s in %s: %w", traceID, s.path, err)
	}
	return nil
}

func dedup(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// deleteIndexed removes one index entry and the binding's bucket when it
// becomes empty, so deleted bindings do not leave buckets behind forever.
func deleteIndexed(idx *bolt.Bucket, binding string, key []byte) error {
	bb := idx.Bucket([]byte(binding))
	if bb == nil {
		return nil
	}
	if err := bb.Delete(key); err != nil {
		return err
	}
	if k, _ := bb.Cursor().First(); k == nil {
		return idx.DeleteBucket([]byte(binding))
	}
	return nil
}

// Rotations returns up to limit rotation records (limit <= 0: all), newest
// first; binding "" means every binding.
func (s *Store) Rotations(binding string, limit int) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return newestFirst(tx.Bucket(bucketRotations), tx.Bucket(bucketRotationIdx), binding, limit, func(v []byte) error {
			out = append(out, bytes.Clone(v)) // bbolt's slice dies with the tx
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read rotation history from %s: %w", s.path, err)
	}
	return out, nil
}

// newestFirst walks main from the newest entry, or, for a binding, its index
// bucket and looks each key up in main.
func newestFirst(main, idx *bolt.Bucket, binding string, limit int, fn func(v []byte) error) error {
	n := 0
	more := func() bool { return limit <= 0 || n < limit }
	if binding == "" {
		c := main.Cursor()
		for k, v := c.Last(); k != nil && more(); k, v = c.Prev() {
			if err := fn(v); err != nil {
				return err
			}
			n++
		}
		return nil
	}
	bb := idx.Bucket([]byte(binding))
	if bb == nil {
		return nil
	}
	c := bb.Cursor()
	for k, _ := c.Last(); k != nil && more(); k, _ = c.Prev() {
		v := main.Get(k)
		if v == nil {
			continue // cannot happen while index and main change in one tx
		}
		if err := fn(v); err != nil {
			return err
		}
		n++
	}
	return nil
}

// AppendRecovery records one recovery action or pass (opaque JSON).
func (s *Store) AppendRecovery(t time.Time, rec []byte) error {
	if t.IsZero() {
		return errors.New("recovery record time is zero: set its time before recording it")
	}
	if err := checkJSON("recovery record", rec); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecovery)
		k, err := seqKey(b, t)
		if err != nil {
			return err
		}
		return b.Put(k, rec)
	})
	if err != nil {
		return fmt.Errorf("record recovery action in %s: %w", s.path, err)
	}
	return nil
}

// Recovery returns up to limit recovery records (limit <= 0: all), newest first.
func (s *Store) Recovery(limit int) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return newestFirst(tx.Bucket(bucketRecovery), nil, "", limit, func(v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read recovery records from %s: %w", s.path, err)
	}
	return out, nil
}

// AppendEvent records an event of a binding (binding "" for agent-wide
// events, which only Events("") returns).
func (s *Store) AppendEvent(t time.Time, binding string, ev []byte) error {
	if t.IsZero() {
		return errors.New("event time is zero: set the event's time before recording it")
	}
	if err := checkJSON("event", ev); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		k, err := seqKey(b, t)
		if err != nil {
			return err
		}
		if err := b.Put(k, ev); err != nil {
			return err
		}
		if binding == "" {
			return nil
		}
		return index(tx.Bucket(bucketEventIdx), tx.Bucket(bucketEventRefs), k, []string{binding})
	})
	if err != nil {
		return fmt.Errorf("record event in %s: %w", s.path, err)
	}
	return nil
}

// Events returns up to limit events (limit <= 0: all), newest first; binding
// "" means every event.
func (s *Store) Events(binding string, limit int) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return newestFirst(tx.Bucket(bucketEvents), tx.Bucket(bucketEventIdx), binding, limit, func(v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read events from %s: %w", s.path, err)
	}
	return out, nil
}
