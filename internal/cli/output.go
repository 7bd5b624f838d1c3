package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// table writes aligned columns like kubectl and docker do: two spaces
// between columns, no trailing padding. Rows are collected first so that a
// write error is reported once, by flush.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	// tabwriter buffers until Flush; a write error surfaces there.
	_, _ = io.WriteString(t.tw, strings.Join(cells, "\t")+"\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// age formats a duration like kubectl's AGE column: the largest unit only,
// 5s, 3m, 2h, 4d, and years past 365 days. The zero time is "<unknown>".
func age(since time.Time) string {
	if since.IsZero() {
		return "<unknown>"
	}
	return shortDuration(now().Sub(since))
}

// shortDuration is the unit-truncated form used by age.
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d < 365*24*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	default:
		return strconv.Itoa(int(d/(365*24*time.Hour))) + "y"
	}
}

// ago is age with " ago", or "never" for the zero time.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return age(t) + " ago"
}

// percent formats a 0..100 value with one decimal: "12.5%", "100.0%". The
// guide's alert greps the Cache line's last field for "99|100", so the
// number must be printed in full, never rounded to "1e+02" or "99.99999".
func percent(p float64) string {
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

// millis formats a latency given in milliseconds.
func millis(ms float64) string {
	if ms >= 100 {
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
}

// seconds formats a wall duration for people: "1.2s", "350ms", "2m3s".
func seconds(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return strconv.Itoa(int(d/time.Millisecond)) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// bytesIEC formats a byte count in binary units: "512B", "1.5KiB", "500.0MiB".
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// shortHash is the first 12 characters of a hash, like docker's short ids.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "-"
	}
	return h
}

// orDash shows an empty cell as "-" so that columns stay countable for awk.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeJSON prints v as indented JSON, the -o json / --json form.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeYAML prints v as YAML through its JSON form, so field names are the
// same in both (sigs.k8s.io/yaml).
func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding YAML: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// checkOutputFormat rejects an -o value the command does not know.
func checkOutputFormat(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	var named []string
	for _, a := range allowed {
		if a != "" { // "" is the default table, not something to type
			named = append(named, a)
		}
	}
	if len(named) == 1 {
		return fmt.Errorf("unknown output format %q: use %s", got, named[0])
	}
	return fmt.Errorf("unknown output format %q: use %s or %s", got, strings.Join(named[:len(named)-1], ", "), named[len(named)-1])
}

// countOf formats a count with an irregular plural: countOf(2, "entry", "entries").
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
