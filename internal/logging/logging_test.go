package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestJSONKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "agent.log")
	l, closeFn, err := New(Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	l.WithName("containerswap").Info("rotation complete", "trace_id", "ab12", "duration", 1200*time.Millisecond, "targets", 3)
	l.Error(errors.New("health gate failed"), "rotation failed", "binding", "api-db")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), b)
	}
	var info, errl map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &info); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &errl); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	// Exactly the documented keys plus what was logged: the logger adds
	// nothing it was not given (no stack traces, no hidden fields).
	if got, want := keys(info), []string{"caller", "duration", "level", "logger", "msg", "targets", "trace_id", "ts"}; !slices.Equal(got, want) {
		t.Errorf("info keys = %v, want %v", got, want)
	}
	if got, want := keys(errl), []string{"binding", "caller", "error", "level", "msg", "ts"}; !slices.Equal(got, want) {
		t.Errorf("error keys = %v, want %v", got, want)
	}
	for k, want := range map[string]any{"level": "info", "msg": "rotation complete", "logger": "containerswap", "trace_id": "ab12", "duration": "1.2s", "targets": 3.0} {
		if info[k] != want {
			t.Errorf("info[%q] = %#v, want %#v", k, info[k], want)
		}
	}
	if errl["level"] != "error" || errl["error"] != "health gate failed" {
		t.Errorf("error line = %v", errl)
	}
	ts, _ := info["ts"].(string)
	if !strings.HasSuffix(ts, "Z") {
		t.Errorf("ts %q is not UTC", ts)
	}
	pt, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("ts %q: %v", ts, err)
	}
	if pt.Before(before.Add(-time.Second)) || pt.After(time.Now().Add(time.Second)) {
		t.Errorf("ts %v is not now", pt)
	}
	if c, _ := info["caller"].(string); !strings.HasPrefix(c, "logging/logging_test.go:") {
		t.Errorf("caller = %q, want this test file (zapr call depth wrong?)", c)
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		level string
		want  []string // messages written, in order
	}{
		{"debug", []string{"v1", "info", "error"}},
		{"", []string{"info", "error"}},
		{"info", []string{"info", "error"}},
		{"warn", []string{"error"}},
		{"error", []string{"error"}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.log")
			l, c, err := New(Options{Level: tt.level, File: path})
			if err != nil {
				t.Fatal(err)
			}
			l.V(2).Info("v2")
			l.V(1).Info("v1")
			l.Info("info")
			l.Error(nil, "error")
			if err := c(); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got []string
			for e, err := range ReadEntries(f) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, e.Msg)
				wantLevel := map[string]string{"v1": "debug", "info": "info", "error": "error"}[e.Msg]
				if e.Level != wantLevel {
					t.Errorf("%s written at level %q, want %q", e.Msg, e.Level, wantLevel)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("level %q wrote %v, want %v", tt.level, got, tt.want)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{Level: "verbose"}, "logging.level"},
		{Options{Format: "xml"}, "logging.format"},
		{Options{File: "/proc/no/such/dir/agent.log"}, "log directory"},
	}
	for _, tt := range tests {
		_, _, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) error = %v, want one mentioning %q", tt.opts, err, tt.want)
		}
	}
}

func TestFilePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "log", "dso", "agent.log")
	l, c, err := New(Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello")
	if err := c(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("file mode %v, want 0640", st.Mode().Perm())
	}
	dst, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v, want 0750", dst.Mode().Perm())
	}
	// Append, not truncate: a restarted agent keeps the earlier lines.
	l, c, err = New(Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("again")
	if err := c(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("after reopen the file has %d lines, want 2 (append):\n%s", n, b)
	}
}

