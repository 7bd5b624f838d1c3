package state

import (
	"strings"
	"testing"
)

func TestPutObject(t *testing.T) {
	type step struct {
		kind, name, obj string
		want            string // result, or "" when wantErr
		wantErr         string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "create, re-apply, change", steps: []step{
			{kind: KindSecretBinding, name: "api-db", obj: `{"spec":1}`, want: Created},
			{kind: KindSecretBinding, name: "api-db", obj: `{"spec":1}`, want: Unchanged},
			{kind: KindSecretBinding, name: "api-db", obj: `{"spec":2}`, want: Configured},
			{kind: KindSecretBinding, name: "api-db", obj: `{"spec":2}`, want: Unchanged},
			{kind: KindSecretBinding, name: "api-db", obj: `{"spec":1}`, want: Configured},
		}},
		{name: "kinds are separate namespaces", steps: []step{
			{kind: KindSecretBinding, name: "x", obj: `{}`, want: Created},
			{kind: KindSecretStore, name: "x", obj: `{}`, want: Created},
			{kind: KindSecretStore, name: "x", obj: `{}`, want: Unchanged},
		}},
		{name: "bad input", steps: []step{
			{kind: "ConfigMap", name: "x", obj: `{}`, wantErr: `kind "ConfigMap" is not stored`},
			{kind: "", name: "x", obj: `{}`, wantErr: "is not stored"},
			{kind: KindSecretStore, name: "", obj: `{}`, wantErr: "metadata.name"},
			{kind: KindSecretStore, name: "x", obj: `{"a":`, wantErr: "not valid JSON"},
			{kind: KindSecretStore, name: "x", obj: ``, wantErr: "not valid JSON"},
			// Nothing of the bad ones was stored.
			{kind: KindSecretStore, name: "x", obj: `{}`, want: Created},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, Options{})
			for i, st := range tt.steps {
				got, err := s.PutObject(st.kind, st.name, []byte(st.obj))
				if st.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), st.wantErr) {
						t.Fatalf("step %d: PutObject error = %v, want one containing %q", i, err, st.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: PutObject: %v", i, err)
				}
				if got != st.want {
					t.Fatalf("step %d: PutObject(%s, %s, %s) = %s, want %s", i, st.kind, st.name, st.obj, got, st.want)
				}
				back, ok, err := s.GetObject(st.kind, st.name)
				if err != nil || !ok || string(back) != st.obj {
					t.Fatalf("step %d: GetObject = %q, %v, %v; want %q", i, back, ok, err, st.obj)
				}
			}
		})
	}
}

func TestGetListDeleteObjects(t *testing.T) {
	s := openT(t, Options{})
	objs := map[string]string{"api-db": `{"n":"api-db"}`, "web": `{"n":"web"}`, "worker": `{"n":"worker"}`}
	for n, o := range objs {
		if _, err := s.PutObject(KindSecretBinding, n, []byte(o)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutObject(KindSecretStore, "vault", []byte(`{"n":"vault"}`)); err != nil {
		t.Fatal(err)
	}
	mustNil(t, s.PutStatus(KindSecretBinding, "web", []byte(`{"phase":"Ready"}`)))

	tests := []struct {
		name  string
		run   func() (any, error)
		want  any
		check func(t *testing.T)
	}{
		{name: "get missing", run: func() (any, error) { _, ok, err := s.GetObject(KindSecretBinding, "nope"); return ok, err }, want: false},
		{name: "get other kind", run: func() (any, error) { _, ok, err := s.GetObject(KindSecretStore, "web"); return ok, err }, want: false},
		{name: "list bindings", run: func() (any, error) { m, err := s.ListObjects(KindSecretBinding); return len(m), err }, want: 3},
		{name: "list stores", run: func() (any, error) { m, err := s.ListObjects(KindSecretStore); return string(m["vault"]), err }, want: `{"n":"vault"}`},
		{name: "delete existing", run: func() (any, error) { return s.DeleteObject(KindSecretBinding, "web") }, want: true,
			check: func(t *testing.T) {
				if _, ok, _ := s.GetObject(KindSecretBinding, "web"); ok {
					t.Error("object still there after delete")
				}
				if _, ok, _ := s.GetStatus(KindSecretBinding, "web"); ok {
					t.Error("status of a deleted object is still there")
				}
				m, _ := s.ListObjects(KindSecretBinding)
				if _, ok := m["web"]; ok || len(m) != 2 {
					t.Errorf("list after delete = %v", m)
				}
			}},
		{name: "delete again", run: func() (any, error) { return s.DeleteObject(KindSecretBinding, "web") }, want: false},
		{name: "delete missing", run: func() (any, error) { return s.DeleteObject(KindSecretStore, "nope") }, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	if _, err := s.ListObjects("Pod"); err == nil {
		t.Error("ListObjects of an unknown kind succeeded")
	}
	// Returned bytes are copies: changing them does not change the store.
	b, _, _ := s.GetObject(KindSecretBinding, "api-db")
	b[0] = 'X'
	if again, _, _ := s.GetObject(KindSecretBinding, "api-db"); string(again) != objs["api-db"] {
		t.Errorf("store changed through a returned slice: %q", again)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name    string
		puts    []string
		want    string
		wantOK  bool
		wantErr string
	}{
		{name: "none", wantOK: false},
		{name: "one", puts: []string{`{"observedGeneration":1}`}, want: `{"observedGeneration":1}`, wantOK: true},
		{name: "last wins", puts: []string{`{"observedGeneration":1}`, `{"observedGeneration":2}`, `{"observedGeneration":2}`}, want: `{"observedGeneration":2}`, wantOK: true},
		{name: "invalid", puts: []string{`nope`}, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, Options{})
			for _, p := range tt.puts {
				err := s.PutStatus(KindSecretBinding, "api-db", []byte(p))
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("PutStatus error = %v, want %q", err, tt.wantErr)
					}
					return
				}
				mustNil(t, err)
			}
			got, ok, err := s.GetStatus(KindSecretBinding, "api-db")
			if err != nil || ok != tt.wantOK || string(got) != tt.want {
				t.Errorf("GetStatus = %q, %v, %v; want %q, %v", got, ok, err, tt.want, tt.wantOK)
			}
		})
	}
}
