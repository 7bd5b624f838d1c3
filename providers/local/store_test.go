package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dso-dev/dso/providers"
)

// newTestStore creates a fresh store in a temp dir (in a subdirectory, so
// Init has to create it).
func newTestStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dso", "vault.enc")
	s, err := Init(path, "", false, opts...)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return s
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fi.Mode().Perm()
}

func TestInitCreatesPrivateFiles(t *testing.T) {
	s := newTestStore(t)
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Dir(s.Path()), 0o700},
		{s.Path(), 0o600},
		{s.KeyFile(), 0o600},
		{s.LockFile(), 0o600},
	} {
		if got := mode(t, c.path); got != c.want {
			t.Errorf("%s: mode %04o, want %04o", c.path, got, c.want)
		}
	}
	if s.KeyFile() != s.Path()+".key" {
		t.Errorf("key file %s, want %s.key", s.KeyFile(), s.Path())
	}
	entries, err := s.List("")
	if err != nil || len(entries) != 0 {
		t.Fatalf("new store: List = %v, %v; want empty", entries, err)
	}
	// The store file is an age file, not plaintext JSON.
	raw, _ := os.ReadFile(s.Path())
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) || bytes.Contains(raw, []byte(FormatV1)) {
		t.Errorf("store file is not an age file: %q", raw[:min(len(raw), 40)])
	}
	// No temp files are left behind.
	names, _ := os.ReadDir(filepath.Dir(s.Path()))
	for _, n := range names {
		if strings.Contains(n.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", n.Name())
		}
	}
}

func TestInitRefusesToReplace(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(path string) // creates some of the files
		force   bool
		wantErr string
	}{
		{"existing store and key", func(p string) { mustInit(t, p) }, false, "already exists"},
		{"only the key exists", func(p string) { writeFile(t, p+".key", "x") }, false, "vault.enc.key already exists"},
		{"only the store exists", func(p string) { writeFile(t, p, "x") }, false, "vault.enc already exists"},
		{"force replaces both", func(p string) { mustInit(t, p) }, true, ""},
		{"empty dir", func(string) {}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vault.enc")
			tt.prepare(path)
			s, err := Init(path, "", tt.force)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--force") {
					t.Fatalf("Init: err = %v, want one containing %q and --force", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Init: %v", err)
			}
			if list, err := s.List(""); err != nil || len(list) != 0 {
				t.Fatalf("after Init: List = %v, %v; want an empty store", list, err)
			}
		})
	}
}

