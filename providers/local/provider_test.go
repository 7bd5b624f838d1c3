package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

func storeObject(name, path, keyFile string) *v1alpha1.SecretStore {
	return &v1alpha1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.SecretStoreSpec{Local: &v1alpha1.LocalProvider{Path: path, KeyFile: keyFile}},
	}
}

func TestProviderRegistersAndBuildsClient(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Set("shop/db", []byte(`{"user":"app","password":"pw-123"}`)); err != nil {
		t.Fatal(err)
	}
	reg := providers.NewRegistry()
	reg.MustRegister(New())
	if err := reg.Register(New()); err == nil {
		t.Fatal("registering local twice must fail")
	}
	ctx := context.Background()
	// Only path is named: keyFile defaults to <path>.key, as after `dso init`.
	c, err := reg.NewClient(ctx, storeObject("main", s.Path(), ""))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	if err := c.Validate(ctx); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	tests := []struct {
		name    string
		ref     providers.Ref
		want    string
		wantVer string
		kind    providers.Kind
		errHas  string
	}{
		{"whole value", providers.Ref{Key: "shop/db"}, `{"user":"app","password":"pw-123"}`, "1", 0, ""},
		{"property", providers.Ref{Key: "shop/db", Property: "password"}, "pw-123", "1", 0, ""},
		{"current version pinned", providers.Ref{Key: "shop/db", Version: "1"}, `{"user":"app","password":"pw-123"}`, "1", 0, ""},
		{"old version pinned", providers.Ref{Key: "shop/db", Version: "7"}, "", "", providers.KindNotFound, "only the current version"},
		{"missing property", providers.Ref{Key: "shop/db", Property: "nope"}, "", "", providers.KindNotFound, `field "nope"`},
		{"missing key", providers.Ref{Key: "shop/none"}, "", "", providers.KindNotFound, `store "main" key "shop/none"`},
		{"traversal", providers.Ref{Key: "shop/../x"}, "", "", providers.KindInvalidRef, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, err := c.Get(ctx, tt.ref)
			if tt.kind != 0 {
				if providers.KindOf(err) != tt.kind || !strings.Contains(fmt.Sprint(err), tt.errHas) {
					t.Fatalf("Get: err = %v, want kind %v containing %q", err, tt.kind, tt.errHas)
				}
				if strings.Contains(err.Error(), "pw-123") {
					t.Fatalf("error leaks the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(sec.Value) != tt.want || sec.Version != tt.wantVer {
				t.Fatalf("Get = %q version %q, want %q version %q", sec.Value, sec.Version, tt.want, tt.wantVer)
			}
		})
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(cancelled, providers.Ref{Key: "shop/db"}); err == nil {
		t.Fatal("Get with a cancelled context must fail")
	}
}

func TestProviderConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		store  *v1alpha1.SecretStore
		kind   providers.Kind
		errHas string
	}{
		{"no local spec", &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, providers.KindInvalidConfig, "spec.local is not set"},
		{"empty path", storeObject("x", "", ""), providers.KindInvalidConfig, "spec.local.path is empty"},
		{"not initialised", storeObject("x", filepath.Join(dir, "vault.enc"), ""), providers.KindInvalidConfig, "docker dso init"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New().NewClient(context.Background(), tt.store)
			if providers.KindOf(err) != tt.kind || !strings.Contains(fmt.Sprint(err), tt.errHas) || !strings.Contains(fmt.Sprint(err), `store "x"`) {
				t.Fatalf("NewClient: err = %v, want kind %v naming store \"x\" and containing %q", err, tt.kind, tt.errHas)
			}
		})
	}
}

func TestValidateDetectsWrongKey(t *testing.T) {
	a, b := newTestStore(t), newTestStore(t)
	c, err := New().NewClient(context.Background(), storeObject("a", a.Path(), b.KeyFile()))
	if err != nil {
		t.Fatalf("NewClient loads the key only: %v", err)
	}
	err = c.Validate(context.Background())
	if providers.KindOf(err) != providers.KindPermissionDenied || !strings.Contains(err.Error(), b.KeyFile()) {
		t.Fatalf("Validate = %v, want permission denied naming %s", err, b.KeyFile())
	}
}

func TestWatchSignalsStoreChangesOnly(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := NewClientFor(s).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(want bool, what string) {
		t.Helper()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed early", what)
			}
			if !want {
				t.Fatalf("%s: unexpected notification", what)
			}
		case <-time.After(300 * time.Millisecond):
			if want {
				t.Fatalf("%s: no notification within 300ms", what)
			}
		}
	}
	drain := func() {
		for {
			select {
			case <-ch:
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}

	// Other files of the directory do not count.
	writeFile(t, filepath.Join(filepath.Dir(s.Path()), "unrelated.txt"), "x")
	expect(false, "unrelated file")

	if _, err := s.Set("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	expect(true, "set")
	drain()

	// A burst of writes is coalesced: the reader is told, not flooded.
	for i := 0; i < 10; i++ {
		if _, err := s.Set("a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(ch); n > 1 {
		t.Fatalf("%d notifications buffered after a burst, want at most 1", n)
	}
	drain()

	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	expect(true, "store removed")

	cancel()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after ctx end")
		}
	}
}
