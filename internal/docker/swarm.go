package docker

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Swarm is the part of the Engine that Swarm services need: versioned
// Docker secrets and rolling service updates. Every call goes to a Swarm
// manager; on an engine that is not one, Docker answers each with an error
// ("This node is not a swarm manager"), which is why SwarmInfo is asked
// first.
type Swarm interface {
	// SwarmInfo says whether the engine is in a swarm and can manage it.
	SwarmInfo(ctx context.Context) (SwarmInfo, error)
	// SecretCreate creates a Docker secret and returns its id. The value
	// goes only into the request body: never into the name, a label, a log
	// line or an error.
	SecretCreate(ctx context.Context, name string, labels map[string]string, data []byte) (string, error)
	// SecretList lists the secrets carrying every label in labels (value ""
	// matches any value). Data is never returned by Docker.
	SecretList(ctx context.Context, labels map[string]string) ([]swarm.Secret, error)
	// SecretRemove removes a secret. Docker refuses while a service
	// references it (IsSecretInUse).
	SecretRemove(ctx context.Context, id string) error
	// ServiceInspect returns a service (by name or id) with its version,
	// spec, previous spec and update status.
	ServiceInspect(ctx context.Context, nameOrID string) (swarm.Service, error)
	// ServiceUpdate replaces the spec of the service at version (Docker
	// refuses a stale version, so a concurrent change is never
	// overwritten). The registry is not queried: the image is left as the
	// spec names it.
	ServiceUpdate(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec) error
	// TaskList lists the tasks of a service.
	TaskList(ctx context.Context, serviceID string) ([]swarm.Task, error)
}

// SwarmInfo is what docker info says of the engine's swarm membership.
type SwarmInfo struct {
	// NodeID is this engine's node id ("" outside a swarm).
	NodeID string
	// State is Swarm.LocalNodeState: inactive, pending, active, error, locked.
	State string
	// ControlAvailable is true on a manager.
	ControlAvailable bool
}

// Manager reports whether dso can manage services through this engine.
func (s SwarmInfo) Manager() bool {
	return s.State == string(swarm.LocalNodeStateActive) && s.ControlAvailable
}

// NotManagerMessage explains why swarm bindings do nothing on this engine.
const NotManagerMessage = "this engine is not a Swarm manager: bindings that select a Swarm service are not acted on (run the agent on a manager node, see docs/swarm.md)"

func (d *Client) SwarmInfo(ctx context.Context) (SwarmInfo, error) {
	info, err := d.c.Info(ctx)
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("docker info: %w", err)
	}
	return SwarmInfo{NodeID: info.Swarm.NodeID, State: string(info.Swarm.LocalNodeState), ControlAvailable: info.Swarm.ControlAvailable}, nil
}

func (d *Client) SecretCreate(ctx context.Context, name string, labels map[string]string, data []byte) (string, error) {
	resp, err := d.c.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: data})
	if err != nil {
		// Docker's error names the secret, never its data.
		return "", fmt.Errorf("create secret %s: %w", name, err)
	}
	return resp.ID, nil
}

func (d *Client) SecretList(ctx context.Context, labels map[string]string) ([]swarm.Secret, error) {
	return d.c.SecretList(ctx, swarm.SecretListOptions{Filters: labelFilters(labels)})
}

func (d *Client) SecretRemove(ctx context.Context, id string) error {
	return d.c.SecretRemove(ctx, id)
}

func (d *Client) ServiceInspect(ctx context.Context, nameOrID string) (swarm.Service, error) {
	s, _, err := d.c.ServiceInspectWithRaw(ctx, nameOrID, swarm.ServiceInspectOptions{})
	return s, err
}

func (d *Client) ServiceUpdate(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec) error {
	resp, err := d.c.ServiceUpdate(ctx, id, version, spec, swarm.ServiceUpdateOptions{RegistryAuthFrom: swarm.RegistryAuthFromSpec})
	if err != nil {
		return fmt.Errorf("update service %s: %w", spec.Name, err)
	}
	_ = resp.Warnings // image digest warnings: nothing to act on
	return nil
}

func (d *Client) TaskList(ctx context.Context, serviceID string) ([]swarm.Task, error) {
	return d.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
}

// IsSecretInUse reports whether err is Docker refusing to remove a secret
// that a service still references (a rolling update in progress, or a
// rollback): not an error, the removal is tried again later.
func IsSecretInUse(err error) bool {
	if err == nil {
		return false
	}
	return cerrdefs.IsInvalidArgument(err) || cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "is in use")
}

func labelFilters(labels map[string]string) filters.Args {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
}
