package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func mapLookup(m map[string]string) lookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fakeClock is a settable clock for the TESTAPP_HEALTHY_AFTER switch.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

const secretValue = "s3cr3t-value-never-served"

func TestParseConfig(t *testing.T) {
	goodHash := sha256Hex([]byte("x"))
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", env: nil, check: func(t *testing.T, c config) {
			if c.listen != ":8080" || c.unhealthy || c.exitOnStart || c.healthyAfter != 0 || c.unhealthyIfEnv != nil || c.unhealthyIfFile != nil || len(c.watchFiles) != 0 {
				t.Fatalf("unexpected defaults: %+v", c)
			}
		}},
		{name: "all switches", env: map[string]string{
			"TESTAPP_LISTEN":            "127.0.0.1:9000",
			"TESTAPP_UNHEALTHY":         "1",
			"TESTAPP_EXIT_ON_START":     "true",
			"TESTAPP_HEALTHY_AFTER":     "3s",
			"TESTAPP_UNHEALTHY_IF_ENV":  "DB_PASSWORD:" + strings.ToUpper(goodHash),
			"TESTAPP_UNHEALTHY_IF_FILE": "/run/secrets/a:" + goodHash,
			"TESTAPP_WATCH_FILES":       "/a, /b,,",
		}, check: func(t *testing.T, c config) {
			if c.listen != "127.0.0.1:9000" || !c.unhealthy || !c.exitOnStart || c.healthyAfter != 3*time.Second {
				t.Fatalf("scalar switches not read: %+v", c)
			}
			if *c.unhealthyIfEnv != (hashMatch{name: "DB_PASSWORD", hash: goodHash}) {
				t.Fatalf("env match = %+v", *c.unhealthyIfEnv)
			}
			if *c.unhealthyIfFile != (hashMatch{name: "/run/secrets/a", hash: goodHash}) {
				t.Fatalf("file match = %+v", *c.unhealthyIfFile)
			}
			if strings.Join(c.watchFiles, "|") != "/a|/b" {
				t.Fatalf("watch files = %q", c.watchFiles)
			}
		}},
		{name: "bad bool", env: map[string]string{"TESTAPP_UNHEALTHY": "yes please"}, wantErr: "TESTAPP_UNHEALTHY must be a boolean"},
		{name: "match without colon", env: map[string]string{"TESTAPP_UNHEALTHY_IF_ENV": "NAME"}, wantErr: "must look like NAME:SHA256HEX"},
		{name: "match with short hash", env: map[string]string{"TESTAPP_UNHEALTHY_IF_FILE": "/f:abcd"}, wantErr: "64 hex digits"},
		{name: "match with non-hex", env: map[string]string{"TESTAPP_UNHEALTHY_IF_ENV": "N:" + strings.Repeat("z", 64)}, wantErr: "64 hex digits"},
		{name: "bad duration", env: map[string]string{"TESTAPP_HEALTHY_AFTER": "soon"}, wantErr: "TESTAPP_HEALTHY_AFTER must be"},
		{name: "negative duration", env: map[string]string{"TESTAPP_HEALTHY_AFTER": "-1s"}, wantErr: "TESTAPP_HEALTHY_AFTER must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(mapLookup(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestHealthSwitches(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad")
	if err := os.WriteFile(badFile, []byte("bad-content"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		advance time.Duration
		want    bool
		reason  string
	}{
		{name: "healthy by default", want: true},
		{name: "always unhealthy", env: map[string]string{"TESTAPP_UNHEALTHY": "1"}, reason: "TESTAPP_UNHEALTHY"},
		{name: "slow start, too early", env: map[string]string{"TESTAPP_HEALTHY_AFTER": "3s"}, advance: 2 * time.Second, reason: "starting"},
		{name: "slow start, late enough", env: map[string]string{"TESTAPP_HEALTHY_AFTER": "3s"}, advance: 3 * time.Second, want: true},
		{name: "env has the bad hash", env: map[string]string{"PW": secretValue, "TESTAPP_UNHEALTHY_IF_ENV": "PW:" + sha256Hex([]byte(secretValue))}, reason: "env PW"},
		{name: "env has another value", env: map[string]string{"PW": "other", "TESTAPP_UNHEALTHY_IF_ENV": "PW:" + sha256Hex([]byte(secretValue))}, want: true},
		{name: "env unset", env: map[string]string{"TESTAPP_UNHEALTHY_IF_ENV": "PW:" + sha256Hex([]byte(secretValue))}, want: true},
		{name: "file has the bad hash", env: map[string]string{"TESTAPP_UNHEALTHY_IF_FILE": badFile + ":" + sha256Hex([]byte("bad-content"))}, reason: "file " + badFile},
		{name: "file has another hash", env: map[string]string{"TESTAPP_UNHEALTHY_IF_FILE": badFile + ":" + sha256Hex([]byte("good"))}, want: true},
		{name: "file missing", env: map[string]string{"TESTAPP_UNHEALTHY_IF_FILE": filepath.Join(dir, "none") + ":" + sha256Hex([]byte("x"))}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(mapLookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			clk := &fakeClock{t: time.Unix(1000, 0)}
			s := newServer(cfg, mapLookup(tt.env), clk.now)
			clk.t = clk.t.Add(tt.advance)
			ok, reason := s.health()
			if ok != tt.want {
				t.Fatalf("healthy = %v (%s), want %v", ok, reason, tt.want)
			}
			if !ok && !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q does not mention %q", reason, tt.reason)
			}
			if strings.Contains(reason, secretValue) {
				t.Fatalf("health reason leaks the value: %q", reason)
			}
		})
	}
}

