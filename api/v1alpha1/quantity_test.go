package v1alpha1

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"15s", 15 * time.Second, "15s"},
		{"5m", 5 * time.Minute, "5m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"4h", 4 * time.Hour, "4h"},
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"1d12h", 36 * time.Hour, "36h"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"1h0m5s", time.Hour + 5*time.Second, "1h0m5s"},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got.D() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got.D(), err, tc.want)
			continue
		}
		if s := got.String(); s != tc.str {
			t.Errorf("String(%q) = %q, want %q", tc.in, s, tc.str)
		}
		if back, err := ParseDuration(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q failed: %v %v", tc.in, back, err)
		}
	}
	for _, bad := range []string{"", "5", "d", "xd", "-1d", "1d-5h", "5 parsecs"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"500Mi", 500 << 20}, {"1Gi", 1 << 30}, {"2G", 2e9}, {"500MB", 500e6}, {"1024", 1024}, {"64Ki", 64 << 10}, {"10B", 10},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || int64(got) != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Mi", "1.5.5Gi", "lots", "99999999999Ti"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	if s := Size(500 << 20).String(); s != "500Mi" {
		t.Errorf("String = %q", s)
	}
}
