package docker

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// Engine is the set of Docker operations dso performs. Reconcilers depend on
// this interface; tests use a recording fake, production uses Client.
type Engine interface {
	// Version returns the negotiated API version and the engine version.
	Version(ctx context.Context) (apiVersion, engineVersion string, err error)
	// List returns all containers (running or not) carrying every label in labels.
	List(ctx context.Context, labels map[string]string) ([]container.Summary, error)
	Inspect(ctx context.Context, id string) (container.InspectResponse, error)
	// Create creates the container of spec and connects its extra networks
	// (below API 1.44 create accepts one network only). It returns the id.
	Create(ctx context.Context, spec CreateSpec) (string, error)
	Start(ctx context.Context, id string) error
	// Stop stops gracefully (the container's StopSignal/StopTimeout); never kill.
	Stop(ctx context.Context, id string) error
	Restart(ctx context.Context, id string) error
	Signal(ctx context.Context, id, signal string) error
	Rename(ctx context.Context, id, name string) error
	// Remove removes a stopped container; its volumes are never removed.
	Remove(ctx context.Context, id string) error
	SetRestartPolicy(ctx context.Context, id string, p container.RestartPolicy) error
	// NetworkConnect attaches a container to a network with ep's aliases.
	NetworkConnect(ctx context.Context, networkName, id string, ep *network.EndpointSettings) error
	// NetworkDisconnect detaches a container from a network.
	NetworkDisconnect(ctx context.Context, networkName, id string) error
	// Exec runs cmd in a running container and returns its exit code and up
	// to 4 KiB of combined output (used to run a HEALTHCHECK command at once
	// instead of waiting for Docker's first interval).
	Exec(ctx context.Context, id string, cmd []string) (exitCode int, output string, err error)
	// Events streams container events until ctx ends; errs gets one error.
	Events(ctx context.Context, since time.Time) (<-chan events.Message, <-chan error)
	// Swarm: secrets and services (internal/docker/swarm.go).
	Swarm
}

// IsNotFound reports whether err means the container (or network) is gone.
// It is containerd's check, which Docker's deprecated errdefs.IsNotFound
// only forwards to; it recognises the client's NotFound() errors.
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// Client is the Engine backed by the Docker Go client.
type Client struct {
	c *client.Client
}

// NewClient connects to the engine named by the environment (DOCKER_HOST,
// ...), negotiating the API version down to what the engine speaks.
func NewClient() (*Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Client{c: c}, nil
}

// Close releases the client's connections.
func (d *Client) Close() error { return d.c.Close() }

func (d *Client) Version(ctx context.Context) (string, string, error) {
	v, err := d.c.ServerVersion(ctx)
	if err != nil {
		return "", "", fmt.Errorf("docker engine not reachable: %w", err)
	}
	d.c.NegotiateAPIVersion(ctx)
	return d.c.ClientVersion(), v.Version, nil
}

func (d *Client) List(ctx context.Context, labels map[string]string) ([]container.Summary, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return d.c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
}

func (d *Client) Inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	return d.c.ContainerInspect(ctx, id)
}

func (d *Client) Create(ctx context.Context, spec CreateSpec) (string, error) {
	var nc *network.NetworkingConfig
	if len(spec.Networks) > 0 {
		first := spec.Networks[0]
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first.Name: first.Endpoint}}
		if spec.HostConfig != nil && spec.HostConfig.NetworkMode == "" {
			spec.HostConfig.NetworkMode = container.NetworkMode(first.Name)
		}
	}
	resp, err := d.c.ContainerCreate(ctx, spec.Config, spec.HostConfig, nc, nil, spec.Name)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	for _, n := range spec.Networks[min(1, len(spec.Networks)):] {
		if err := d.c.NetworkConnect(ctx, n.Name, resp.ID, n.Endpoint); err != nil {
			return resp.ID, fmt.Errorf("connect container %s to network %s: %w", spec.Name, n.Name, err)
		}
	}
	return resp.ID, nil
}

func (d *Client) Start(ctx context.Context, id string) error {
	return d.c.ContainerStart(ctx, id, container.StartOptions{})
}

func (d *Client) Stop(ctx context.Context, id string) error {
	return d.c.ContainerStop(ctx, id, container.StopOptions{})
}

func (d *Client) Restart(ctx context.Context, id string) error {
	return d.c.ContainerRestart(ctx, id, container.StopOptions{})
}

func (d *Client) Signal(ctx context.Context, id, signal string) error {
	return d.c.ContainerKill(ctx, id, signal)
}

func (d *Client) Rename(ctx context.Context, id, name string) error {
	return d.c.ContainerRename(ctx, id, name)
}

func (d *Client) Remove(ctx context.Context, id string) error {
	return d.c.ContainerRemove(ctx, id, container.RemoveOptions{RemoveVolumes: false})
}

func (d *Client) SetRestartPolicy(ctx context.Context, id string, p container.RestartPolicy) error {
	_, err := d.c.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: p})
	return err
}

func (d *Client) Events(ctx context.Context, since time.Time) (<-chan events.Message, <-chan error) {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))
	opts := events.ListOptions{Filters: f}
	if !since.IsZero() {
		opts.Since = since.Format(time.RFC3339Nano)
	}
	return d.c.Events(ctx, opts)
}

func (d *Client) NetworkConnect(ctx context.Context, networkName, id string, ep *network.EndpointSettings) error {
	return d.c.NetworkConnect(ctx, networkName, id, ep)
}

func (d *Client) NetworkDisconnect(ctx context.Context, networkName, id string) error {
	return d.c.NetworkDisconnect(ctx, networkName, id, false)
}

func (d *Client) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	created, err := d.c.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, "", fmt.Errorf("exec in %s: %w", shortID(id), err)
	}
	att, err := d.c.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, "", fmt.Errorf("exec attach in %s: %w", shortID(id), err)
	}
	defer att.Close()
	var out limitedBuffer
	// The stream is multiplexed (no TTY): strip the 8-byte frame headers.
	_, _ = stdcopy.StdCopy(&out, &out, att.Reader)
	for {
		ins, err := d.c.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return -1, out.String(), fmt.Errorf("exec inspect in %s: %w", shortID(id), err)
		}
		if !ins.Running {
			return ins.ExitCode, out.String(), nil
		}
		select {
		case <-ctx.Done():
			return -1, out.String(), ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// limitedBuffer keeps the first 4 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var _ Engine = (*Client)(nil)
