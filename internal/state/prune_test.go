package state

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestPrune(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name        string
		maxAge      time.Duration
		maxEntries  int
		ages        []time.Duration // age of each entry at prune time, appended in order
		wantRemoved int             // per bucket
		wantKept    []string        // newest first, by index into ages ("e<i>")
	}{
		{name: "nothing old", maxAge: 30 * day, maxEntries: 100, ages: []time.Duration{3 * day, 2 * day, time.Hour},
			wantRemoved: 0, wantKept: []string{"e2", "e1", "e0"}},
		{name: "by age", maxAge: 30 * day, maxEntries: 100, ages: []time.Duration{40 * day, 31 * day, 29 * day, time.Hour},
			wantRemoved: 2, wantKept: []string{"e3", "e2"}},
		{name: "by count", maxAge: 30 * day, maxEntries: 2, ages: []time.Duration{5 * day, 4 * day, 3 * day, 2 * day},
			wantRemoved: 2, wantKept: []string{"e3", "e2"}},
		{name: "age then count", maxAge: 30 * day, maxEntries: 2, ages: []time.Duration{60 * day, 40 * day, 3 * day, 2 * day, day},
			wantRemoved: 3, wantKept: []string{"e4", "e3"}},
		{name: "count exactly at bound", maxAge: 30 * day, maxEntries: 3, ages: []time.Duration{3 * day, 2 * day, day},
			wantRemoved: 0, wantKept: []string{"e2", "e1", "e0"}},
		{name: "all old", maxAge: day, maxEntries: 100, ages: []time.Duration{3 * day, 2 * day},
			wantRemoved: 2, wantKept: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			s := openT(t, Options{HistoryMaxAge: tt.maxAge, HistoryMaxEntries: tt.maxEntries, Clock: func() time.Time { return now }})
			mustNil(t, func() error { _, err := s.PutObject(KindSecretBinding, "api-db", []byte(`{}`)); return err }())
			for i, age := range tt.ages {
				id := fmt.Sprintf("e%d", i)
				at := now.Add(-age)
				// Half the entries in "api-db", half in "web", so index cleanup
				// is exercised for more than one binding.
				b := []string{"api-db", "web"}[i%2]
				mustNil(t, s.AppendRotation(at, id, []string{b}, rec(id)))
				mustNil(t, s.AppendRecovery(at, rec(id)))
				mustNil(t, s.AppendEvent(at, b, rec(id)))
			}
			removed, err := s.Prune()
			mustNil(t, err)
			if want := 3 * tt.wantRemoved; removed != want {
				t.Errorf("Prune removed %d, want %d (%d per bucket)", removed, want, tt.wantRemoved)
			}
			rots, _ := s.Rotations("", 0)
			recs, _ := s.Recovery(0)
			evs, _ := s.Events("", 0)
			for name, got := range map[string][][]byte{"rotations": rots, "recovery": recs, "events": evs} {
				if g := traces(t, got); !reflect.DeepEqual(g, tt.wantKept) {
					t.Errorf("%s after prune = %v, want %v", name, g, tt.wantKept)
				}
			}
			// The indexes hold exactly the kept entries.
			idxKept := 0
			for _, b := range []string{"api-db", "web"} {
				r, _ := s.Rotations(b, 0)
				e, _ := s.Events(b, 0)
				if len(r) != len(e) {
					t.Errorf("binding %s: %d rotations but %d events indexed", b, len(r), len(e))
				}
				idxKept += len(r)
			}
			if idxKept != len(tt.wantKept) {
				t.Errorf("indexes hold %d rotations, want %d", idxKept, len(tt.wantKept))
			}
			if len(tt.wantKept) == 0 {
				_ = s.db.View(func(tx *bolt.Tx) error {
					for _, idx := range [][]byte{bucketRotationIdx, bucketEventIdx, bucketRotationRefs, bucketEventRefs} {
						if k, _ := tx.Bucket(idx).Cursor().First(); k != nil {
							t.Errorf("%s keeps %q after everything was pruned", idx, k)
						}
					}
					return nil
				})
			}
			// Objects are never pruned.
			if _, ok, _ := s.GetObject(KindSecretBinding, "api-db"); !ok {
				t.Error("Prune removed an applied object")
			}
			// A second prune finds nothing more.
			if again, err := s.Prune(); err != nil || again != 0 {
				t.Errorf("second Prune = %d, %v; want 0", again, err)
			}
		})
	}
}

func TestPruneFollowsClock(t *testing.T) {
	now := t0
	s := openT(t, Options{HistoryMaxAge: time.Hour, Clock: func() time.Time { return now }})
	mustNil(t, s.AppendRotation(t0, "tr", []string{"api-db"}, rec("tr")))
	if n, _ := s.Prune(); n != 0 {
		t.Fatalf("fresh rotation pruned (%d)", n)
	}
	now = t0.Add(time.Hour + time.Second)
	if n, _ := s.Prune(); n != 1 {
		t.Fatalf("Prune an hour later removed %d, want 1", n)
	}
}
