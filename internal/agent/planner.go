package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers"
	"github.com/dso-dev/dso/reconcilers/containerswap"
	"github.com/dso-dev/dso/reconcilers/swarmrotate"
)

// Values is where the planner reads secret values (the cache).
type Values interface {
	Get(ctx context.Context, store string, ref providers.Ref) (cache.Entry, error)
}

// Planner computes a target's desired state: it implements
// containerswap.Planner.
type Planner struct {
	Model   *Model
	Values  Values
	HostKey []byte
	// Timeout is agent.rotation.timeout, the default health gate bound.
	Timeout time.Duration
}

// Plan returns the plan for container c.
func (p *Planner) Plan(ctx context.Context, c container.InspectResponse) (containerswap.Plan, bool, error) {
	name := strings.TrimPrefix(c.Name, "/")
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if IsSwapArtifact(name, labels) {
		return containerswap.Plan{}, false, nil
	}
	if IsSwarmTask(labels) {
		// Swarm owns its task containers: a swap would fight the
		// orchestrator. A binding reaches them through its service.
		return containerswap.Plan{}, false, nil
	}
	bindings := p.Model.Select(name, labels)
	if len(bindings) == 0 {
		return containerswap.Plan{}, false, nil
	}
	plan, _, err := p.values(ctx, name, bindings)
	if err != nil {
		return plan, true, err
	}
	strategy := plan.Strategy
	if strategy == "" || strategy == v1alpha1.RotationAuto {
		switch {
		case len(plan.Env) == 0 && len(plan.Files) > 0:
			strategy = v1alpha1.RotationNone
		case docker.HasHostPorts(c):
			strategy = v1alpha1.RotationRecreate
		default:
			strategy = v1alpha1.RotationRolling
		}
	}
	plan.Strategy = strategy
	p.finish(&plan)
	return plan, true, nil
}

// PlanService returns the plan of a Swarm service: it implements
// swarmrotate.Planner with the same values and HMAC as a container's plan.
func (p *Planner) PlanService(ctx context.Context, service string) (swarmrotate.Plan, bool, error) {
	bindings := p.Model.SelectService(service)
	if len(bindings) == 0 {
		return swarmrotate.Plan{}, false, nil
	}
	cp, fileFrom, err := p.values(ctx, swarmrotate.Target(service), bindings)
	if err != nil {
		return swarmrotate.Plan{}, true, err
	}
	if len(cp.Env) > 0 {
		// Validation refuses env for Swarm bindings; never put a value
		// into a service spec even if one got through.
		return swarmrotate.Plan{}, true, reconcilers.TerminalError(fmt.Errorf("service %s: a Swarm binding delivers files only", service))
	}
	cp.Strategy = swarmrotate.Strategy
	p.finish(&cp)
	// Docker secret names are swarm-wide and carry the hash: the service is
	// hashed too, so a binding moved to another service gets secrets of its
	// own instead of meeting the first service's under the same names.
	plan := swarmrotate.Plan{Bindings: cp.Bindings, Hash: p.serviceHash(service, cp.Hash), Timeout: cp.HealthTimeout}
	for _, f := range cp.Files {
		plan.Files = append(plan.Files, swarmrotate.File{Binding: fileFrom[f.Path], File: f})
	}
	return plan, true, nil
}

// finish defaults the health timeout and computes the hashes of a plan
// whose strategy is resolved.
func (p *Planner) finish(plan *containerswap.Plan) {
	if plan.HealthTimeout == 0 {
		plan.HealthTimeout = p.Timeout
	}
	plan.ContentHash = p.hash(*plan, true)
	if plan.InPlace() {
		plan.Hash = p.hash(*plan, false)
	} else {
		plan.Hash = plan.ContentHash
	}
}

