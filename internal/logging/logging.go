// Package logging builds the one logger of the dso agent and reads its output
// back.
//
// The agent logs JSON lines (zap's encoder behind the logr interface, via
// zapr) because the operations guide greps them (`rotation failed`,
// `cache_miss`, `Automatic recovery`) and `docker dso system logs` parses them
// into one human line per entry. Both halves live here so that the key names
// written by New and read by ReadEntries cannot drift apart.
//
// Secret values are never passed to the logger: callers log names (store,
// key, binding, container), hashes and durations only. There is therefore no
// redaction layer; a redactor would suggest that logging a value is fine.
package logging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Keys of every JSON log line. The reader (ReadEntries) and the writer (New)
// share them.
const (
	KeyTime   = "ts"
	KeyLevel  = "level"
	KeyMsg    = "msg"
	KeyLogger = "logger"
	KeyCaller = "caller"
	KeyError  = "error"
)

// Levels, as written in the level field.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Defaults for the log file rotation: the active file plus four older ones,
// 50 MiB each, so the log never takes more than 250 MiB of /var/log.
const (
	DefaultMaxFileBytes = 50 << 20
	DefaultMaxFiles     = 5
)

// Options configures New.
type Options struct {
	// Level is the least severe level written: debug, info (default), warn
	// or error. logr's V(1) is debug; V(2) and above are never written.
	Level string
	// Format is json (default) or console (zap's tab-separated human form,
	// for running the agent in a terminal).
	Format string
	// File is the log file; "" means stderr only.
	File string
	// Stderr writes to stderr as well as to File.
	Stderr bool
	// MaxFileBytes is the size at which File is rotated; 0 means 50 MiB.
	MaxFileBytes int64
	// MaxFiles is how many files are kept, the active one included; 0 means 5.
	MaxFiles int
}

// zapLevel maps a level name onto zap's. logr V(n) is zap level -n, so debug
// (-1) admits exactly V(1).
func zapLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error", "err":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error: fix logging.level", s)
}

// encodeLevel writes debug/info/warn/error. Anything below debug (a V(2)+
// call, should one ever be enabled) is still written as debug, so that the
// level field only ever holds words the reader knows.
func encodeLevel(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	if l < zapcore.DebugLevel {
		l = zapcore.DebugLevel
	}
	enc.AppendString(l.String())
}

// encodeTime writes RFC 3339 with nanoseconds in UTC. zap's own
// RFC3339NanoTimeEncoder keeps the local zone, which makes lines from hosts
// in different zones sort wrongly.
func encodeTime(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(t.UTC().Format(time.RFC3339Nano))
}

func encoderConfig() zapcore.EncoderConfig {
	return zapcore.EncoderConfig{
		TimeKey:        KeyTime,
		LevelKey:       KeyLevel,
		NameKey:        KeyLogger,
		CallerKey:      KeyCaller,
		MessageKey:     KeyMsg,
		FunctionKey:    zapcore.OmitKey,
		StacktraceKey:  zapcore.OmitKey, // stack traces are noise for operators; errors carry context
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    encodeLevel,
		EncodeTime:     encodeTime,
		EncodeDuration: zapcore.StringDurationEncoder, // "1.2s", as people read it
		EncodeCaller:   zapcore.ShortCallerEncoder,
		EncodeName:     zapcore.FullNameEncoder,
	}
}

// New returns the agent's logger and a function that flushes and closes its
// outputs (call it once, at exit).
func New(opts Options) (logr.Logger, func() error, error) {
	lvl, err := zapLevel(opts.Level)
	if err != nil {
		return logr.Discard(), nil, err
	}
	var enc zapcore.Encoder
	switch strings.ToLower(opts.Format) {
	case "", "json":
		enc = zapcore.NewJSONEncoder(encoderConfig())
	case "console":
		cfg := encoderConfig()
		cfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return logr.Discard(), nil, fmt.Errorf("log format %q is not json or console: fix logging.format", opts.Format)
	}

	var sinks []zapcore.WriteSyncer
	var file *RotatingFile
	if opts.File != "" {
		file, err = OpenRotatingFile(opts.File, opts.MaxFileBytes, opts.MaxFiles)
		if err != nil {
			return logr.Discard(), nil, err
		}
		sinks = append(sinks, file)
	}
	if opts.File == "" || opts.Stderr {
		// Lock: zap serialises writes per core, but stderr may be shared with
		// other writers of this process.
		sinks = append(sinks, zapcore.Lock(stderrSyncer{}))
	}
	core := zapcore.NewCore(enc, zapcore.NewMultiWriteSyncer(sinks...), zap.NewAtomicLevelAt(lvl))
	zl := zap.New(core, zap.AddCaller(), zap.ErrorOutput(zapcore.Lock(stderrSyncer{})))
	closeFn := func() error {
		errs := []error{zl.Sync()}
		if file != nil {
			errs = append(errs, file.Close())
		}
		return errors.Join(errs...)
	}
	return zapr.NewLoggerWithOptions(zl, zapr.ErrorKey(KeyError)), closeFn, nil
}

// stderrSyncer writes to os.Stderr and ignores Sync: fsync of a terminal or
// pipe fails with EINVAL, which is not an error worth reporting at exit.
type stderrSyncer struct{}

func (stderrSyncer) Write(p []byte) (int, error) { return os.Stderr.Write(p) }
func (stderrSyncer) Sync() error                 { return nil }

// Files returns the log files that belong to path, oldest first, the active
// file last: what `system logs` reads to show more lines than the active
// file holds. Missing files are left out.
func Files(path string, maxFiles int) []string {
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	var out []string
	for i := maxFiles - 1; i >= 0; i-- {
		p := rotatedName(path, i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func rotatedName(path string, i int) string {
	if i == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// ensureDir creates the log directory 0750 (group-readable for the dso group
// that runs `system logs`, never world-readable).
func ensureDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create log directory %s: %w (fix logging.file or the directory's permissions)", dir, err)
	}
	return nil
}
