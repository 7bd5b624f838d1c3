package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

const secretValue = "s3cr3t-file-value-do-not-leak"

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// setup builds:
//
//	base/outside            a file outside the store dir
//	base/store/db           plain value
//	base/store/app/json     JSON object
//	base/store/big          over 1 MiB
//	base/store/sub/         a directory
//	base/store/inlink ->    db (symlink staying inside)
//	base/store/outlink ->   ../outside (symlink escaping)
//	base/store/abslink ->   /etc/hostname-like absolute target outside
//	base/store/noperm       mode 0000
func setup(t *testing.T) (string, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "app"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(base, "outside"), []byte(secretValue), 0o600))
	must(os.WriteFile(filepath.Join(dir, "db"), []byte(secretValue), 0o600))
	must(os.WriteFile(filepath.Join(dir, "app", "json"), []byte(`{"user":"admin","password":"`+secretValue+`"}`), 0o600))
	must(os.WriteFile(filepath.Join(dir, "big"), make([]byte, providers.MaxValueSize+1), 0o600))
	must(os.Symlink("db", filepath.Join(dir, "inlink")))
	must(os.Symlink("../outside", filepath.Join(dir, "outlink")))
	must(os.Symlink(filepath.Join(base, "outside"), filepath.Join(dir, "abslink")))
	must(os.WriteFile(filepath.Join(dir, "noperm"), []byte(secretValue), 0o000))
	return base, dir
}

func TestGet(t *testing.T) {
	_, dir := setup(t)
	c, err := Open("dev", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	root := os.Geteuid() == 0

	tests := []struct {
		name      string
		ref       providers.Ref
		want      string
		wantKind  providers.Kind
		wantErr   bool
		errSubstr string
		skip      bool
	}{
		{name: "plain file", ref: providers.Ref{Key: "db"}, want: secretValue},
		{name: "nested key", ref: providers.Ref{Key: "app/json", Property: "user"}, want: "admin"},
		{name: "property of json", ref: providers.Ref{Key: "app/json", Property: "password"}, want: secretValue},
		{name: "missing property", ref: providers.Ref{Key: "app/json", Property: "nope"}, wantErr: true, wantKind: providers.KindNotFound, errSubstr: `field "nope"`},
		{name: "property of non-json", ref: providers.Ref{Key: "db", Property: "x"}, wantErr: true, wantKind: providers.KindNotFound},
		{name: "pinned current version", ref: providers.Ref{Key: "db", Version: hash(secretValue)}, want: secretValue},
		{name: "pinned old version", ref: providers.Ref{Key: "db", Version: "0000000000000000"}, wantErr: true, wantKind: providers.KindNotFound, errSubstr: "current version"},
		{name: "missing file", ref: providers.Ref{Key: "nope"}, wantErr: true, wantKind: providers.KindNotFound, errSubstr: "no file"},
		{name: "directory", ref: providers.Ref{Key: "sub"}, wantErr: true, wantKind: providers.KindNotFound, errSubstr: "not a regular file"},
		{name: "symlink inside dir", ref: providers.Ref{Key: "inlink"}, want: secretValue},
		{name: "relative symlink escaping", ref: providers.Ref{Key: "outlink"}, wantErr: true, wantKind: providers.KindInvalidRef, errSubstr: "outside"},
		{name: "absolute symlink escaping", ref: providers.Ref{Key: "abslink"}, wantErr: true, wantKind: providers.KindInvalidRef, errSubstr: "outside"},
		{name: "dotdot key", ref: providers.Ref{Key: "../outside"}, wantErr: true, wantKind: providers.KindInvalidRef},
		{name: "absolute key", ref: providers.Ref{Key: "/etc/passwd"}, wantErr: true, wantKind: providers.KindInvalidRef},
		{name: "NUL key", ref: providers.Ref{Key: "db\x00"}, wantErr: true, wantKind: providers.KindInvalidRef},
		{name: "empty key", ref: providers.Ref{Key: ""}, wantErr: true, wantKind: providers.KindInvalidRef},
		{name: "oversized", ref: providers.Ref{Key: "big"}, wantErr: true, wantKind: providers.KindInvalidRef, errSubstr: "1 MiB"},
		// root reads mode 0000 files, so the case only means something for others.
		{name: "unreadable", ref: providers.Ref{Key: "noperm"}, wantErr: true, wantKind: providers.KindPermissionDenied, skip: root},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("running as root: file modes do not stop reads")
			}
			s, err := c.Get(context.Background(), tt.ref)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Get(%+v) succeeded, want a %v error", tt.ref, tt.wantKind)
				}
				if k := providers.KindOf(err); k != tt.wantKind {
					t.Errorf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
				}
				if !strings.Contains(err.Error(), tt.errSubstr) {
					t.Errorf("error %q does not contain %q", err, tt.errSubstr)
				}
				if !strings.Contains(err.Error(), `store "dev"`) {
					t.Errorf("error %q does not name the store", err)
				}
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("error leaks the secret value: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%+v): %v", tt.ref, err)
			}
			if string(s.Value) != tt.want {
				t.Errorf("value = %q, want %q", s.Value, tt.want)
			}
			if len(s.Version) != 16 {
				t.Errorf("version %q is not 16 hex digits", s.Version)
			}
		})
	}
}

func TestVersionFollowsContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	c, err := Open("dev", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	versions := map[string]bool{}
	// Same size, written back to back: mtime+size could not tell these apart.
	for _, v := range []string{"aaaa", "bbbb", "cccc"} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := c.Get(context.Background(), providers.Ref{Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != hash(v) {
			t.Errorf("version of %q = %q, want %q", v, s.Version, hash(v))
		}
		versions[s.Version] = true
	}
	if len(versions) != 3 {
		t.Errorf("got %d distinct versions for 3 contents", len(versions))
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, substr string
	}{
		{"empty", "", "spec.file.dir is empty"},
		{"relative", "run/secrets", "not an absolute path"},
		{"missing", "/nonexistent/dso-test-dir", "cannot open spec.file.dir"},
		{"not a dir", file, "cannot open spec.file.dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &v1alpha1.SecretStore{Spec: v1alpha1.SecretStoreSpec{File: &v1alpha1.FileProvider{Dir: tt.dir}}}
			store.Name = "dev"
			_, err := Provider{}.NewClient(context.Background(), store)
			if err == nil {
				t.Fatal("NewClient succeeded")
			}
			if providers.KindOf(err) != providers.KindInvalidConfig || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v (kind %v), want invalid configuration containing %q", err, providers.KindOf(err), tt.substr)
			}
		})
	}
}

func TestValidateAndRegistry(t *testing.T) {
	dir := t.TempDir()
	r := providers.NewRegistry()
	r.MustRegister(Provider{})
	store := &v1alpha1.SecretStore{Spec: v1alpha1.SecretStoreSpec{File: &v1alpha1.FileProvider{Dir: dir}}}
	store.Name = "dev"
	c, err := r.NewClient(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Validate(context.Background()); err != nil {
		t.Errorf("Validate on a fresh dir: %v", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(context.Background()); err == nil {
		t.Error("Validate succeeded after the directory was removed")
	}
}

func TestCancelledContext(t *testing.T) {
	_, dir := setup(t)
	c, err := Open("dev", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, providers.Ref{Key: "db"}); providers.KindOf(err) != providers.KindUnavailable {
		t.Errorf("Get with cancelled ctx: err = %v, want unavailable", err)
	}
}
