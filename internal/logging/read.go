package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Entry is one parsed log line.
type Entry struct {
	Time  time.Time
	Level string
	Msg   string
	// Fields holds every other key of the line (logger, caller, error and
	// the logged key/values). Numbers are json.Number.
	Fields map[string]any
}

// maxLine bounds one log line for the reader. The writer never produces
// lines this long; a longer one is reported as an error, not a crash.
const maxLine = 1 << 20

// ReadEntries parses JSON log lines from r. A line that is not a JSON
// object (a stray panic trace, journald noise) yields an error naming its
// line number, and reading goes on; an I/O error ends the sequence. Blank
// lines are skipped.
func ReadEntries(r io.Reader) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			e, err := parseEntry(b)
			if err != nil {
				err = fmt.Errorf("log line %d: %w", line, err)
			}
			if !yield(e, err) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Entry{}, fmt.Errorf("reading log after line %d: %w", line, err))
		}
	}
}

func parseEntry(b []byte) (Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep 1234567890123 exact instead of 1.234567890123e+12
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return Entry{}, fmt.Errorf("not a JSON log entry: %w", err)
	}
	e := Entry{Fields: m}
	if s, ok := m[KeyTime].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Entry{}, fmt.Errorf("field %q is not an RFC 3339 time: %w", KeyTime, err)
		}
		e.Time = t
	}
	e.Level, _ = m[KeyLevel].(string)
	e.Msg, _ = m[KeyMsg].(string)
	delete(m, KeyTime)
	delete(m, KeyLevel)
	delete(m, KeyMsg)
	return e, nil
}

// keyFields come right after the message in Human, in this order: they are
// what an operator correlates by. The rest follows sorted by key.
var keyFields = []string{"trace_id", "container", "binding", "step"}

// Human renders e as one line:
//
//	2026-12-01T10:00:00Z INFO  rotation complete trace_id=ab12 container=api binding=api-db duration=1.2s
//
// The time is shown to the second in UTC; the caller field is left out (it
// helps developers, not operators; it stays in Fields and in the JSON).
func (e Entry) Human() string {
	var b strings.Builder
	if e.Time.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(e.Time.UTC().Format(time.RFC3339))
	}
	b.WriteByte(' ')
	fmt.Fprintf(&b, "%-5s", strings.ToUpper(e.Level))
	b.WriteByte(' ')
	b.WriteString(e.Msg)
	seen := map[string]bool{KeyCaller: true}
	for _, k := range keyFields {
		if v, ok := e.Fields[k]; ok {
			writeField(&b, k, v)
			seen[k] = true
		}
	}
	rest := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		writeField(&b, k, e.Fields[k])
	}
	return b.String()
}

func writeField(b *strings.Builder, k string, v any) {
	b.WriteByte(' ')
	b.WriteString(k)
	b.WriteByte('=')
	b.WriteString(formatValue(v))
}

// formatValue prints strings bare unless they need quoting to stay one
// token (spaces, quotes, '=', control characters), numbers as written, and
// objects/arrays as compact JSON.
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" || strings.ContainsAny(x, " \t\r\n\"=") || !strconv.CanBackquote(x) {
			return strconv.Quote(x)
		}
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	default:
		out, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(out)
	}
}

// levelRank orders levels by severity. Levels this package does not write
// (zap's dpanic/panic/fatal) rank above error; an unknown or missing level
// ranks as info so that `-p err` hides it but the default shows it.
func levelRank(l string) int {
	switch strings.ToLower(l) {
	case "debug":
		return 0
	case "info":
		return 1
	case "warn", "warning":
		return 2
	case "error", "err":
		return 3
	case "dpanic", "panic", "fatal":
		return 4
	}
	return 1
}

// ParseMinLevel checks a `system logs -p` value and returns the canonical
// level name: err/error -> error, warning/warn -> warn, info, debug.
func ParseMinLevel(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "err", "error":
		return LevelError, nil
	case "warning", "warn":
		return LevelWarn, nil
	case "info":
		return LevelInfo, nil
	case "debug":
		return LevelDebug, nil
	}
	return "", fmt.Errorf("priority %q is not one of err, warning, info, debug", s)
}

// LevelAtLeast reports whether an entry of entryLevel is as severe as min
// or more. min accepts err/error, warning/warn, info and debug; an unknown
// min admits everything (validate it with ParseMinLevel first).
func LevelAtLeast(entryLevel, min string) bool {
	m, err := ParseMinLevel(min)
	if err != nil {
		return true
	}
	return levelRank(entryLevel) >= levelRank(m)
}