// values gathers what bindings deliver to one target (a container name, or
// service/<name>): env and files with their values, the strongest strategy
// (unresolved: may be auto), the signal and the longest health timeout.
// fileFrom maps each file path to the binding that delivers it.
func (p *Planner) values(ctx context.Context, name string, bindings []*v1alpha1.SecretBinding) (plan containerswap.Plan, fileFrom map[string]string, err error) {
	plan = containerswap.Plan{Env: map[string]string{}}
	envFrom := map[string]string{}
	fileFrom = map[string]string{}
	var strategy v1alpha1.RotationStrategy
	var signal string
	var timeout time.Duration
	for _, b := range bindings {
		plan.Bindings = append(plan.Bindings, b.Name)
		store := b.Spec.StoreRef.Name
		get := func(ref v1alpha1.RemoteRef) (providers.Secret, error) {
			e, err := p.Values.Get(ctx, store, providers.Ref{Key: ref.Key, Version: ref.Version})
			if err != nil {
				return providers.Secret{}, err
			}
			return e.Secret, nil
		}
		for i, d := range b.Spec.Data {
			sec, err := get(d.RemoteRef)
			if err != nil {
				return plan, nil, fmt.Errorf("binding %s: spec.data[%d]: %w", b.Name, i, err)
			}
			val := sec.Value
			if d.RemoteRef.Property != "" {
				v, ok := sec.Fields[d.RemoteRef.Property]
				if !ok {
					return plan, nil, reconcilers.TerminalError(providers.Errorf(providers.KindNotFound, store, d.RemoteRef.Key, "field %q not in secret (binding %s, spec.data[%d])", d.RemoteRef.Property, b.Name, i))
				}
				val = v
			}
			if d.Env != "" {
				if prev, ok := envFrom[d.Env]; ok {
					return plan, nil, reconcilers.TerminalError(fmt.Errorf("bindings %s and %s both deliver env %s to container %s", prev, b.Name, d.Env, name))
				}
				envFrom[d.Env] = b.Name
				plan.Env[d.Env] = string(val)
			}
			if d.File != nil {
				f, err := fileOf(d.File, val)
				if err != nil {
					return plan, nil, reconcilers.TerminalError(fmt.Errorf("binding %s: spec.data[%d].file: %w", b.Name, i, err))
				}
				if prev, ok := fileFrom[f.Path]; ok {
					return plan, nil, reconcilers.TerminalError(fmt.Errorf("bindings %s and %s both deliver file %s to container %s", prev, b.Name, f.Path, name))
				}
				fileFrom[f.Path] = b.Name
				plan.Files = append(plan.Files, f)
			}
		}
		for i, d := range b.Spec.DataFrom {
			sec, err := get(d.RemoteRef)
			if err != nil {
				return plan, nil, fmt.Errorf("binding %s: spec.dataFrom[%d]: %w", b.Name, i, err)
			}
			if sec.Fields == nil {
				return plan, nil, reconcilers.TerminalError(providers.Errorf(providers.KindInvalidRef, store, d.RemoteRef.Key, "dataFrom needs a JSON object secret (binding %s, spec.dataFrom[%d])", b.Name, i))
			}
			for _, field := range sortedFieldNames(sec.Fields) {
				if d.Dir != "" {
					if !validFileName(field) {
						// A field name comes from the store, not from the
						// operator's YAML: "../../etc/passwd" must not
						// reach outside dataFrom's dir in the container.
						return plan, nil, reconcilers.TerminalError(fmt.Errorf("binding %s: spec.dataFrom[%d]: field %q of %s is not usable as a file name in %s (one path element: no '/', not '.', not beginning with '..', no NUL, at most 255 bytes)", b.Name, i, field, d.RemoteRef.Key, d.Dir))
					}
					fp := path.Join(d.Dir, field)
					if prev, ok := fileFrom[fp]; ok {
						return plan, nil, reconcilers.TerminalError(fmt.Errorf("bindings %s and %s both deliver file %s to container %s", prev, b.Name, fp, name))
					}
					fileFrom[fp] = b.Name
					plan.Files = append(plan.Files, delivery.File{Path: fp, Value: sec.Fields[field], Mode: 0o400, UID: -1, GID: -1})
					continue
				}
				env := d.Prefix + field
				if !validEnvName(env) {
					return plan, nil, reconcilers.TerminalError(fmt.Errorf("binding %s: spec.dataFrom[%d]: field %q of %s gives env name %q, which is not a valid identifier", b.Name, i, field, d.RemoteRef.Key, env))
				}
				if prev, ok := envFrom[env]; ok {
					return plan, nil, reconcilers.TerminalError(fmt.Errorf("bindings %s and %s both deliver env %s to container %s", prev, b.Name, env, name))
				}
				envFrom[env] = b.Name
				plan.Env[env] = string(sec.Fields[field])
			}
		}
		strategy = strongest(strategy, b.Spec.Rotation.Strategy)
		if b.Spec.Rotation.Signal != "" {
			signal = b.Spec.Rotation.Signal
		}
		if ht := b.Spec.Rotation.HealthTimeout; ht != nil && ht.D() > timeout {
			timeout = ht.D()
		}
	}
	sort.Slice(plan.Files, func(i, j int) bool { return plan.Files[i].Path < plan.Files[j].Path })
	plan.Strategy, plan.Signal, plan.HealthTimeout = strategy, signal, timeout
	return plan, fileFrom, nil
}

