package vault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// The tests in this package run against a real Vault 1.14.1 dev server
// built from source by hack/vaultdev (`make vaultdev`). TestMain starts it
// once on a free loopback port and stops it (by PID) at the end.

// dev is the running dev server, nil when it could not be started.
var dev *devServer

// devSkip says why dev is nil.
var devSkip string

type devServer struct {
	Address string `json:"address"`
	Token   string `json:"token"`
	cmd     *exec.Cmd
	stderr  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func strict() bool { return os.Getenv("DSO_STRICT") == "1" }

func TestMain(m *testing.M) {
	bin := os.Getenv("DSO_VAULTDEV_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "vaultdev")
	}
	var err error
	dev, err = startDev(bin)
	if err != nil {
		devSkip = fmt.Sprintf("real Vault dev server unavailable (%v): run `make vaultdev` or set DSO_VAULTDEV_BIN", err)
		if strict() {
			fmt.Fprintln(os.Stderr, "DSO_STRICT=1:", devSkip)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "note:", devSkip)
	}
	code := m.Run()
	if dev != nil {
		dev.stop()
	}
	os.Exit(code)
}

func startDev(bin string) (*devServer, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no binary at %s", bin)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errBuf := &lockedBuffer{}
	cmd.Stderr = errBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	d := &devServer{cmd: cmd, stderr: errBuf}
	select {
	case line, ok := <-lines:
		if !ok {
			_ = cmd.Wait()
			return nil, fmt.Errorf("%s exited before it was ready: %s", bin, errBuf.String())
		}
		if err := json.Unmarshal([]byte(line), d); err != nil || d.Address == "" || d.Token == "" {
			d.stop()
			return nil, fmt.Errorf("%s printed no {address, token} line", bin)
		}
	case <-time.After(60 * time.Second):
		d.stop()
		return nil, fmt.Errorf("%s was not ready within 60s", bin)
	}
	return d, nil
}

func (d *devServer) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

// needDev skips (or, with DSO_STRICT=1, fails) a test that needs the server.
func needDev(t testing.TB) {
	t.Helper()
	if dev == nil {
		if strict() {
			t.Fatal(devSkip)
		}
		t.Skip(devSkip)
	}
}

// root returns an SDK client with the root token, for test setup only.
func root(t testing.TB) *vaultapi.Client {
	t.Helper()
	needDev(t)
	cfg := vaultapi.DefaultConfig()
	cfg.Address = dev.Address
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(dev.Token)
	return c
}

func putV2(t testing.TB, key string, data map[string]any) int {
	t.Helper()
	s, err := root(t).KVv2("secret").Put(context.Background(), key, data)
	if err != nil {
		t.Fatalf("writing secret/%s: %v", key, err)
	}
	return s.VersionMetadata.Version
}

func putV1(t testing.TB, key string, data map[string]any) {
	t.Helper()
	if err := root(t).KVv1("kv1").Put(context.Background(), key, data); err != nil {
		t.Fatalf("writing kv1/%s: %v", key, err)
	}
}
