package state

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchRecord is a rotation record of realistic size (~700 bytes of JSON).
func benchRecord(b testing.TB, i int) []byte {
	b.Helper()
	r := map[string]any{
		"traceId": fmt.Sprintf("%032x", i), "target": "shop-api-1", "bindings": []string{"api-db"},
		"strategy": "rolling", "oldId": fmt.Sprintf("%064x", i), "newId": fmt.Sprintf("%064x", i+1),
		"started": t0, "finished": t0.Add(900 * time.Millisecond), "result": "succeeded",
		"steps": []map[string]any{
			{"step": "prepare", "duration": 1e6}, {"step": "create", "duration": 61e6}, {"step": "start", "duration": 375e6},
			{"step": "health", "duration": 400e6}, {"step": "swap", "duration": 20e6}, {"step": "cleanup", "duration": 156e6},
		},
		"lockWait": 0, "fromHash": fmt.Sprintf("%064x", i), "toHash": fmt.Sprintf("%064x", i+7),
	}
	out, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// fill appends n rotations spread over 10 bindings (so each binding's index
// holds a tenth of the history).
func fill(b *testing.B, s *Store, n int) {
	b.Helper()
	// One transaction per append is what the agent does, but filling 10k
	// that way costs 10k fsyncs; NoSync only for the fill.
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	for i := range n {
		id := fmt.Sprintf("%032x", i)
		if err := s.AppendRotation(t0.Add(time.Duration(i)*time.Second), id, []string{fmt.Sprintf("binding-%d", i%10)}, benchRecord(b, i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRotation(b *testing.B) {
	s := openT(b, Options{})
	fill(b, s, 10000)
	rec := benchRecord(b, 0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(10000+i) * time.Second)
		if err := s.AppendRotation(at, fmt.Sprintf("bench-%d", i), []string{"binding-3"}, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRotations(b *testing.B) {
	s := openT(b, Options{})
	fill(b, s, 10000)
	for _, bc := range []struct{ name, binding string }{{"binding-20", "binding-3"}, {"all-20", ""}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				got, err := s.Rotations(bc.binding, 20)
				if err != nil || len(got) != 20 {
					b.Fatalf("Rotations = %d records, %v", len(got), err)
				}
			}
		})
	}
}

func BenchmarkPrune10k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := openT(b, Options{HistoryMaxEntries: 5000, Clock: func() time.Time { return t0.Add(10000 * time.Second) }})
		fill(b, s, 10000)
		b.StartTimer()
		if n, err := s.Prune(); err != nil || n != 5000 {
			b.Fatalf("Prune = %d, %v", n, err)
		}
	}
}
