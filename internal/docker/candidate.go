package docker

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
)

// CreateSpec is everything needed to create (and wire up) one container.
type CreateSpec struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Networks in attach order. The first is passed to create; below API 1.44
	// the others must be connected before start (ConnectBeforeStart).
	Networks []NetworkAttachment
}

// NetworkAttachment is one network and its endpoint settings.
type NetworkAttachment struct {
	Name     string
	Endpoint *network.EndpointSettings
}

// SecretMount is a directory of delivered files bind-mounted read-only.
type SecretMount struct {
	Source string // host path in the agent's tmpfs
	Target string // directory inside the container
}

// CandidateOptions say how the candidate differs from the old container.
type CandidateOptions struct {
	// Name is the candidate's temporary name.
	Name string
	// Env is the desired value of each env var dso delivers (name -> value).
	Env map[string]string
	// Mounts are the secret directories to bind-mount.
	Mounts []SecretMount
	// Labels are added (dso.dev/* bookkeeping); they override copied labels.
	Labels map[string]string
	// KeepPorts copies host port bindings (recreate only: the old container is
	// stopped before the candidate starts). Rolling must leave them false.
	KeepPorts bool
}

// ErrSharedNamespace is returned for containers that share another
// container's network namespace: recreating either side breaks the other.
var ErrSharedNamespace = errors.New("container uses network_mode container:<id>; dso cannot swap it safely")

// ErrNamespaceParent is returned for containers whose network namespace
// other containers join (network_mode container:<it>, Compose's
// network_mode: service:<it>): replacing it would cut them off.
var ErrNamespaceParent = errors.New("other containers share this container's network namespace (network_mode container:<it>); replacing it would cut them off, so dso does not swap it: deliver its secrets as files with strategy restart, signal or none, or stop sharing the namespace")

// NamespaceChildren lists the containers in list that join id's network
// namespace (NetworkMode "container:<id>", which Docker stores with the
// full id whatever name was given).
func NamespaceChildren(list []container.Summary, id string) []string {
	var out []string
	for _, c := range list {
		if c.HostConfig.NetworkMode == "container:"+id && len(c.Names) > 0 {
			out = append(out, strings.TrimPrefix(c.Names[0], "/"))
		}
	}
	sort.Strings(out)
	return out
}

// HasHostPorts reports whether c publishes ports on the host.
func HasHostPorts(c container.InspectResponse) bool {
	if c.HostConfig == nil {
		return false
	}
	if c.HostConfig.PublishAllPorts {
		return true
	}
	for _, b := range c.HostConfig.PortBindings {
		if len(b) > 0 {
			return true
		}
	}
	return false
}

// CandidateSpec derives the create call of a swap candidate from the old
// container's inspect data.
func CandidateSpec(old container.InspectResponse, opts CandidateOptions) (CreateSpec, error) {
	if old.ContainerJSONBase == nil || old.Config == nil || old.HostConfig == nil {
		return CreateSpec{}, errors.New("inspect data is incomplete")
	}
	if old.HostConfig.NetworkMode.IsContainer() {
		return CreateSpec{}, ErrSharedNamespace
	}
	cfg := *old.Config
	hc := *old.HostConfig

	// Image by ID: the tag may point at another image by now.
	cfg.Image = old.Image
	// Docker sets the hostname to the short id when the user did not choose one.
	if len(old.ID) >= 12 && cfg.Hostname == old.ID[:12] {
		cfg.Hostname = ""
	}
	cfg.Env = mergeEnv(old.Config.Env, old.Config.Labels[LabelEnvKeys], opts.Env)
	cfg.Labels = mergeLabels(old.Config.Labels, opts.Labels)
	if len(opts.Env) > 0 {
		cfg.Labels[LabelEnvKeys] = strings.Join(sortedKeys(opts.Env), ",")
	} else {
		delete(cfg.Labels, LabelEnvKeys)
	}
	if _, ok := cfg.Labels[LabelRestartPolicy]; !ok || old.Config.Labels[LabelManaged] != "true" {
		cfg.Labels[LabelRestartPolicy] = FormatRestartPolicy(old.HostConfig.RestartPolicy)
	}
	// Config.MacAddress is only set when the user configured one; the
	// per-endpoint MAC is operational data and is never copied.

	// Restart policy "no" until cutover, so a failing candidate cannot loop.
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	hc.AutoRemove = false
	if !opts.KeepPorts {
		hc.PortBindings = nil
		hc.PublishAllPorts = false
	}
	hc.Binds = bindsWithout(old.HostConfig.Binds, opts.Mounts)
	hc.Mounts = withSecretMounts(old, opts.Mounts)

	nets, err := candidateNetworks(old)
	if err != nil {
		return CreateSpec{}, err
	}
	return CreateSpec{Name: opts.Name, Config: &cfg, HostConfig: &hc, Networks: nets}, nil
}

// bindsWithout copies binds ("src:dst[:opts]", as `-v` and Compose v1
// write them) minus those at a secret mount's target: the candidate gets
// dso's mount there instead, and two mounts at one path fail the create
// ("Duplicate mount point"), e.g. when a compose file declares a live
// directory under a path that does not match the container's name.
func bindsWithout(binds []string, secrets []SecretMount) []string {
	if binds == nil {
		return nil
	}
	secretTargets := map[string]bool{}
	for _, s := range secrets {
		secretTargets[path.Clean(s.Target)] = true
	}
	out := make([]string, 0, len(binds))
	for _, b := range binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 && secretTargets[path.Clean(parts[1])] {
			continue
		}
		out = append(out, b)
	}
	return out
}