func TestStderr(t *testing.T) {
	tests := []struct {
		name     string
		file     bool
		stderr   bool
		inStderr bool
		inFile   bool
	}{
		{"no file means stderr", false, false, true, false},
		{"file only", true, false, false, true},
		{"file and stderr", true, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			old := os.Stderr
			os.Stderr = w
			defer func() { os.Stderr = old }()
			opts := Options{Stderr: tt.stderr}
			if tt.file {
				opts.File = filepath.Join(t.TempDir(), "a.log")
			}
			l, c, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			l.Info("marker-line")
			if err := c(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			os.Stderr = old
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(r)
			if got := strings.Contains(buf.String(), "marker-line"); got != tt.inStderr {
				t.Errorf("stderr has line = %v, want %v (%q)", got, tt.inStderr, buf.String())
			}
			if tt.file {
				b, _ := os.ReadFile(opts.File)
				if got := strings.Contains(string(b), "marker-line"); got != tt.inFile {
					t.Errorf("file has line = %v, want %v", got, tt.inFile)
				}
			}
		})
	}
}

func TestConsoleFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, c, err := New(Options{File: path, Format: "console"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("rotation complete", "binding", "api-db")
	if err := c(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if !strings.Contains(s, "INFO") || !strings.Contains(s, "rotation complete") || !strings.Contains(s, `"binding": "api-db"`) {
		t.Errorf("console line = %q", s)
	}
	if json.Valid(bytes.TrimSpace(b)) {
		t.Errorf("console format wrote JSON: %q", s)
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		maxFiles int
		lines    int
	}{
		{1, 50},
		{3, 200},
		{5, 400},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxFiles), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.log")
			const maxBytes = 1000
			l, c, err := New(Options{File: path, MaxFileBytes: maxBytes, MaxFiles: tt.maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.lines {
				l.Info("line", "n", i)
			}
			if err := c(); err != nil {
				t.Fatal(err)
			}
			files := Files(path, tt.maxFiles)
			if len(files) != tt.maxFiles {
				t.Fatalf("files = %v, want %d of them", files, tt.maxFiles)
			}
			if _, err := os.Stat(fmt.Sprintf("%s.%d", path, tt.maxFiles)); err == nil {
				t.Errorf("a file beyond the %d kept exists", tt.maxFiles)
			}
			if files[len(files)-1] != path {
				t.Errorf("active file not last: %v", files)
			}
			// Read oldest to newest: the numbers must be consecutive and end
			// at the last line written (nothing lost inside the kept window,
			// nothing out of order).
			var ns []int
			for _, p := range files {
				st, _ := os.Stat(p)
				if st.Size() > maxBytes {
					t.Errorf("%s is %d bytes, over the %d bound", p, st.Size(), maxBytes)
				}
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				for e, err := range ReadEntries(f) {
					if err != nil {
						t.Fatal(err)
					}
					n, _ := e.Fields["n"].(json.Number).Int64()
					ns = append(ns, int(n))
				}
				f.Close()
			}
			if len(ns) == 0 || ns[len(ns)-1] != tt.lines-1 {
				t.Fatalf("last line read %v, want %d", ns, tt.lines-1)
			}
			for i := 1; i < len(ns); i++ {
				if ns[i] != ns[i-1]+1 {
					t.Fatalf("lines not consecutive at %d: %v", i, ns)
				}
			}
		})
	}
}

func TestOversizedLineStillWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	r, err := OpenRotatingFile(path, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"first line that is long\n", "second line that is long\n"} {
		if _, err := r.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(cur) != "second line that is long\n" || string(old) != "first line that is long\n" {
		t.Errorf("active %q, .1 %q", cur, old)
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}
}

func BenchmarkInfoToFile(b *testing.B) {
	l, c, err := New(Options{File: filepath.Join(b.TempDir(), "a.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer c()
	b.ReportAllocs()
	for b.Loop() {
		l.Info("rotation complete", "trace_id", "ab12", "binding", "api-db", "container", "api", "duration", time.Second)
	}
}

func BenchmarkDisabledDebug(b *testing.B) {
	l, c, err := New(Options{File: filepath.Join(b.TempDir(), "a.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer c()
	b.ReportAllocs()
	for b.Loop() {
		l.V(1).Info("cache_hit", "store", "vault")
	}
}