// TestUnhealthyIfFileFollowsRewrites proves the file switch is evaluated per
// check: rewriting the file flips health both ways without a restart.
func TestUnhealthyIfFileFollowsRewrites(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cert")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good")
	env := map[string]string{"TESTAPP_UNHEALTHY_IF_FILE": f + ":" + sha256Hex([]byte("bad"))}
	cfg, err := parseConfig(mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(cfg, mapLookup(env), time.Now)
	for i, step := range []struct {
		content string
		want    bool
	}{{"good", true}, {"bad", false}, {"good again", true}} {
		write(step.content)
		if ok, reason := s.health(); ok != step.want {
			t.Fatalf("step %d: healthy = %v (%s), want %v", i, ok, reason, step.want)
		}
	}
}

func TestHandlers(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DB_PASSWORD": secretValue, "EMPTY": ""}
	cfg, err := parseConfig(mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(cfg, mapLookup(env), time.Now)
	ts := httptest.NewServer(s.handler())
	defer ts.Close()

	tests := []struct {
		path     string
		wantCode int
		wantBody string // exact body, or "" to skip
		contains string
	}{
		{path: "/healthz", wantCode: 200, wantBody: "ok"},
		{path: "/env/DB_PASSWORD", wantCode: 200, wantBody: sha256Hex([]byte(secretValue))},
		{path: "/env/EMPTY", wantCode: 200, wantBody: sha256Hex(nil)},
		{path: "/env/NOPE", wantCode: 404, contains: "NOPE is not set"},
		{path: "/file?path=" + secretFile, wantCode: 200, wantBody: sha256Hex([]byte(secretValue))},
		{path: "/file?path=" + filepath.Join(dir, "missing"), wantCode: 404, contains: "does not exist"},
		{path: "/file?path=" + dir, wantCode: 500, contains: "is a directory"},
		{path: "/file", wantCode: 400, contains: "path is required"},
		{path: "/nothing", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, ts.URL+tt.path)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", code, tt.wantCode, body)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Fatalf("body = %q, want %q", body, tt.wantBody)
			}
			if !strings.Contains(body, tt.contains) {
				t.Fatalf("body %q does not contain %q", body, tt.contains)
			}
			if strings.Contains(body, secretValue) {
				t.Fatalf("%s served the plaintext value", tt.path)
			}
		})
	}

	t.Run("/version", func(t *testing.T) {
		code, body := get(t, ts.URL+"/version")
		var v versionInfo
		if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 {
			t.Fatalf("status %d, body %q, decode error %v", code, body, err)
		}
		if v.PID != os.Getpid() || v.Started.IsZero() {
			t.Fatalf("version = %+v, want pid %d and a start time", v, os.Getpid())
		}
		if h, _ := os.Hostname(); v.Hostname != h {
			t.Fatalf("hostname = %q, want %q", v.Hostname, h)
		}
	})
}

// TestFileIsReReadPerRequest: /file must reflect the current content.
func TestFileIsReReadPerRequest(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	s := newServer(config{}, mapLookup(nil), time.Now)
	ts := httptest.NewServer(s.handler())
	defer ts.Close()
	for _, content := range []string{"one", "two"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, body := get(t, ts.URL+"/file?path="+f); body != sha256Hex([]byte(content)) {
			t.Fatalf("after writing %q got hash %s", content, body)
		}
	}
}

