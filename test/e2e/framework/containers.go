package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// TestappPort is the port the testapp serves on inside the container.
const TestappPort = "8080/tcp"

// Network creates a bridge network for this run and returns its name.
// Tests talk to containers on networks they created themselves only.
// t is the calling (sub)test: it is the one failed on error.
func (h *Harness) Network(t testing.TB, ctx context.Context, short string) string {
	t.Helper()
	name := h.uniqueName(short)
	if _, err := h.Docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: h.Labels(nil)}); err != nil {
		t.Fatalf("creating network %s: %v", name, err)
	}
	return name
}

// ContainerSpec says what to run. The zero value runs the test image with
// its defaults under a generated name.
type ContainerSpec struct {
	Name        string // short name; the run prefix is added
	Image       string // default: the harness image
	Cmd         []string
	Env         []string
	Labels      map[string]string // merged with the run labels
	Binds       []string          // host:container[:ro]
	Network     string            // one network at create (API 1.41 allows only one)
	Aliases     []string
	PublishHTTP bool // publish TestappPort on 127.0.0.1 at a port the engine picks
	NoStart     bool
}

// Container is a container the harness created.
type Container struct {
	ID   string
	Name string
	// HTTPAddr is 127.0.0.1:<port> when the spec published HTTP.
	HTTPAddr string
}

// Run creates (and unless NoStart, starts) a labelled container. t is the
// calling (sub)test, which may run in parallel with others of the harness;
// it is the one failed on error.
func (h *Harness) Run(t testing.TB, ctx context.Context, spec ContainerSpec) *Container {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "c"
	}
	if spec.Image == "" {
		spec.Image = h.Image
	}
	name := h.uniqueName(spec.Name)
	cfg := &container.Config{Image: spec.Image, Cmd: spec.Cmd, Env: spec.Env, Labels: h.Labels(spec.Labels)}
	hc := &container.HostConfig{Binds: spec.Binds}
	if spec.PublishHTTP {
		// HostPort "" asks the engine for a free port; binding to 127.0.0.1
		// keeps test traffic on loopback.
		cfg.ExposedPorts = nat.PortSet{TestappPort: struct{}{}}
		hc.PortBindings = nat.PortMap{TestappPort: {{HostIP: "127.0.0.1", HostPort: ""}}}
	}
	var nc *network.NetworkingConfig
	if spec.Network != "" {
		hc.NetworkMode = container.NetworkMode(spec.Network)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			spec.Network: {Aliases: spec.Aliases},
		}}
	}
	created, err := h.Docker.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if err != nil {
		t.Fatalf("creating container %s from %s: %v", name, spec.Image, err)
	}
	c := &Container{ID: created.ID, Name: name}
	if spec.NoStart {
		return c
	}
	if err := h.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting container %s: %v", name, err)
	}
	if spec.PublishHTTP {
		c.HTTPAddr = h.publishedAddr(t, ctx, c)
	}
	return c
}

// publishedAddr reads the host port the engine assigned to TestappPort.
func (h *Harness) publishedAddr(t testing.TB, ctx context.Context, c *Container) string {
	t.Helper()
	info, err := h.Docker.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatalf("inspecting container %s: %v", c.Name, err)
	}
	if info.NetworkSettings != nil {
		for _, b := range info.NetworkSettings.Ports[TestappPort] {
			if b.HostIP == "127.0.0.1" && b.HostPort != "" {
				return net.JoinHostPort(b.HostIP, b.HostPort)
			}
		}
	}
	t.Fatalf("container %s has no 127.0.0.1 binding for %s (status %s); did it exit at once?", c.Name, TestappPort, info.State.Status)
	return ""
}

