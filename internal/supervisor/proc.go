package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procRoot is /proc; tests never change it, but keeping the path in one
// place makes the /proc dependency obvious.
const procRoot = "/proc"

// clockTicks is USER_HZ, the unit of /proc/PID/stat's start time. Linux
// fixes it at 100 for user space on every architecture Go supports, which
// is why reading sysconf(_SC_CLK_TCK) (cgo) is not worth it here.
const clockTicks = 100

// Process is what /proc says about one pid.
type Process struct {
	PID int
	// Args is the command line (argv), empty for a zombie or a kernel thread.
	Args []string
	// State is the one-letter state of /proc/PID/stat (R, S, D, Z, ...).
	State string
	// Started is when the process started (from its start time in ticks
	// after boot and the boot time in /proc/stat).
	Started time.Time
}

// Alive reports whether the process exists and is not a zombie. A zombie
// has exited; it only waits for its parent to collect its status, so for
// "is the agent running" it counts as stopped.
func (p Process) Alive() bool { return p.PID > 0 && p.State != "" && p.State != "Z" && p.State != "X" }

// IsDSOAgent reports whether the command line is `<dso binary> agent ...`
// (or `docker-dso dso agent ...`, the plugin form): the check that keeps
// disable from signalling an unrelated process that reused a stale pid.
func (p Process) IsDSOAgent() bool { return IsDSOAgentArgs(p.Args) }

// IsDSOAgentArgs is the command-line half of IsDSOAgent.
func IsDSOAgentArgs(args []string) bool {
	if len(args) < 2 {
		return false
	}
	base := filepath.Base(args[0])
	if base != "dso" && base != "docker-dso" && !strings.HasPrefix(base, "dso-") && !strings.HasPrefix(base, "docker-dso") {
		return false
	}
	rest := args[1:]
	if rest[0] == "dso" { // docker's plugin calling convention
		rest = rest[1:]
	}
	return len(rest) > 0 && rest[0] == "agent"
}

// ErrNoProcess is returned by ReadProcess for a pid that does not exist.
var ErrNoProcess = errors.New("no such process")

// ReadProcess reads /proc/PID/cmdline and /proc/PID/stat.
func ReadProcess(pid int) (Process, error) {
	if pid <= 0 {
		return Process{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if errors.Is(err, os.ErrNotExist) {
		return Process{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return Process{}, fmt.Errorf("reading /proc/%d/stat: %w", pid, err)
	}
	state, ticks, err := parseStat(stat)
	if err != nil {
		return Process{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	p := Process{PID: pid, State: state}
	if boot, err := bootTime(); err == nil {
		// Ticks since boot fit int64 for 2.9 billion years of uptime.
		p.Started = boot.Add(time.Duration(ticks) * time.Second / clockTicks) //nolint:gosec // G115: see above
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Process{}, fmt.Errorf("reading /proc/%d/cmdline: %w", pid, err)
	}
	p.Args = splitCmdline(cmdline)
	return p, nil
}

func splitCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// parseStat returns the state and the start time (field 22, in clock ticks
// after boot) of a /proc/PID/stat line. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (state string, startTicks uint64, err error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, errors.New("no command name in parentheses")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return "", 0, fmt.Errorf("only %d fields after the command name, want at least 20", len(f))
	}
	startTicks, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("start time %q is not a number", f[19])
	}
	return f[0], startTicks, nil
}

// bootTime reads btime (seconds since the epoch) from /proc/stat.
func bootTime() (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("btime %q in /proc/stat is not a number", v)
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, errors.New("no btime line in /proc/stat")
}