// TestServeSignals drives the real serve loop: SIGHUP reloads watched files
// and counts, SIGTERM shuts down cleanly.
func TestServeSignals(t *testing.T) {
	f := filepath.Join(t.TempDir(), "watched")
	if err := os.WriteFile(f, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newServer(config{watchFiles: []string{f}}, mapLookup(nil), time.Now)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- s.serve(ln, sigs, io.Discard) }()
	base := "http://" + ln.Addr().String()

	sighup := func() sighupInfo {
		t.Helper()
		_, body := get(t, base+"/sighup")
		var info sighupInfo
		if err := json.Unmarshal([]byte(body), &info); err != nil {
			t.Fatalf("decoding /sighup %q: %v", body, err)
		}
		return info
	}
	if info := sighup(); info.Count != 0 || info.Files[f] != sha256Hex([]byte("v1")) {
		t.Fatalf("before SIGHUP: %+v", info)
	}
	// A rewrite alone must not change what the process has loaded.
	if err := os.WriteFile(f, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if info := sighup(); info.Files[f] != sha256Hex([]byte("v1")) {
		t.Fatalf("watched file reloaded without a SIGHUP: %+v", info)
	}
	sigs <- syscall.SIGHUP
	deadline := time.Now().Add(5 * time.Second)
	for {
		info := sighup()
		if info.Count == 1 && info.Files[f] == sha256Hex([]byte("v2")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP not served: %+v", info)
		}
		time.Sleep(10 * time.Millisecond)
	}

	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after SIGTERM, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after SIGTERM")
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("server still answers after SIGTERM")
	}
}

func TestServeMainExitCodes(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want int
	}{
		{name: "exit on start", env: map[string]string{"TESTAPP_EXIT_ON_START": "1"}, want: 3},
		{name: "invalid switch", env: map[string]string{"TESTAPP_HEALTHY_AFTER": "x"}, want: 2},
		{name: "unusable listen address", env: map[string]string{"TESTAPP_LISTEN": "127.0.0.1:notaport"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serveMain(mapLookup(tt.env)); got != tt.want {
				t.Fatalf("exit status = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"get"}, {"client"}, {"get", "a", "b"}} {
		if got := run(args); got != 2 {
			t.Errorf("run(%q) = %d, want 2", args, got)
		}
	}
}

func TestProbeURL(t *testing.T) {
	tests := map[string]string{
		"":               "http://127.0.0.1:8080/healthz",
		":9090":          "http://127.0.0.1:9090/healthz",
		"0.0.0.0:7000":   "http://127.0.0.1:7000/healthz",
		"127.0.0.1:6000": "http://127.0.0.1:6000/healthz",
		"garbage":        "http://127.0.0.1:8080/healthz",
	}
	for in, want := range tests {
		if got := probeURL(in); got != want {
			t.Errorf("probeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProbeAndGet(t *testing.T) {
	var healthy atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			writeText(w, 200, "ok")
			return
		}
		writeText(w, 503, "not yet")
	}))
	defer ts.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		healthy bool
		addr    string
		want    int
	}{
		{name: "healthy", healthy: true, addr: ts.Listener.Addr().String(), want: 0},
		{name: "unhealthy", healthy: false, addr: ts.Listener.Addr().String(), want: 1},
		{name: "nothing listening", addr: closedAddr, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healthy.Store(tt.healthy)
			var stderr strings.Builder
			if got := probeMain(tt.addr, &stderr); got != tt.want {
				t.Fatalf("probe = %d, want %d (stderr %q)", got, tt.want, stderr.String())
			}
			var out strings.Builder
			if got := getMain("http://"+tt.addr+"/healthz", &out, io.Discard); got != tt.want {
				t.Fatalf("get = %d, want %d", got, tt.want)
			}
			if tt.want == 0 && out.String() != "ok" {
				t.Fatalf("get printed %q, want the body", out.String())
			}
		})
	}
}

func TestClientLoopCounts(t *testing.T) {
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch i := n.Add(1); {
		case i <= 3:
			writeText(w, 200, "old")
		case i <= 5:
			writeText(w, 503, "down")
		default:
			writeText(w, 200, "new\n")
		}
	}))
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for n.Load() < 8 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	rep := clientLoop(ctx, ts.URL, time.Millisecond, ts.Client())
	if rep.Bodies["old"] != 3 || rep.Failed != 2 || rep.Bodies["new"] < 2 {
		t.Fatalf("report = %+v, want 3 old, 2 failed, >=2 new", rep)
	}
	if rep.OK != rep.Bodies["old"]+rep.Bodies["new"] {
		t.Fatalf("ok %d does not add up to the body counts %v", rep.OK, rep.Bodies)
	}
	if rep.LastError != "status 503" {
		t.Fatalf("last error = %q", rep.LastError)
	}
}

func TestClientMainRejectsBadInterval(t *testing.T) {
	var stderr strings.Builder
	if got := clientMain("http://127.0.0.1:1/", "fast", io.Discard, &stderr); got != 2 {
		t.Fatalf("exit = %d, want 2", got)
	}
	if !strings.Contains(stderr.String(), "TESTAPP_CLIENT_INTERVAL") {
		t.Fatalf("message %q does not name the setting", stderr.String())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