func mustInit(t *testing.T, path string) {
	t.Helper()
	s, err := Init(path, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Set("old/key", []byte("old")); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestValuesRoundTripExactBytes(t *testing.T) {
	s := newTestStore(t)
	big := bytes.Repeat([]byte{0xA5}, providers.MaxValueSize)
	tests := []struct {
		name  string
		value []byte
	}{
		{"text", []byte("s3cr3t")},
		{"NUL and trailing newline", []byte("a\x00b\n")},
		{"only newlines and CR", []byte("\r\n\n")},
		{"invalid UTF-8", []byte{0xff, 0xfe, 0x00, 0x80}},
		{"leading and trailing spaces", []byte("  padded  ")},
		{"exactly 1 MiB", big},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("app/v%d", i)
			if _, err := s.Set(key, tt.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			e, err := s.Get(key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(e.Value, tt.value) {
				t.Fatalf("Get returned %d bytes %q..., want %d bytes", len(e.Value), e.Value[:min(len(e.Value), 16)], len(tt.value))
			}
		})
	}
}

func TestVersionsNeverReused(t *testing.T) {
	s := newTestStore(t)
	steps := []struct {
		op      string // set | rm
		want    int64  // version after a set
		wantErr providers.Kind
	}{
		{"set", 1, 0}, {"set", 2, 0}, {"rm", 0, 0}, {"rm", 0, providers.KindNotFound}, {"set", 3, 0},
	}
	for i, st := range steps {
		switch st.op {
		case "set":
			e, err := s.Set("k", []byte(strconv.Itoa(i)))
			if err != nil || e.Version != st.want {
				t.Fatalf("step %d: Set = version %d, %v; want %d", i, e.Version, err, st.want)
			}
			got, _ := s.Get("k")
			if got.VersionID() != strconv.FormatInt(st.want, 10) {
				t.Fatalf("step %d: Get version %q, want %d", i, got.VersionID(), st.want)
			}
		case "rm":
			err := s.Delete("k")
			if providers.KindOf(err) != st.wantErr || (err == nil) != (st.wantErr == 0) {
				t.Fatalf("step %d: Delete = %v, want kind %v", i, err, st.wantErr)
			}
		}
	}
}

func TestListPrefixSorted(t *testing.T) {
	fixed := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newTestStore(t, WithClock(func() time.Time { return fixed }))
	for _, k := range []string{"shop/z", "shop/a", "other/x", "shopping/b"} {
		if _, err := s.Set(k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"other/x", "shop/a", "shop/z", "shopping/b"}},
		{"shop/", []string{"shop/a", "shop/z"}},
		{"shop", []string{"shop/a", "shop/z", "shopping/b"}},
		{"nope", []string{}},
	}
	for _, tt := range tests {
		list, err := s.List(tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, e := range list {
			got = append(got, e.Key)
			if e.Value != nil || !e.Updated.Equal(fixed) || e.Version != 1 {
				t.Errorf("List entry %+v: want no value, version 1, updated %v", e, fixed)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

// TestErrorsNameTheFixAndNeverTheValue covers each failure a user can hit.
// Every error text is checked for the secret value and the key material.
func TestErrorsNameTheFixAndNeverTheValue(t *testing.T) {
	const secret = "hunter2-VERY-SECRET-value"
	tests := []struct {
		name     string
		run      func(t *testing.T, s *Store) error
		kind     providers.Kind
		contains []string
	}{
		{"missing key", func(t *testing.T, s *Store) error {
			_, err := s.Get("nope/x")
			return err
		}, providers.KindNotFound, []string{`"nope/x"`, "secret set"}},
		{"wrong key file", func(t *testing.T, s *Store) error {
			other := newTestStore(t)
			o, err := Open(s.Path(), other.KeyFile())
			if err != nil {
				return err
			}
			_, err = o.Get("app/db")
			return err
		}, providers.KindPermissionDenied, []string{"cannot be decrypted with key file", "vault.enc.key"}},
		{"damaged store file", func(t *testing.T, s *Store) error {
			raw, _ := os.ReadFile(s.Path())
			raw[len(raw)-5] ^= 0xff
			writeFile(t, s.Path(), string(raw))
			_, err := s.Get("app/db")
			return err
		}, providers.KindPermissionDenied, []string{"damaged", "vault.enc.key"}},
		{"store file removed", func(t *testing.T, s *Store) error {
			os.Remove(s.Path())
			_, err := s.Get("app/db")
			return err
		}, providers.KindInvalidConfig, []string{"run `docker dso init`"}},
		{"nothing initialised", func(t *testing.T, s *Store) error {
			_, err := Open(filepath.Join(t.TempDir(), "vault.enc"), "")
			return err
		}, providers.KindInvalidConfig, []string{"run `docker dso init`"}},
		{"key file missing", func(t *testing.T, s *Store) error {
			os.Remove(s.KeyFile())
			_, err := Open(s.Path(), "")
			return err
		}, providers.KindInvalidConfig, []string{"key file", "is missing", "backup"}},
		{"key file readable by others", func(t *testing.T, s *Store) error {
			os.Chmod(s.KeyFile(), 0o644)
			_, err := Open(s.Path(), "")
			return err
		}, providers.KindPermissionDenied, []string{"chmod 600"}},
		{"key file garbage", func(t *testing.T, s *Store) error {
			writeFile(t, s.KeyFile(), "AGE-SECRET-KEY-1"+secret+"\n")
			_, err := Open(s.Path(), "")
			return err
		}, providers.KindInvalidConfig, []string{"X25519 identity"}},
		{"oversized value", func(t *testing.T, s *Store) error {
			_, err := s.Set("app/big", bytes.Repeat([]byte(secret), providers.MaxValueSize/len(secret)+1))
			return err
		}, providers.KindInvalidRef, []string{"1 MiB"}},
		{"traversal key", func(t *testing.T, s *Store) error {
			_, err := s.Set("../etc/passwd", []byte(secret))
			return err
		}, providers.KindInvalidRef, []string{".."}},
		{"absolute key", func(t *testing.T, s *Store) error {
			return s.Delete("/abs")
		}, providers.KindInvalidRef, []string{"absolute"}},
		{"NUL in key", func(t *testing.T, s *Store) error {
			_, err := s.Get("a\x00b")
			return err
		}, providers.KindInvalidRef, []string{"NUL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			if _, err := s.Set("app/db", []byte(secret)); err != nil {
				t.Fatal(err)
			}
			keyText, _ := os.ReadFile(s.KeyFile())
			err := tt.run(t, s)
			if err == nil {
				t.Fatal("expected an error")
			}
			if got := providers.KindOf(err); got != tt.kind {
				t.Errorf("kind = %v, want %v (%v)", got, tt.kind, err)
			}
			msg := err.Error()
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("error %q does not contain %q", msg, c)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error leaks the secret value: %q", msg)
			}
			if id := lastLine(keyText); id != "" && strings.Contains(msg, id) {
				t.Errorf("error leaks the private key: %q", msg)
			}
		})
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// TestConcurrentSetsInOneProcess: many goroutines, each with its own Store
// value (as separate CLI processes would have), must not lose any update.
func TestConcurrentSetsInOneProcess(t *testing.T) {
	base := newTestStore(t)
	const workers, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(base.Path(), "")
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < each; i++ {
				if _, err := s.Set(fmt.Sprintf("g%d/k%d", w, i), []byte{byte(w), byte(i)}); err != nil {
					errs <- err
				}
				if _, err := s.Set("shared", []byte("x")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkNoLostUpdates(t, base, "g", workers, each)
}

func checkNoLostUpdates(t *testing.T, s *Store, prefix string, workers, each int) {
	t.Helper()
	list, err := s.List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != workers*each {
		t.Errorf("store has %d keys under %q, want %d: updates were lost", len(list), prefix, workers*each)
	}
	shared, err := s.Get("shared")
	if err != nil {
		t.Fatal(err)
	}
	if shared.Version != int64(workers*each) {
		t.Errorf("shared key has version %d after %d sets: updates were lost", shared.Version, workers*each)
	}
}

// TestConcurrentSetsAcrossProcesses re-executes this test binary as several
// child processes that all write to one store.
func TestConcurrentSetsAcrossProcesses(t *testing.T) {
	base := newTestStore(t)
	const procs, each = 4, 15
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessWriter$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				"DSO_LOCAL_TEST_CHILD=1",
				"DSO_LOCAL_TEST_PATH="+base.Path(),
				"DSO_LOCAL_TEST_PREFIX=p"+strconv.Itoa(p),
				"DSO_LOCAL_TEST_COUNT="+strconv.Itoa(each),
			)
			outs[p], errs[p] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil {
			t.Fatalf("child %d: %v\n%s", p, errs[p], outs[p])
		}
		if !bytes.Contains(outs[p], []byte("child wrote")) {
			t.Fatalf("child %d did not run the writer:\n%s", p, outs[p])
		}
	}
	checkNoLostUpdates(t, base, "p", procs, each)
}

// TestHelperProcessWriter is the child of TestConcurrentSetsAcrossProcesses;
// run directly it does nothing.
func TestHelperProcessWriter(t *testing.T) {
	if os.Getenv("DSO_LOCAL_TEST_CHILD") != "1" {
		t.Skip("helper process for TestConcurrentSetsAcrossProcesses")
	}
	s, err := Open(os.Getenv("DSO_LOCAL_TEST_PATH"), "")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("DSO_LOCAL_TEST_COUNT"))
	prefix := os.Getenv("DSO_LOCAL_TEST_PREFIX")
	for i := 0; i < n; i++ {
		if _, err := s.Set(fmt.Sprintf("%s/k%d", prefix, i), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Set("shared", []byte(prefix)); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("child wrote", n)
}

func TestErrorKindsMatchSentinels(t *testing.T) {
	s := newTestStore(t)
	_, err := s.Get("missing")
	if !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("missing key: %v is not ErrNotFound", err)
	}
}
