package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/logging"
	"github.com/dso-dev/dso/internal/supervisor"
)

// followPoll is how often -f looks for new lines. A variable so that tests
// run with a short interval.
var followPoll = 250 * time.Millisecond

// logsNow is the clock --since durations count back from (tests fix it).
var logsNow = time.Now

// logsOptions are the parsed flags of `system logs`.
type logsOptions struct {
	// n is how many entries to show; <= 0 shows all.
	n      int
	follow bool
	// min is the canonical least severe level shown ("" = all).
	min string
	// since hides older entries (zero = no bound).
	since time.Time
}

func newSystemLogsCommand(s Streams) *cobra.Command {
	var (
		n        int
		follow   bool
		priority string
		since    string
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the agent's log, one line per entry",
		Long: `Show the agent's log, one line per entry: time (UTC), level, message, then the
fields (trace_id, container, binding and step first).

The log is read from logging.file of the agent's config, all rotated files
oldest first. When the agent runs as the dso-agent systemd unit it writes
the same lines to the journal too, and they are read from there when the
file is missing (journalctl -u dso-agent shows them as well). The agent's
config is the one --config or $DSO_CONFIG names, else the one 'system
enable' was run with (with systemd: the one the unit runs), else the usual
search.`,
		Example: `  dso system logs -n 30
  dso system logs -f -p err
  dso system logs --since 1h | grep "rotation failed" | wc -l
  dso system logs --since "2026-01-31 14:00"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := logsOptions{n: n, follow: follow}
			if priority != "" {
				m, err := logging.ParseMinLevel(priority)
				if err != nil {
					return fmt.Errorf("-p: %w", err)
				}
				o.min = m
			}
			if since != "" {
				t, err := parseSince(since, logsNow())
				if err != nil {
					return err
				}
				o.since = t
				// --since without -n means everything since then.
				if !cmd.Flags().Changed("lines") {
					o.n = 0
				}
			}
			// Piped into grep/wc (the operations guide's alerts), the whole
			// log is searched: a 20-entry window would silently hide what
			// the pipeline looks for. On a terminal the default stays 20.
			if !cmd.Flags().Changed("lines") && !follow && !logsToTerminal(s.Out) {
				o.n = 0
			}
			file, loadErr := logsFile(cmd)
			if loadErr != nil {
				note(s.Err, "Warning: the agent's config does not load (%v); reading %s\n", loadErr, file)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if useJournal(ctx, file) {
				return journalLogs(ctx, s, o)
			}
			return fileLogs(ctx, s, file, o)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&n, "lines", "n", 20, "number of entries to show (0 for all; when stdout is not a terminal and -n is not given, all)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new entries until Ctrl-C")
	f.StringVarP(&priority, "priority", "p", "", "show this level and more severe: err, warning, info, debug")
	f.StringVar(&since, "since", "", `show entries since a time: 1h, 30m, 7d ago, RFC 3339, or "2006-01-02 15:04" (local time)`)
	return cmd
}

// sinceLayouts are the absolute forms --since accepts besides RFC 3339;
// they are read in local time, as an operator types them.
var sinceLayouts = []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02"}

// parseSince reads --since relative to now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := v1alpha1.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q is negative: give how long ago, e.g. 1h", s)
		}
		return now.Add(-time.Duration(d)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range sinceLayouts {
		if t, err := time.ParseInLocation(l, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf(`--since %q is not a duration (1h, 30m, 7d), an RFC 3339 time (2026-01-31T14:00:00Z) or a local time ("2006-01-02 15:04")`, s)
}

// logPrinter filters entries, keeps the last n of the initial read and
// prints them.
type logPrinter struct {
	w       io.Writer
	o       logsOptions
	last    []string // the tail of the initial read
	live    bool     // after the initial read: print at once
	skipped int      // lines that were not JSON entries
}

// line takes one raw log line.
func (p *logPrinter) line(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	e, ok := parseLogLine(b)
	if !ok {
		p.skipped++
		return nil
	}
	return p.entry(e)
}

func (p *logPrinter) entry(e logging.Entry) error {
	if p.o.min != "" && !logging.LevelAtLeast(e.Level, p.o.min) {
		return nil
	}
	if !p.o.since.IsZero() && (e.Time.IsZero() || e.Time.Before(p.o.since)) {
		return nil
	}
	h := e.Human()
	if p.live {
		_, err := fmt.Fprintln(p.w, h)
		return err
	}
	p.last = append(p.last, h)
	if p.o.n > 0 && len(p.last) > p.o.n {
		// Drop the oldest; copy now and then instead of on every line so
		// that a long log costs O(lines), not O(lines * n).
		if len(p.last) >= 2*p.o.n {
			p.last = append(p.last[:0], p.last[len(p.last)-p.o.n:]...)
		}
	}
	return nil
}

// flush prints the kept tail; later entries are printed as they come.
func (p *logPrinter) flush() error {
	lines := p.last
	if p.o.n > 0 && len(lines) > p.o.n {
		lines = lines[len(lines)-p.o.n:]
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(p.w, l); err != nil {
			return err
		}
	}
	p.last, p.live = nil, true
	return nil
}

func parseLogLine(b []byte) (logging.Entry, bool) {
	for e, err := range logging.ReadEntries(bytes.NewReader(b)) {
		return e, err == nil
	}
	return logging.Entry{}, false
}

// fileLogs prints the log file and its rotated predecessors, then follows
// the active file with -f.
func fileLogs(ctx context.Context, s Streams, file string, o logsOptions) error {
	files := logging.Files(file, logging.DefaultMaxFiles)
	if len(files) == 0 || files[len(files)-1] != file {
		return fmt.Errorf("no agent log at %s: has the agent run? (docker dso system status)", file)
	}
	p := &logPrinter{w: s.Out, o: o}
	for _, f := range files[:len(files)-1] {
		if err := readWholeFile(f, p); err != nil {
			return err
		}
	}
	fl, err := openFollower(file)
	if err != nil {
		return err
	}
	defer fl.close()
	if err := fl.drain(p.line); err != nil {
		return err
	}
	if !o.follow {
		// A line being written right now has no newline yet; show it.
		if err := fl.flushPending(p.line); err != nil {
			return err
		}
	}
	if err := p.flush(); err != nil {
		return err
	}
	defer func() {
		if p.skipped > 0 {
			note(s.Err, "(%d lines of %s were not JSON log entries and were skipped)\n", p.skipped, file)
		}
	}()
	if !o.follow {
		return nil
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := fl.poll(p.line); err != nil {
			return err
		}
	}
}

func readWholeFile(path string, p *logPrinter) error {
	f, err := os.Open(path) //nolint:gosec // the agent's configured log file
	if err != nil {
		return fmt.Errorf("reading the agent log: %w", err)
	}
	defer func() { _ = f.Close() }()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			if perr := p.line(b); perr != nil {
				return perr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
}

// follower reads a growing log file and notices rotation: the path then
// names a new inode (renamed away) or a shorter file (truncated).
type follower struct {
	path    string
	f       *os.File
	ino     uint64
	off     int64
	pending []byte // a line without its newline yet
	buf     []byte
}

func openFollower(path string) (*follower, error) {
	fl := &follower{path: path, buf: make([]byte, 64<<10)}
	if err := fl.open(); err != nil {
		return nil, err
	}
	return fl, nil
}

func (fl *follower) open() error {
	f, err := os.Open(fl.path)
	if err != nil {
		return fmt.Errorf("reading the agent log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("reading the agent log: %w", err)
	}
	fl.f, fl.ino, fl.off, fl.pending = f, inode(st), 0, nil
	return nil
}

func (fl *follower) close() {
	if fl.f != nil {
		_ = fl.f.Close()
	}
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

// drain reads what the open file has past the offset and hands over every
// complete line.
func (fl *follower) drain(line func([]byte) error) error {
	for {
		n, err := fl.f.Read(fl.buf)
		if n > 0 {
			fl.off += int64(n)
			fl.pending = append(fl.pending, fl.buf[:n]...)
			for {
				i := bytes.IndexByte(fl.pending, '\n')
				if i < 0 {
					break
				}
				if lerr := line(fl.pending[:i]); lerr != nil {
					return lerr
				}
				fl.pending = fl.pending[i+1:]
			}
		}
		if errors.Is(err, io.EOF) || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", fl.path, err)
		}
	}
}

func (fl *follower) flushPending(line func([]byte) error) error {
	if len(fl.pending) == 0 {
		return nil
	}
	b := fl.pending
	fl.pending = nil
	return line(b)
}

// poll hands over new lines and, after a rotation, switches to the new
// file: first the rest of the old one (still open), then the new one from
// its start.
func (fl *follower) poll(line func([]byte) error) error {
	if err := fl.drain(line); err != nil {
		return err
	}
	st, err := os.Stat(fl.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // between the rename and the new file's creation
	}
	if err != nil {
		return fmt.Errorf("watching %s: %w", fl.path, err)
	}
	switch {
	case inode(st) != fl.ino:
		if err := fl.flushPending(line); err != nil {
			return err
		}
		fl.close()
		if err := fl.open(); err != nil {
			return err
		}
	case st.Size() < fl.off:
		fl.pending = nil
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rereading truncated %s: %w", fl.path, err)
		}
		fl.off = 0
	default:
		return nil
	}
	return fl.drain(line)
}

// logsFile is logging.file of the agent's config; with systemd, of the
// config the dso-agent unit runs (see systemdAgentConfig).
func logsFile(cmd *cobra.Command) (file string, loadErr error) {
	if !supervisor.SystemdRunning() {
		return agentLogFile(cmd)
	}
	path, _, err := systemdAgentConfig(cmd)
	if err != nil {
		return v1alpha1.DefaultLogFile, err
	}
	t, err := loadTarget(path)
	if err != nil {
		return v1alpha1.DefaultLogFile, err
	}
	if t.LogFile == "" {
		return v1alpha1.DefaultLogFile, nil
	}
	return t.LogFile, nil
}

// useJournal reports whether to read journald instead of the log file: the
// agent is the dso-agent unit (installed, running or not) and the file is
// missing. The unit's agent writes every line to both (the unit does not
// pass --quiet), and the file, rotated and kept across journal vacuuming,
// is preferred whenever it exists.
func useJournal(_ context.Context, file string) bool {
	if !supervisor.SystemdRunning() {
		return false
	}
	if _, err := os.Stat(file); err == nil {
		return false
	}
	return supervisor.Systemd{}.Installed()
}

// journalLogs reads `journalctl -u dso-agent -o json`, whose MESSAGE field
// holds our JSON line; systemd's own lines about the unit are not JSON
// entries and are skipped. test/systemd runs this path against a real
// journald (make test-systemd).
func journalLogs(ctx context.Context, s Streams, o logsOptions) error {
	args := []string{"-u", supervisor.UnitName, "-o", "json", "--no-pager"}
	if !o.since.IsZero() {
		args = append(args, "--since", "@"+strconv.FormatInt(o.since.Unix(), 10))
	}
	if o.follow {
		// The tail is taken before -p filtering here, unlike the file path.
		n := o.n
		if n <= 0 {
			n = 1000
		}
		args = append(args, "-f", "-n", strconv.Itoa(n))
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	cmd.Stderr = s.Err
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running journalctl: %w", err)
	}
	p := &logPrinter{w: s.Out, o: o, live: o.follow}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if msg, ok := journalMessage(sc.Bytes()); ok {
			if err := p.line(msg); err != nil {
				_ = cmd.Process.Kill()
				return err
			}
		}
	}
	werr := cmd.Wait()
	if err := p.flush(); err != nil {
		return err
	}
	if werr != nil && ctx.Err() == nil {
		return fmt.Errorf("journalctl failed: %w", werr)
	}
	return nil
}

// journalMessage returns the MESSAGE of one `journalctl -o json` line.
// journald writes it as a string, or as an array of byte values when it is
// not valid UTF-8.
func journalMessage(line []byte) ([]byte, bool) {
	var rec struct {
		Message json.RawMessage `json:"MESSAGE"`
	}
	if err := json.Unmarshal(line, &rec); err != nil || len(rec.Message) == 0 {
		return nil, false
	}
	var s string
	if err := json.Unmarshal(rec.Message, &s); err == nil {
		return []byte(s), true
	}
	var bs []byte
	var nums []int
	if err := json.Unmarshal(rec.Message, &nums); err == nil {
		for _, n := range nums {
			if n < 0 || n > 255 {
				return nil, false
			}
			bs = append(bs, byte(n))
		}
		return bs, true
	}
	return nil, false
}

// tailLog returns the last n entries of a log file as human lines (for
// status and for startup failures); nothing when it cannot be read.
func tailLog(file string, n int) []string {
	p := &logPrinter{w: io.Discard, o: logsOptions{n: n}}
	files := logging.Files(file, logging.DefaultMaxFiles)
	// The last n entries are nearly always in the active file; read the
	// previous one too in case the active file was just rotated.
	if len(files) > 2 {
		files = files[len(files)-2:]
	}
	for _, f := range files {
		if err := readWholeFile(f, p); err != nil {
			return nil
		}
	}
	if len(p.last) > n {
		return p.last[len(p.last)-n:]
	}
	return p.last
}

// logsToTerminal reports whether w is a terminal (a variable for tests).
var logsToTerminal = func(w io.Writer) bool { return isTerminal(w) }
