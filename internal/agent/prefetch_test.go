package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/api/v1alpha1"
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
	d := newAgentDir(t)
	keys := []string{"k1", "k2", "k3"}
	var bindings strings.Builder
	for _, k := range keys {
		d.writeSecret(t, k, "value-of-"+k)
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
	cfgPath, b := d.load(t, d.config(freePort(t), "", "", bindings.String()))
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
	runAgent(t, Options{ConfigPath: cfgPath, Bundle: b, Log: log, Engine: eng, Registry: reg})
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