// withSecretMounts keeps the old container's mounts, re-mounts anonymous and
// image volumes by name (a plain recreate would give the candidate fresh
// empty ones) and replaces dso's secret mounts with the desired ones.
func withSecretMounts(old container.InspectResponse, secrets []SecretMount) []mount.Mount {
	secretTargets := map[string]bool{}
	for _, s := range secrets {
		secretTargets[path.Clean(s.Target)] = true
	}
	named := map[string]string{} // destination -> volume name Docker gave it
	for _, mp := range old.Mounts {
		if mp.Type == mount.TypeVolume && mp.Name != "" {
			named[path.Clean(mp.Destination)] = mp.Name
		}
	}
	covered := map[string]bool{}
	var out []mount.Mount
	for _, m := range old.HostConfig.Mounts {
		t := path.Clean(m.Target)
		if secretTargets[t] {
			continue // replaced below
		}
		if m.Type == mount.TypeVolume && m.Source == "" {
			// An anonymous volume declared with --mount (or by Compose):
			// re-mount the one Docker created, by name, or the candidate
			// would start on a fresh empty volume.
			m.Source = named[t]
		}
		covered[t] = true
		out = append(out, m)
	}
	for _, b := range old.HostConfig.Binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 {
			covered[path.Clean(parts[1])] = true
		}
	}
	for t := range old.HostConfig.Tmpfs {
		covered[path.Clean(t)] = true
	}
	for _, mp := range old.Mounts {
		t := path.Clean(mp.Destination)
		if covered[t] || secretTargets[t] || mp.Type != mount.TypeVolume || mp.Name == "" {
			continue
		}
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: mp.Name, Target: mp.Destination, ReadOnly: !mp.RW})
		covered[t] = true
	}
	for _, s := range secrets {
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: s.Source, Target: s.Target, ReadOnly: true})
	}
	return out
}

func candidateNetworks(old container.InspectResponse) ([]NetworkAttachment, error) {
	if old.NetworkSettings == nil || len(old.NetworkSettings.Networks) == 0 {
		return nil, nil
	}
	short := ""
	if len(old.ID) >= 12 {
		short = old.ID[:12]
	}
	names := make([]string, 0, len(old.NetworkSettings.Networks))
	for n := range old.NetworkSettings.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	// The network named by NetworkMode goes first: it is the one create takes.
	mode := string(old.HostConfig.NetworkMode)
	sort.SliceStable(names, func(i, j int) bool { return names[i] == mode && names[j] != mode })
	out := make([]NetworkAttachment, 0, len(names))
	for _, n := range names {
		ep := old.NetworkSettings.Networks[n]
		if ep == nil {
			continue
		}
		nep := &network.EndpointSettings{
			Links:      append([]string(nil), ep.Links...),
			DriverOpts: copyMap(ep.DriverOpts),
			GwPriority: ep.GwPriority,
		}
		if ep.IPAMConfig != nil {
			c := *ep.IPAMConfig
			nep.IPAMConfig = &c
		}
		for _, a := range ep.Aliases {
			if a == short || a == old.ID {
				continue
			}
			nep.Aliases = append(nep.Aliases, a)
		}
		out = append(out, NetworkAttachment{Name: n, Endpoint: nep})
	}
	return out, nil
}

// mergeEnv drops env vars dso delivered before (prevKeys) that are no longer
// wanted, then sets the desired ones, keeping everything else in order.
func mergeEnv(old []string, prevKeys string, want map[string]string) []string {
	drop := map[string]bool{}
	for _, k := range strings.Split(prevKeys, ",") {
		if k != "" {
			drop[k] = true
		}
	}
	for k := range want {
		drop[k] = true
	}
	out := make([]string, 0, len(old)+len(want))
	for _, kv := range old {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] {
			continue
		}
		out = append(out, kv)
	}
	for _, k := range sortedKeys(want) {
		out = append(out, k+"="+want[k])
	}
	return out
}

func mergeLabels(old, add map[string]string) map[string]string {
	out := make(map[string]string, len(old)+len(add))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}

// FormatRestartPolicy renders a restart policy as "always", "on-failure:3", ...
func FormatRestartPolicy(p container.RestartPolicy) string {
	name := string(p.Name)
	if name == "" {
		name = "no"
	}
	if p.Name == container.RestartPolicyOnFailure && p.MaximumRetryCount > 0 {
		return name + ":" + strconv.Itoa(p.MaximumRetryCount)
	}
	return name
}

// ParseRestartPolicy is the inverse of FormatRestartPolicy.
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hasN {
			return p, fmt.Errorf("restart policy %q takes no count", s)
		}
	case container.RestartPolicyOnFailure:
		if hasN {
			c, err := strconv.Atoi(n)
			if err != nil || c < 0 {
				return p, fmt.Errorf("invalid restart policy %q", s)
			}
			p.MaximumRetryCount = c
		}
	default:
		return p, fmt.Errorf("invalid restart policy %q", s)
	}
	return p, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
