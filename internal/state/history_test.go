package state

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type rot struct {
	at       time.Duration // after t0
	trace    string
	bindings []string
}

// rec is the record stored for a rotation: its trace id, so tests can read
// the order back.
func rec(trace string) []byte { return []byte(fmt.Sprintf(`{"traceId":%q}`, trace)) }

func traces(t *testing.T, recs [][]byte) []string {
	t.Helper()
	out := []string{}
	for _, r := range recs {
		var v struct {
			TraceID string `json:"traceId"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		out = append(out, v.TraceID)
	}
	return out
}

func TestRotations(t *testing.T) {
	// Appended out of order: the store orders by start time, not by arrival.
	history := []rot{
		{2 * time.Second, "t2", []string{"api-db"}},
		{0, "t0", []string{"api-db", "web"}},
		{1 * time.Second, "t1", []string{"web"}},
		{3 * time.Second, "t3", []string{"api-db", "api-db"}}, // duplicate binding indexed once
		{-time.Hour, "told", []string{"worker"}},
		{3 * time.Second, "t3b", nil}, // same start, other trace: both kept
	}
	s := openT(t, Options{})
	for _, r := range history {
		mustNil(t, s.AppendRotation(t0.Add(r.at), r.trace, r.bindings, rec(r.trace)))
	}
	tests := []struct {
		binding string
		limit   int
		want    []string
	}{
		{"", 0, []string{"t3b", "t3", "t2", "t1", "t0", "told"}},
		{"", 2, []string{"t3b", "t3"}},
		{"", 100, []string{"t3b", "t3", "t2", "t1", "t0", "told"}},
		{"api-db", 0, []string{"t3", "t2", "t0"}},
		{"api-db", 20, []string{"t3", "t2", "t0"}},
		{"api-db", 1, []string{"t3"}},
		{"web", -1, []string{"t1", "t0"}},
		{"worker", 5, []string{"told"}},
		{"nope", 5, []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.binding, tt.limit), func(t *testing.T) {
			got, err := s.Rotations(tt.binding, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if g := traces(t, got); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("Rotations(%q, %d) = %v, want %v", tt.binding, tt.limit, g, tt.want)
			}
		})
	}
}

func TestAppendRotationReplaces(t *testing.T) {
	s := openT(t, Options{})
	// Written when it starts (bindings known so far) and when it finishes.
	mustNil(t, s.AppendRotation(t0, "tr", []string{"api-db"}, []byte(`{"traceId":"tr","result":""}`)))
	mustNil(t, s.AppendRotation(t0, "tr", []string{"web"}, []byte(`{"traceId":"tr","result":"succeeded"}`)))

	all, err := s.Rotations("", 0)
	mustNil(t, err)
	if len(all) != 1 || !strings.Contains(string(all[0]), "succeeded") {
		t.Fatalf("Rotations after replace = %q, want the finished record once", all)
	}
	if got, _ := s.Rotations("api-db", 0); len(got) != 0 {
		t.Errorf("old binding still indexes the replaced rotation: %q", got)
	}
	if got, _ := s.Rotations("web", 0); len(got) != 1 {
		t.Errorf("new binding does not index the rotation: %q", got)
	}
	// The emptied index bucket is gone, not left behind.
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRotationIdx).Bucket([]byte("api-db")) != nil {
			t.Error("empty index bucket for api-db left behind")
		}
		return nil
	})
}

func TestAppendRotationRefuses(t *testing.T) {
	tests := []struct {
		name     string
		started  time.Time
		trace    string
		bindings []string
		rec      string
		want     string
	}{
		{"zero start", time.Time{}, "t", nil, `{}`, "start time is zero"},
		{"no trace", t0, "", nil, `{}`, "trace id is empty"},
		{"empty binding", t0, "t", []string{"a", ""}, `{}`, "empty binding name"},
		{"not json", t0, "t", nil, `{`, "not valid JSON"},
	}
	s := openT(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.AppendRotation(tt.started, tt.trace, tt.bindings, []byte(tt.rec))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AppendRotation error = %v, want %q", err, tt.want)
			}
		})
	}
	if got, _ := s.Rotations("", 0); len(got) != 0 {
		t.Errorf("refused rotations were stored: %q", got)
	}
}

func TestRecovery(t *testing.T) {
	s := openT(t, Options{})
	// Two actions in the same nanosecond keep their append order.
	mustNil(t, s.AppendRecovery(t0, rec("a")))
	mustNil(t, s.AppendRecovery(t0, rec("b")))
	mustNil(t, s.AppendRecovery(t0.Add(-time.Minute), rec("older")))
	mustNil(t, s.AppendRecovery(t0.Add(time.Minute), rec("newer")))
	tests := []struct {
		limit int
		want  []string
	}{
		{0, []string{"newer", "b", "a", "older"}},
		{3, []string{"newer", "b", "a"}},
		{1, []string{"newer"}},
	}
	for _, tt := range tests {
		got, err := s.Recovery(tt.limit)
		mustNil(t, err)
		if g := traces(t, got); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("Recovery(%d) = %v, want %v", tt.limit, g, tt.want)
		}
	}
	if err := s.AppendRecovery(time.Time{}, rec("x")); err == nil {
		t.Error("AppendRecovery with a zero time succeeded")
	}
	if err := s.AppendRecovery(t0, []byte("x")); err == nil {
		t.Error("AppendRecovery with invalid JSON succeeded")
	}
}

func TestEvents(t *testing.T) {
	s := openT(t, Options{})
	for i, e := range []struct {
		binding, id string
	}{{"api-db", "e0"}, {"web", "e1"}, {"", "agent"}, {"api-db", "e3"}, {"api-db", "e4"}} {
		mustNil(t, s.AppendEvent(t0.Add(time.Duration(i)*time.Second), e.binding, rec(e.id)))
	}
	tests := []struct {
		binding string
		limit   int
		want    []string
	}{
		{"", 0, []string{"e4", "e3", "agent", "e1", "e0"}},
		{"api-db", 0, []string{"e4", "e3", "e0"}},
		{"api-db", 2, []string{"e4", "e3"}},
		{"web", 10, []string{"e1"}},
		{"nope", 10, []string{}},
	}
	for _, tt := range tests {
		got, err := s.Events(tt.binding, tt.limit)
		mustNil(t, err)
		if g := traces(t, got); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("Events(%q, %d) = %v, want %v", tt.binding, tt.limit, g, tt.want)
		}
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		time.Unix(-100, 0), time.Unix(0, 0), time.Unix(0, 1), t0, t0.Add(time.Nanosecond), t0.Add(24 * time.Hour),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeKey(times[i-1]), timeKey(times[i])
		if string(a) >= string(b) {
			t.Errorf("timeKey(%v) >= timeKey(%v)", times[i-1], times[i])
		}
		if !keyTime(b).Equal(times[i]) {
			t.Errorf("keyTime(timeKey(%v)) = %v", times[i], keyTime(b))
		}
	}
}
