// Command cli times whole `dso secret get` and `dso secret set` processes
// on a 1,000-key local store, the figure the providers issue states its
// 5 ms target for, next to `dso version` (process start alone) measured in
// the same run. Unlike the go test benchmarks under providers/local it
// includes exec, Go runtime start, flag parsing and config resolution.
//
//	go build -o bin/dso ./cmd/docker-dso && go run ./hack/bench/cli -bin bin/dso -n 50
//
// It runs with HOME set to a temporary directory and DSO_CONFIG unset, so
// the commands act on ~/.dso/vault.enc there and never on the machine's
// configuration (it refuses to run if /etc/dso/dso.yaml exists, which the
// CLI would pick up first).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/dso-dev/dso/providers/local"
)

func main() {
	bin := flag.String("bin", "bin/dso", "the dso binary to time")
	n := flag.Int("n", 50, "runs per command")
	flag.Parse()
	if err := run(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cli:", err)
		os.Exit(1)
	}
}

func run(bin string, n int) error {
	if _, err := os.Stat("/etc/dso/dso.yaml"); err == nil {
		return fmt.Errorf("/etc/dso/dso.yaml exists and would be used by the CLI; run this on a machine without it")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	home, err := os.MkdirTemp("", "dso-bench-cli-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(home) }()
	path := filepath.Join(home, ".dso", "vault.enc")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	s, err := local.Init(path, local.DefaultKeyFile(path), false)
	if err != nil {
		return err
	}
	for i := range 1000 {
		if _, err := s.Set(fmt.Sprintf("app%02d/secret-%04d", i%50, i), fmt.Appendf(nil, "%064d", i)); err != nil {
			return err
		}
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cases := []struct {
		name  string
		args  []string
		stdin []byte
	}{
		{"dso version", []string{"version"}, nil},
		{"dso secret get", []string{"secret", "get", "app07/secret-0507"}, nil},
		{"dso secret set", []string{"secret", "set", "app07/secret-0507"}, []byte("0123456789abcdef0123456789abcdef")},
	}
	fmt.Printf("%d runs each, 1,000-key store, %s\n", n, bin)
	for _, c := range cases {
		times := make([]time.Duration, 0, n)
		for range n {
			cmd := exec.Command(bin, c.args...) //nolint:gosec // G204: the binary under test, named by the operator
			cmd.Env = env
			cmd.Stdin = bytes.NewReader(c.stdin)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("%s: %w: %s", c.name, err, out.String())
			}
			times = append(times, d)
		}
		slices.Sort(times)
		fmt.Printf("%-16s min %6.2f ms  median %6.2f ms  p90 %6.2f ms\n", c.name,
			ms(times[0]), ms(times[len(times)/2]), ms(times[len(times)*9/10]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
