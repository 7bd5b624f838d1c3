//go:build e2e

package e2e

// Helpers of the agent acceptance tests (issue 4). They talk to Docker and
// to the agent's log only: the tests are black-box on purpose, so the label
// names below are written out as the contract an operator sees on
// `docker inspect`, not imported from the agent's packages.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// Agents share the host, so no agent test runs in parallel with another: an agent's crash recovery is host-wide. On start, on every relist
// and before every reconcile it finishes or reverts any dso candidate it
// finds (reconcilers/containerswap Interrupted/recoverLocked), including
// one that another agent is swapping at that moment — two agents on one
// host remove each other's candidates ("removal of container ... is already
// in progress", then "candidate exited with code 0"). Production runs one
// agent per host; the tests therefore run one agent at a time.

const (
	labelManaged    = "dso.dev/managed"
	labelSecretHash = "dso.dev/secret-hash"
	labelReplaces   = "dso.dev/replaces"
	labelTargetName = "dso.dev/target-name"
	labelRotation   = "dso.dev/rotation"
	// labelApp is the test's own selector label (dso never writes it).
	labelApp = "dso.test.app"
)

// bindingYAML renders a SecretBinding on the test store. selector and data
// are YAML fragments indented for their place; rotation may be "".
func bindingYAML(name, selector, data, rotation string) string {
	s := fmt.Sprintf(`apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata:
  name: %s
spec:
  storeRef:
    name: %s
  target:
    selector:
%s
  data:
%s
`, name, framework.StoreName, indent(selector, 6), indent(data, 2))
	if rotation != "" {
		s += "  rotation:\n" + indent(rotation, 4) + "\n"
	}
	return s
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

// labelSelector selects containers carrying labelApp=app.
func labelSelector(app string) string {
	return fmt.Sprintf("labels:\n  %s: %q", labelApp, app)
}

// inspectName inspects a container by exact name (Inspect also answers to
// id prefixes, which a test must not confuse with a name).
func inspectName(ctx context.Context, h *framework.Harness, name string) (container.InspectResponse, error) {
	c, err := h.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return c, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	if strings.TrimPrefix(c.Name, "/") != name {
		return c, fmt.Errorf("inspect of %s answered container %s", name, c.Name)
	}
	return c, nil
}

// waitReplaced waits until the container named name is a dso-made
// container other than oldID, running, with a secret-hash label. It is how
// a test sees "converged" from Docker alone.
func waitReplaced(t *testing.T, ctx context.Context, h *framework.Harness, name, oldID string, timeout time.Duration) container.InspectResponse {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		c, err := inspectName(ctx, h, name)
		switch {
		case err != nil:
			last = err.Error()
		case c.ID == oldID:
			last = "still the original container"
		case c.Config.Labels[labelManaged] != "true" || c.Config.Labels[labelSecretHash] == "":
			last = "not labelled by dso"
		case c.State == nil || !c.State.Running:
			last = "not running"
		default:
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s not replaced by a running dso container within %s: %s", name, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runContainers lists this run's containers (all states), by name.
func runContainers(t *testing.T, ctx context.Context, h *framework.Harness) map[string]container.Summary {
	t.Helper()
	cs, err := h.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", framework.LabelRun+"="+h.RunID))})
	if err != nil {
		t.Fatalf("listing the run's containers: %v", err)
	}
	out := map[string]container.Summary{}
	for _, c := range cs {
		out[strings.TrimPrefix(c.Names[0], "/")] = c
	}
	return out
}

// assertNoPlaintext fails when any of the agent's own files (log, stderr,
// state store, config) contains one of the values. The store file is
// encrypted and the delivery tmpfs holds plaintext by design; both are
// skipped, and so is anything under the tmpfs.
func assertNoPlaintext(t *testing.T, a *framework.Agent, values ...string) {
	t.Helper()
	err := filepath.WalkDir(a.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == a.DeliveryDir && d.IsDir() {
			return filepath.SkipDir
		}
		if d.IsDir() || strings.HasSuffix(p, "vault.enc") || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range values {
			if strings.Contains(string(b), v) {
				t.Errorf("agent file %s contains a plaintext secret value", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning the agent's files: %v", err)
	}
}

// rotationLines returns the log lines of finished rotations (complete or
// failed) of a target.
func isRotation(msg, target string) func(framework.LogLine) bool {
	return func(l framework.LogLine) bool {
		return l.Msg() == msg && (target == "" || l.Str("container") == target)
	}
}

func newCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// trackRunVolumes adds, at cleanup time (before the harness removes the
// containers), the volumes of every container of the run to volumes, which
// framework.RemoveVolumesAtEnd removes afterwards. A swap leaves the old
// container's volumes alone on purpose, so nothing else would remove them.
func trackRunVolumes(t *testing.T, h *framework.Harness, volumes *[]string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range runContainers(t, ctx, h) {
			for _, m := range c.Mounts {
				if m.Type == "volume" && m.Name != "" {
					*volumes = append(*volumes, m.Name)
				}
			}
		}
	})
}
