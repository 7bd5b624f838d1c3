package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/funcr"
	"golang.org/x/sys/unix"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/file"
)

// batchFiles is the file provider with a batch capability (as AWS has),
// counting single and batch calls.
type batchFiles struct {
	mu            sync.Mutex
	gets, batches int
	batchSizes    []int
}

func (*batchFiles) Name() string { return file.Name }

func (p *batchFiles) NewClient(ctx context.Context, s *v1alpha1.SecretStore) (providers.Client, error) {
	c, err := file.Provider{}.NewClient(ctx, s)
	if err != nil {
		return nil, err
	}
	return &batchClient{Client: c, p: p}, nil
}

type batchClient struct {
	providers.Client
	p *batchFiles
}

func (c *batchClient) MaxBatch() int { return 2 }

func (c *batchClient) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	c.p.mu.Lock()
	c.p.gets++
	c.p.mu.Unlock()
	return c.Client.Get(ctx, ref)
}

func (c *batchClient) GetBatch(ctx context.Context, refs []providers.Ref) ([]providers.Secret, []error) {
	c.p.mu.Lock()
	c.p.batches++
	c.p.batchSizes = append(c.p.batchSizes, len(refs))
	c.p.mu.Unlock()
	secs, errs := make([]providers.Secret, len(refs)), make([]error, len(refs))
	for i, r := range refs {
		secs[i], errs[i] = c.Client.Get(ctx, r)
	}
	return secs, errs
}

func (p *batchFiles) counts() (gets, batches int, sizes []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets, p.batches, append([]int(nil), p.batchSizes...)
}

// TestAgentPrefetchesBatchStores: at start the agent fills a batch-capable
// store's keys in MaxBatch-sized calls, and secretfetch then reads those
// keys from the cache: no per-key call, yet every container converges with
// its value.
func TestAgentPrefetchesBatchStores(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent mounts a tmpfs for secret files: needs root")
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "store")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	keys := []string{"k1", "k2", "k3"}
	var bindings strings.Builder
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(secrets, k), []byte("value-of-"+k), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&bindings, `---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata: {name: b-%[1]s}
spec:
  storeRef: {name: files}
  target: {selector: {containers: [app-%[1]s]}}
  data:
  - remoteRef: {key: %[1]s}
    env: SECRET
`, k)
	}
	cfgPath := filepath.Join(dir, "dso.yaml")
	cfg := fmt.Sprintf(`agent:
  metrics: {listen: "%s"}
  api: {socket: "%s/run/dso.sock"}
  delivery: {dir: "%s/secrets"}
  watch: {debounce_window: 100ms}
  rotation: {timeout: 5s}
logging: {file: "%s/agent.log"}
state: {dir: "%s/state"}
bindings: {dirs: ["%s/bindings.d"]}
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata: {name: files}
spec:
  file: {dir: "%s"}
%s`, freePort(t), dir, dir, dir, dir, dir, secrets, bindings.String())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(dir, "secrets"), unix.MNT_DETACH) })
	b, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	prov := &batchFiles{}
	reg := providers.NewRegistry()
	reg.MustRegister(prov)

	eng := fake.New()
	for _, k := range keys {
		eng.Add("app-"+k, container.Config{Image: "sha256:app", Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/probe"}}}, container.HostConfig{}, true)
	}
	var logMu sync.Mutex
	var logs strings.Builder
	log := funcr.New(func(_, args string) { logMu.Lock(); logs.WriteString(args + "\n"); logMu.Unlock() }, funcr.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Bundle: b, Log: log, Engine: eng, Ready: ready, Registry: reg})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	<-ready
	for _, k := range keys {
		name := "app-" + k
		waitFor(t, name+" converges", func() bool {
			c := eng.ByName(name)
			return c != nil && c.Config.Labels[docker.LabelSecretHash] != ""
		})
		if env := strings.Join(eng.ByName(name).Config.Env, ","); !strings.Contains(env, "SECRET=value-of-"+k) {
			t.Errorf("%s: env %q lacks its value", name, env)
		}
	}
	gets, batches, sizes := prov.counts()
	sort.Ints(sizes)
	if gets != 0 || batches != 2 || fmt.Sprint(sizes) != "[1 2]" {
		t.Errorf("provider calls: %d gets, %d batches of %v; want 0 gets and batches of [1 2]", gets, batches, sizes)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `"batch prefetch"`) {
		t.Errorf("no batch prefetch log line:\n%s", logs.String())
	}
}
