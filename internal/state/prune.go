package state

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Prune drops history (rotations, recovery records, events) older than
// HistoryMaxAge, then the oldest entries beyond HistoryMaxEntries in each of
// those buckets. Objects and statuses are never pruned. It returns how many
// records it removed. The agent calls it at start and hourly; one
// transaction per bucket keeps a reader from seeing a half-pruned index.
func (s *Store) Prune() (int, error) {
	cutoff := timeKey(s.opts.Clock().Add(-s.opts.HistoryMaxAge))
	removed := 0
	for _, p := range []struct {
		main, idx, refs []byte
	}{
		{bucketRotations, bucketRotationIdx, bucketRotationRefs},
		{bucketRecovery, nil, nil},
		{bucketEvents, bucketEventIdx, bucketEventRefs},
	} {
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			main := tx.Bucket(p.main)
			var idx, refs *bolt.Bucket
			if p.idx != nil {
				idx, refs = tx.Bucket(p.idx), tx.Bucket(p.refs)
			}
			// Collect first, delete after: deleting under a moving bbolt
			// cursor can skip entries.
			var old [][]byte
			c := main.Cursor()
			k, _ := c.First()
			for ; k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.Next() {
				old = append(old, bytes.Clone(k))
			}
			// k is now the oldest young entry: count on from there.
			for over := main.Stats().KeyN - len(old) - s.opts.HistoryMaxEntries; k != nil && over > 0; k, _ = c.Next() {
				old = append(old, bytes.Clone(k))
				over--
			}
			for _, k := range old {
				if idx != nil {
					if err := unindex(idx, refs, k); err != nil {
						return err
					}
				}
				if err := main.Delete(k); err != nil {
					return err
				}
			}
			n = len(old)
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("prune %s history in %s: %w", p.main, s.path, err)
		}
		removed += n
	}
	return removed, nil
}
