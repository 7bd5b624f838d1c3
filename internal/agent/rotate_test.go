package agent

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/file"
)

// gatedFiles is the file provider whose Get of one key can be held until
// the test lets it go.
type gatedFiles struct {
	key string

	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (*gatedFiles) Name() string { return file.Name }

func (p *gatedFiles) NewClient(ctx context.Context, s *v1alpha1.SecretStore) (providers.Client, error) {
	c, err := file.Provider{}.NewClient(ctx, s)
	if err != nil {
		return nil, err
	}
	return &gatedClient{Client: c, p: p}, nil
}

// arm makes the next Get of the key wait for the returned release func.
func (p *gatedFiles) arm() (entered <-chan struct{}, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.entered, p.release = true, make(chan struct{}), make(chan struct{})
	rel := p.release
	return p.entered, func() { close(rel) }
}

type gatedClient struct {
	providers.Client
	p *gatedFiles
}

func (c *gatedClient) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	c.p.mu.Lock()
	held := c.p.armed && ref.Key == c.p.key
	var entered, release chan struct{}
	if held {
		c.p.armed = false
		entered, release = c.p.entered, c.p.release
	}
	c.p.mu.Unlock()
	if held {
		close(entered)
		<-release
	}
	return c.Client.Get(ctx, ref)
}

// TestRotateWaitIgnoresPassBeforeRefresh: rotate --wait must not take a
// no-op pass that began while its own refresh was still in flight (it read
// the old value) for "already runs the current secrets": the new value is
// rotated and the wait reports it.
func TestRotateWaitIgnoresPassBeforeRefresh(t *testing.T) {
	d := newAgentDir(t)
	d.writeSecret(t, "api_key", "v1")
	d.writeSecret(t, "other_key", "o1")
	cfgPath, b := d.load(t, d.config(freePort(t), "", "", `---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata: {name: api}
spec:
  storeRef: {name: files}
  target: {selector: {containers: [api]}}
  data:
  - remoteRef: {key: api_key}
    env: API_KEY
---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata: {name: other}
spec:
  storeRef: {name: files}
  target: {selector: {containers: [api]}}
  data:
  - remoteRef: {key: other_key}
    env: OTHER
`))
	prov := &gatedFiles{key: "api_key"}
	reg := providers.NewRegistry()
	reg.MustRegister(prov)
	eng := fake.New()
	eng.Add("api", container.Config{Image: "sha256:app", Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/probe"}}}, container.HostConfig{}, true)
	log := funcr.New(func(_, _ string) {}, funcr.Options{})
	runAgent(t, Options{ConfigPath: cfgPath, Bundle: b, Log: log, Engine: eng, Registry: reg})
	waitFor(t, "initial convergence", func() bool {
		c := eng.ByName("api")
		return c != nil && c.Config.Labels[docker.LabelSecretHash] != ""
	})
	client := api.NewClient(filepath.Join(d.dir, "run", "dso.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	d.writeSecret(t, "api_key", "v2")
	entered, release := prov.arm()
	phases := make(chan []string, 1)
	go func() {
		var got []string
		err := client.Rotate(ctx, "api", true, func(p api.RotateProgress) {
			if p.Target != "" {
				got = append(got, p.Phase)
			}
		})
		if err != nil {
			got = append(got, "error: "+err.Error())
		}
		phases <- got
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("rotate's refresh never reached the store")
	}
	// While that refresh is in flight, a pass over api (here from the other
	// binding's rotate) finds it current with the cached v1.
	if err := client.Rotate(ctx, "other", true, func(api.RotateProgress) {}); err != nil {
		t.Fatal(err)
	}
	release()
	got := <-phases
	if len(got) == 0 || got[len(got)-1] != "succeeded" || strings.Contains(strings.Join(got, ","), "unchanged") {
		t.Errorf("rotate --wait of api: phases %q, want it to end succeeded, never unchanged", got)
	}
	waitFor(t, "v2 delivered", func() bool {
		c := eng.ByName("api")
		return c != nil && strings.Contains(strings.Join(c.Config.Env, ","), "API_KEY=v2")
	})
}
