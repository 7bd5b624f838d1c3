package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/internal/config"
)

func metaName(n string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: n} }

// agentDir is the private directory of one in-process agent test: a file
// store under store/ (SecretStore "files"), the API socket, the delivery
// tmpfs, the log, the state and the bindings folder.
type agentDir struct {
	dir, secrets string
}

// newAgentDir skips without root (the agent mounts a tmpfs for secret
// files) and makes the directory and its store folder.
func newAgentDir(t *testing.T) *agentDir {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the agent mounts a tmpfs for secret files: needs root")
	}
	d := &agentDir{dir: t.TempDir()}
	d.secrets = filepath.Join(d.dir, "store")
	if err := os.MkdirAll(d.secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeSecret sets key in the file store.
func (d *agentDir) writeSecret(t *testing.T, key, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.secrets, key), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
}

// config is a dso.yaml for this directory: the agent block (metrics on
// metricsAddr, 100ms debounce, 5s rotation timeout; watchExtra lines go
// under agent.watch, top lines at the top level), then the "files" store,
// then the documents of rest.
func (d *agentDir) config(metricsAddr, watchExtra, top, rest string) string {
	var w strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(watchExtra), "\n") {
		if l != "" {
			w.WriteString("    " + l + "\n")
		}
	}
	return fmt.Sprintf(`agent:
  metrics: {listen: "%[1]s"}
  api: {socket: "%[2]s/run/dso.sock"}
  delivery: {dir: "%[2]s/secrets"}
  watch:
    debounce_window: 100ms
%[3]s  rotation: {timeout: 5s}
logging: {file: "%[2]s/agent.log"}
state: {dir: "%[2]s/state"}
bindings: {dirs: ["%[2]s/bindings.d"]}
%[4]s---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata: {name: files}
spec:
  file: {dir: "%[5]s"}
%[6]s`, metricsAddr, d.dir, w.String(), top, d.secrets, rest)
}

// load writes cfg as dso.yaml, loads it, and unmounts the agent's tmpfs
// at the end of the test.
func (d *agentDir) load(t *testing.T, cfg string) (string, *config.Bundle) {
	t.Helper()
	path := filepath.Join(d.dir, "dso.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(d.dir, "secrets"), unix.MNT_DETACH) })
	b, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// runAgent runs the agent in-process until the test ends, and returns once
// it is ready. The cleanup stops it and fails the test if Run failed.
func runAgent(t *testing.T, opts Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	opts.Ready = ready
	go func() { done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("agent exited: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("agent not ready")
	}
}