// strongest picks the strategy when several bindings select one target:
// an explicit swap strategy wins over in-place ones, which win over auto.
func strongest(a, b v1alpha1.RotationStrategy) v1alpha1.RotationStrategy {
	rank := func(s v1alpha1.RotationStrategy) int {
		switch s {
		case v1alpha1.RotationRecreate:
			return 5
		case v1alpha1.RotationRolling:
			return 4
		case v1alpha1.RotationRestart:
			return 3
		case v1alpha1.RotationSignal:
			return 2
		case v1alpha1.RotationNone:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

func fileOf(t *v1alpha1.FileTarget, v []byte) (delivery.File, error) {
	f := delivery.File{Path: t.Path, Value: v, Mode: 0o400, UID: -1, GID: -1}
	if t.Mode != "" {
		m, err := strconv.ParseUint(t.Mode, 8, 32)
		if err != nil || m > 0o777 {
			return f, fmt.Errorf("mode %q is not an octal permission", t.Mode)
		}
		f.Mode = osFileMode(m)
	}
	if t.UID != nil {
		f.UID = int(*t.UID)
	}
	if t.GID != nil {
		f.GID = int(*t.GID)
	}
	return f, nil
}

// hash is the HMAC under the host key over everything that shapes the
// target: bindings, env names and values, file layout and (withContent)
// file values, and whether files are updated in place. Fields are length
// prefixed so no two different inputs serialise alike.
func (p *Planner) hash(plan containerswap.Plan, withContent bool) string {
	m := hmac.New(sha256.New, p.HostKey)
	put := func(s string) { writeField(m, []byte(s)) }
	put("dso/v1")
	put(strings.Join(plan.Bindings, ","))
	if plan.InPlace() {
		put("in-place")
	} else {
		put("swap")
	}
	for _, k := range sortedKeys(plan.Env) {
		put("env")
		put(k)
		put(plan.Env[k])
	}
	for _, f := range plan.Files {
		put("file")
		put(f.Path)
		put(fmt.Sprintf("%o:%d:%d", f.Mode, f.UID, f.GID))
		if withContent {
			writeField(m, f.Value)
		}
	}
	return hex.EncodeToString(m.Sum(nil))
}

// serviceHash is the HMAC under the host key over a service name and the
// hash of what its bindings deliver.
func (p *Planner) serviceHash(service, planHash string) string {
	m := hmac.New(sha256.New, p.HostKey)
	writeField(m, []byte("dso/v1 swarm"))
	writeField(m, []byte(service))
	writeField(m, []byte(planHash))
	return hex.EncodeToString(m.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedFieldNames(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validFileName reports whether s is one safe path element. Names
// beginning with ".." are the delivery writer's own (..data).
func validFileName(s string) bool {
	return s != "" && s != "." && !strings.HasPrefix(s, "..") && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}
