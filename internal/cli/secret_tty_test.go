package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openTestPTY returns the controller and terminal ends of a new
// pseudo-terminal, so the hidden prompt of `secret set` can be driven the way
// a person at a terminal would. It skips when the host offers no ptys
// (fails under DSO_STRICT=1, as CI must run it).
func openTestPTY(t *testing.T) (ctrl, term *os.File) {
	t.Helper()
	skip := func(why string, err error) {
		if os.Getenv("DSO_STRICT") == "1" {
			t.Fatalf("%s: %v (DSO_STRICT=1: a pty is required)", why, err)
		}
		t.Skipf("%s: %v; the terminal prompt is not tested on this host", why, err)
	}
	ctrl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skip("cannot open /dev/ptmx", err)
	}
	t.Cleanup(func() { ctrl.Close() })
	if err := unix.IoctlSetPointerInt(int(ctrl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		skip("cannot unlock the pty", err)
	}
	n, err := unix.IoctlGetInt(int(ctrl.Fd()), unix.TIOCGPTN)
	if err != nil {
		skip("cannot get the pty number", err)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skip("cannot open the pty terminal end", err)
	}
	t.Cleanup(func() { term.Close() })
	return ctrl, term
}

func TestSecretSetPromptsTwiceOnATerminal(t *testing.T) {
	tests := []struct {
		name    string
		typed   string
		wantErr string
		stored  string
	}{
		{"same value twice", "tty-s3cret\ntty-s3cret\n", "", "tty-s3cret"},
		{"values differ", "tty-s3cret\nother-value\n", "do not match", ""},
		{"empty line twice", "\n\n", "is empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, st := secretTestStore(t)
			ctrl, term := openTestPTY(t)
			// The tty buffers the typed lines until the prompt reads them.
			if _, err := ctrl.Write([]byte(tt.typed)); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Main([]string{"dso", "secret", "set", "app/tty"}, Streams{In: term, Out: &out, Err: &errb}, func(string) string { return "" })
			prompts := errb.String()
			if !strings.Contains(prompts, "Value for app/tty: ") || !strings.Contains(prompts, "Repeat the value: ") {
				t.Errorf("prompts on stderr = %q", prompts)
			}
			if strings.Contains(out.String()+prompts, "tty-s3cret") {
				t.Errorf("the typed value was printed: %q %q", out.String(), prompts)
			}
			e, err := st.Get("app/tty")
			if tt.wantErr != "" {
				if code != 1 || !strings.Contains(prompts, tt.wantErr) {
					t.Fatalf("exit %d, stderr %q; want an error containing %q", code, prompts, tt.wantErr)
				}
				if err == nil {
					t.Fatalf("a refused prompt stored %q", e.Value)
				}
				return
			}
			if code != 0 || err != nil || string(e.Value) != tt.stored {
				t.Fatalf("exit %d (stderr %q): stored %q, %v; want %q", code, prompts, e.Value, err, tt.stored)
			}
		})
	}
}
