package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logsFixture copies testdata/system/log/* into a temp dir, writes a config
// whose logging.file points there, and isolates the supervisor's run dir.
// It returns the config path and the active log file.
func logsFixture(t *testing.T) (cfg, logFile string) {
	t.Helper()
	dir := isolate(t)
	t.Setenv("DSO_RUN_DIR", filepath.Join(dir, "run"))
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"agent.log", "agent.log.1", "agent.log.2"} {
		b, err := os.ReadFile(filepath.Join(testdata, "system", "log", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(logDir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	logFile = filepath.Join(logDir, "agent.log")
	cfg = writeLogsConfig(t, dir, logFile)
	return cfg, logFile
}

func writeLogsConfig(t *testing.T, dir, logFile string) string {
	t.Helper()
	cfg := filepath.Join(dir, "dso.yaml")
	body := fmt.Sprintf("logging:\n  file: %q\nbindings:\n  dirs: [%q]\n", logFile, filepath.Join(dir, "bindings.d"))
	if err := os.WriteFile(cfg, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fixNow pins the clock --since counts back from: the fixture's newest entry
// is 11:58 UTC.
func fixNow(t *testing.T) {
	t.Helper()
	old := logsNow
	logsNow = func() time.Time { return time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { logsNow = old })
}

func TestSystemLogsGolden(t *testing.T) {
	// These goldens are what a person sees on a terminal (default -n 20).
	prev := logsToTerminal
	logsToTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { logsToTerminal = prev })
	tests := []struct {
		golden string
		args   []string
	}{
		// The default tail (20) reaches back into agent.log.1 and .2: the
		// order proves rotated files are read oldest first.
		{"logs-default", nil},
		{"logs-n5", []string{"-n", "5"}},
		{"logs-all", []string{"-n", "0"}},
		{"logs-p-err", []string{"-p", "err"}},
		{"logs-p-warning", []string{"-p", "warning"}},
		{"logs-p-error-alias", []string{"-p", "error", "-n", "2"}},
		// --since without -n: everything since then, not the last 20.
		{"logs-since-1h", []string{"--since", "1h"}},
		{"logs-since-local", []string{"--since", "2026-01-31 10:40"}},
		{"logs-since-rfc3339-n2", []string{"--since", "2026-01-31T09:00:00Z", "-n", "2"}},
		{"logs-p-err-since-1h", []string{"-p", "err", "--since", "1h"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			cfg, _ := logsFixture(t)
			fixNow(t)
			argv := append([]string{"dso", "--config", cfg, "system", "logs"}, tc.args...)
			r := run(t, nil, "", argv...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, "system/"+tc.golden, r.out)
			if want := "(1 lines of "; !strings.Contains(r.err, want) && strings.Contains(tc.golden, "all") {
				t.Errorf("stderr %q does not report the skipped non-JSON line", r.err)
			}
		})
	}
}

// The operations guide's pipelines must count and find real entries.
func TestSystemLogsGuidePipelines(t *testing.T) {
	tests := []struct {
		args []string
		grep string
		want int
	}{
		// ROTATION_ERRORS=$(docker dso system logs --since 1h | grep "rotation failed" | wc -l)
		{[]string{"--since", "1h"}, "rotation failed", 2},
		{[]string{"--since", "7d"}, "rotation failed", 3},
		// Piped, without -n: the whole log (a 20-entry window would hide matches).
		{nil, "Automatic recovery", 3},
		{[]string{"-n", "0"}, "Automatic recovery", 3},
		{nil, "cache_miss", 3},
		{nil, "rotation complete", 3},
		{[]string{"-n", "0"}, "step=health", 3},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " ")+"|"+tc.grep, func(t *testing.T) {
			cfg, _ := logsFixture(t)
			fixNow(t)
			r := run(t, nil, "", append([]string{"dso", "--config", cfg, "system", "logs"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			got := 0
			for _, l := range strings.Split(r.out, "\n") {
				if strings.Contains(l, tc.grep) {
					got++
				}
			}
			if got != tc.want {
				t.Errorf("%d lines contain %q, want %d:\n%s", got, tc.grep, tc.want, r.out)
			}
		})
	}
}

func TestSystemLogsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad priority", []string{"-p", "loud"}, `-p: priority "loud" is not one of err, warning, info, debug`},
		{"bad since", []string{"--since", "yesterday"}, `--since "yesterday" is not a duration (1h, 30m, 7d)`},
		{"no log yet", nil, "no agent log at "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			t.Setenv("DSO_RUN_DIR", filepath.Join(dir, "run"))
			logFile := filepath.Join(dir, "never", "agent.log")
			cfg := writeLogsConfig(t, dir, logFile)
			r := run(t, nil, "", append([]string{"dso", "--config", cfg, "system", "logs"}, tc.args...)...)
			if r.code != 1 || !strings.Contains(r.err, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %q", r.code, r.err, tc.want)
			}
			if tc.name == "no log yet" && !strings.Contains(r.err, logFile+": has the agent run? (docker dso system status)") {
				t.Errorf("the error %q does not name the log file and the next step", r.err)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		in      string
		now     time.Time
		want    time.Time
		wantErr bool
	}{
		{"1h", now, now.Add(-time.Hour), false},
		{"30m", now, now.Add(-30 * time.Minute), false},
		{"7d", now, now.Add(-7 * 24 * time.Hour), false},
		{"1d12h", now, now.Add(-36 * time.Hour), false},
		{"2026-01-31T10:00:00Z", now, time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC), false},
		{"2026-01-31T10:00:00+02:00", now, time.Date(2026, 1, 31, 8, 0, 0, 0, time.UTC), false},
		// The operator's wall clock: read in the local zone.
		{"2026-01-31 14:00", now.In(berlin), time.Date(2026, 1, 31, 13, 0, 0, 0, time.UTC), false},
		{"2026-01-31 14:00:30", now.In(berlin), time.Date(2026, 1, 31, 13, 0, 30, 0, time.UTC), false},
		{"2026-01-31", now, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), false},
		{"-1h", now, time.Time{}, true},
		{"soon", now, time.Time{}, true},
		{"", now, time.Time{}, true},
		{"2026-13-01 10:00", now, time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSince(tc.in, tc.now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseSince(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && !got.Equal(tc.want) {
				t.Errorf("parseSince(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the follower goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func logLine(ts, level, msg string) string {
	return fmt.Sprintf(`{"level":%q,"ts":"2026-01-31T%sZ","msg":%q}`+"\n", level, ts, msg)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("-f did not print %q within 5s; output so far:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSystemLogsFollow(t *testing.T) {
	old := followPoll
	followPoll = 10 * time.Millisecond
	t.Cleanup(func() { followPoll = old })

	dir := t.TempDir()
	path := filepath.Join(dir, "agent.log")
	appendFile(t, path, logLine("10:00:00", "info", "first")+logLine("10:00:01", "debug", "second"))

	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fileLogs(ctx, Streams{Out: &out, Err: &out}, path, logsOptions{n: 1, follow: true, min: "info"})
	}()
	// The initial tail honours -n 1 and -p info.
	waitFor(t, &out, "INFO  first")

	appendFile(t, path, logLine("10:00:02", "error", "appended"))
	waitFor(t, &out, "ERROR appended")

	// A line written in two pieces is printed once, whole.
	appendFile(t, path, `{"level":"warn","ts":"2026-01-31T10:00:03Z",`)
	time.Sleep(50 * time.Millisecond)
	appendFile(t, path, `"msg":"split line"}`+"\n")
	waitFor(t, &out, "WARN  split line")

	// Rotation by rename, as logging.RotatingFile does: a last line lands in
	// the old file after the follower's last read, then the new file starts.
	appendFile(t, path, logLine("10:00:04", "info", "last before rotation"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, logLine("10:00:05", "info", "after rotation"))
	waitFor(t, &out, "INFO  after rotation")

	// Truncation in place (copytruncate-style rotation) is seen when the
	// file is shorter than what was read: the lines before it make it so.
	appendFile(t, path, logLine("10:00:05", "info", "padding one")+logLine("10:00:05", "info", "padding two"))
	waitFor(t, &out, "INFO  padding two")
	if err := os.WriteFile(path, []byte(logLine("10:00:06", "info", "after truncate")), 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "INFO  after truncate")
	appendFile(t, path, logLine("10:00:07", "debug", "filtered by -p"))
	appendFile(t, path, logLine("10:00:08", "info", "end"))
	waitFor(t, &out, "INFO  end")

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow returned %v after Ctrl-C, want nil", err)
	}
	want := []string{"first", "appended", "split line", "last before rotation", "after rotation", "padding one", "padding two", "after truncate", "end"}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.SplitN(l, " ", 3)
		got = append(got, strings.TrimSpace(f[2]))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("followed lines\n got %q\nwant %q", got, want)
	}
}

func TestJournalMessage(t *testing.T) {
	tests := []struct {
		name, line, want string
		ok               bool
	}{
		{"string", `{"MESSAGE":"{\"level\":\"info\",\"msg\":\"agent ready\"}","_PID":"1"}`, `{"level":"info","msg":"agent ready"}`, true},
		{"byte array", `{"MESSAGE":[123,125]}`, `{}`, true},
		{"byte out of range", `{"MESSAGE":[300]}`, "", false},
		{"no message", `{"_PID":"1"}`, "", false},
		{"not json", `nope`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := journalMessage([]byte(tc.line))
			if ok != tc.ok || string(got) != tc.want {
				t.Errorf("journalMessage = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Without a running agent, status says so and exits 3 (like systemctl).
func TestSystemStatusStopped(t *testing.T) {
	cfg, logFile := logsFixture(t)
	var code int
	old := exitProcess
	exitProcess = func(c int) { code = c }
	t.Cleanup(func() { exitProcess = old })

	r := run(t, nil, "", "dso", "--config", cfg, "system", "status")
	if code != exitStopped {
		t.Errorf("status exited %d, want %d", code, exitStopped)
	}
	for _, want := range []string{
		"dso agent: stopped\n",
		"  Enabled:   no (supervised directly: systemd is not PID 1)\n",
		"  Config:    " + cfg + "\n",
		"  Log:       " + logFile + "\n",
		"Last log lines:\n",
		"Automatic recovery: restored original: web-1",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.out)
		}
	}
	if n := strings.Count(r.out, "\n  2026-"); n != statusLogLines {
		t.Errorf("status shows %d log lines, want %d:\n%s", n, statusLogLines, r.out)
	}
}

func TestSystemHelpGolden(t *testing.T) {
	isolate(t)
	plugin := map[string]string{originalCLICommandEnv: "docker"}
	tests := []struct {
		golden string
		env    map[string]string
		argv   []string
	}{
		{"help-system", nil, []string{"dso", "system", "--help"}},
		{"help-logs", nil, []string{"dso", "system", "logs", "--help"}},
		{"help-logs-plugin", plugin, []string{"docker-dso", "dso", "system", "logs", "--help"}},
		{"help-enable", nil, []string{"dso", "system", "enable", "--help"}},
		{"help-disable", nil, []string{"dso", "system", "disable", "--help"}},
		{"help-restart", nil, []string{"dso", "system", "restart", "--help"}},
		{"help-status", nil, []string{"dso", "system", "status", "--help"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			r := run(t, tc.env, "", tc.argv...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, "system/"+tc.golden, r.out)
		})
	}
}