// WaitHealth polls until the container's HEALTHCHECK status is want
// ("healthy", "unhealthy"). Waiting for healthy fails early when the status
// turns unhealthy; any wait fails when the container stops running.
func (h *Harness) WaitHealth(ctx context.Context, id string, want container.HealthStatus) error {
	for {
		info, err := h.Docker.ContainerInspect(ctx, id)
		if err != nil {
			return fmt.Errorf("inspecting container %s while waiting for %s: %w", shortID(id), want, err)
		}
		if info.State.Health == nil {
			return fmt.Errorf("container %s has no HEALTHCHECK; its image must define one", info.Name)
		}
		last := info.State.Health.Status
		switch {
		case last == want:
			return nil
		case !info.State.Running:
			return fmt.Errorf("container %s stopped (status %s, exit code %d) before becoming %s", info.Name, info.State.Status, info.State.ExitCode, want)
		case want == container.Healthy && last == container.Unhealthy:
			return fmt.Errorf("container %s became unhealthy: %s", info.Name, healthLog(info.State.Health))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s still %s, not %s: %w", info.Name, last, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitHealthy waits for Docker to report the container healthy.
func (h *Harness) WaitHealthy(ctx context.Context, id string) error {
	return h.WaitHealth(ctx, id, container.Healthy)
}

func healthLog(hs *container.Health) string {
	var parts []string
	for _, r := range hs.Log {
		parts = append(parts, fmt.Sprintf("exit %d: %s", r.ExitCode, strings.TrimSpace(r.Output)))
	}
	if len(parts) == 0 {
		return "no healthcheck results recorded"
	}
	return strings.Join(parts, "; ")
}

// WaitExit waits until the container is not running and returns its exit code.
func (h *Harness) WaitExit(ctx context.Context, id string) (int, error) {
	okc, errc := h.Docker.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case r := <-okc:
		if r.Error != nil {
			return 0, fmt.Errorf("waiting for container %s: %s", shortID(id), r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-errc:
		return 0, fmt.Errorf("waiting for container %s to exit: %w", shortID(id), err)
	}
}

// Logs returns the last n lines of the container's stdout and stderr.
func (h *Harness) Logs(ctx context.Context, id string, n int) (string, error) {
	rc, err := h.Docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return "", fmt.Errorf("reading logs of container %s: %w", shortID(id), err)
	}
	defer func() { _ = rc.Close() }()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return "", fmt.Errorf("demultiplexing logs of container %s: %w", shortID(id), err)
	}
	return out.String(), nil
}

// ExecResult is the outcome of a command run inside a container.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Exec runs cmd inside a running container and waits for it. Arguments are
// visible in the engine (docker inspect of the exec): never pass values.
func (h *Harness) Exec(ctx context.Context, id string, cmd ...string) (ExecResult, error) {
	ex, err := h.Docker.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, fmt.Errorf("creating exec %q in container %s: %w", cmd, shortID(id), err)
	}
	att, err := h.Docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("attaching to exec %q in container %s: %w", cmd, shortID(id), err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil && !errors.Is(err, io.EOF) {
		return ExecResult{}, fmt.Errorf("reading output of exec %q: %w", cmd, err)
	}
	// The stream ends when the process exits, but the exit code can lag
	// behind by a moment.
	for {
		st, err := h.Docker.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return ExecResult{}, fmt.Errorf("inspecting exec %q: %w", cmd, err)
		}
		if !st.Running {
			return ExecResult{ExitCode: st.ExitCode, Stdout: stdout.String(), Stderr: stderr.String()}, nil
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, fmt.Errorf("exec %q did not finish: %w", cmd, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ExecGET makes an HTTP GET from inside the container with `testapp get`,
// reaching other containers on the test's networks by name or alias.
// It returns the body of a 2xx answer, or an error naming the status.
func (h *Harness) ExecGET(ctx context.Context, id, url string) (string, error) {
	r, err := h.Exec(ctx, id, "/testapp", "get", url)
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return r.Stdout, fmt.Errorf("GET %s from container %s failed (exit %d): %s", url, shortID(id), r.ExitCode, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout, nil
}

// GET fetches http://addr+path and returns the status code and body. Only
// loopback addresses are allowed: test traffic never leaves the host.
func GET(ctx context.Context, addr, path string) (int, string, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return 0, "", fmt.Errorf("refusing to send test traffic to %q: use a published port on 127.0.0.1", addr)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("building request for %s: %w", path, err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("reading body of %s: %w", path, err)
	}
	return resp.StatusCode, string(b), nil
}
