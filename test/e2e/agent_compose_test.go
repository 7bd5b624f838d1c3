//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// Containers that `docker compose up` made (issue acceptance: "a container
// that a binding selects but that dso did not create is converged by one
// swap", and docs/delivery.md "Compose: declare the mount"). The machines
// here have Compose v1 (docker-compose 1.29, Debian's package), which names
// containers <project>_<service>_<n>; v2 says <project>-<service>-<n>. The
// name is read from Docker, never assumed, except where the compose file
// itself must spell it (the pre-declared mount), as an operator's would.

// TestComposeTargetConvergedByOneSwap: a compose service selected by
// `compose: {project, service}` with an env and a file item is converged by
// exactly one swap; the new container is still the compose service's (ps
// lists it, down removes it), serves both values, and a second reconcile
// pass (agent restart, then `dso rotate --wait`) changes nothing.
func TestComposeTargetConvergedByOneSwap(t *testing.T) {
	const binding, filePath = "compose-web", "/run/dso-e2e/token"
	h := framework.New(t)
	ctx := newCtx(t, 5*time.Minute)
	envValue, fileValue := randomValue(t), randomValue(t)
	p := newComposeProject(t, h)
	p.write(t, "")
	p.up(t, ctx)
	orig := p.webID(t, ctx)
	origInfo, err := h.Docker.ContainerInspect(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(origInfo.Name, "/")
	t.Logf("compose %s made %s (%.12s)", p.version, name, orig)
	if want := p.containerName("web", 1); name != want {
		t.Errorf("compose named the container %s, want %s (docs/delivery.md)", name, want)
	}

	since := time.Now()
	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/env": envValue, "app/file": fileValue},
		Bindings: []string{bindingYAML(binding, p.selector(), `- remoteRef: {key: app/env}
  env: DSO_E2E_ENV
- remoteRef: {key: app/file}
  file: {path: `+filePath+`, mode: "0444"}`, "")},
	})
	_, line, err := a.WaitLog(0, func(l framework.LogLine) bool {
		return l.Str("container") == name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
	}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if line.Msg() != "rotation complete" {
		t.Fatalf("the swap of the compose container failed: %s", line.Str("reason"))
	}
	if line.Str("strategy") != "rolling" {
		t.Errorf("auto strategy of an env+file binding without host ports resolved to %q, want rolling", line.Str("strategy"))
	}
	c := waitReplaced(t, ctx, h, name, orig, 30*time.Second)

	// Still the compose service's container: labels verbatim, so compose
	// lists it as the service's one and only container.
	for _, k := range []string{"com.docker.compose.project", "com.docker.compose.service", "com.docker.compose.container-number", "com.docker.compose.oneoff", "com.docker.compose.config-hash"} {
		if got, want := c.Config.Labels[k], origInfo.Config.Labels[k]; got != want {
			t.Errorf("label %s of the new container = %q, want the original's %q", k, got, want)
		}
	}
	if got := p.webID(t, ctx); got != c.ID {
		t.Errorf("docker-compose ps -q web lists %.12s, want the new container %.12s", got, c.ID)
	}
	if !c.State.Running {
		t.Errorf("the new container is %s, want running", c.State.Status)
	}
	for netName, ep := range c.NetworkSettings.Networks {
		if !slices.Contains(ep.Aliases, "web") {
			t.Errorf("on %s the new container has aliases %v: other services cannot reach it as web", netName, ep.Aliases)
		}
	}
	if len(c.NetworkSettings.Networks) != len(origInfo.NetworkSettings.Networks) {
		t.Errorf("the new container is on %d networks, the original was on %d", len(c.NetworkSettings.Networks), len(origInfo.NetworkSettings.Networks))
	}
	for path, want := range map[string]string{
		"/env/DSO_E2E_ENV":       sha(envValue),
		"/file?path=" + filePath: sha(fileValue),
	} {
		if got, err := h.ExecGET(ctx, c.ID, "http://127.0.0.1:8080"+path); err != nil || got != want {
			t.Errorf("GET %s in the converged container = %q, %v; want %s", path, got, err, want)
		}
	}
	if _, err := h.Docker.ContainerInspect(ctx, orig); !cerrdefs.IsNotFound(err) {
		t.Errorf("the original container %.12s is still there after the swap (inspect: %v)", orig, err)
	}

	// The second pass: a restart reconciles every container again, and
	// rotate --wait returns once the target's reconcile is done.
	restartAt := time.Now()
	from := a.LogLen()
	a.Restart()
	if out, err := dsoCLI(t, a, "rotate", binding, "--wait"); err != nil || !strings.Contains(out, name+"  unchanged") {
		t.Errorf("dso rotate %s --wait after the restart: %v\n%s\nwant %s unchanged", binding, err, out, name)
	}
	until := time.Now()
	if n := a.CountLog(from, framework.MsgContains("rotation started")); n != 0 {
		t.Errorf("%d rotations started in the second reconcile pass, want 0", n)
	}
	evs := containerEvents(t, h, since, until)
	var creates, destroys, again []string
	for _, e := range evs {
		switch e.Action {
		case events.ActionCreate:
			creates = append(creates, fmt.Sprintf("%s (%.12s)", e.Actor.Attributes["name"], e.Actor.ID))
			if e.Actor.ID != c.ID {
				t.Errorf("container %s (%.12s) was created, which is not the candidate that became %s", e.Actor.Attributes["name"], e.Actor.ID, name)
			}
		case events.ActionDestroy:
			destroys = append(destroys, fmt.Sprintf("%s (%.12s)", e.Actor.Attributes["name"], e.Actor.ID))
			if e.Actor.ID != orig {
				t.Errorf("container %s (%.12s) was removed, which is not the original", e.Actor.Attributes["name"], e.Actor.ID)
			}
		}
		if mutating[e.Action] && time.Unix(0, e.TimeNano).After(restartAt) {
			again = append(again, fmt.Sprintf("%s %s (%.12s)", e.Action, e.Actor.Attributes["name"], e.Actor.ID))
		}
	}
	if len(creates) != 1 || len(destroys) != 1 {
		t.Errorf("docker events from agent start: created %v, removed %v; want one candidate created and the original removed", creates, destroys)
	}
	if len(again) > 0 {
		t.Errorf("the second reconcile pass made %d mutating Docker calls: %v", len(again), again)
	}
	hist := history(t, a, binding)
	if len(hist) != 1 || hist[0].Target != name || hist[0].Result != "succeeded" || hist[0].OldID != orig || hist[0].NewID != c.ID {
		t.Errorf("dso history %s = %+v; want one succeeded rotation of %s from %.12s to %.12s", binding, hist, name, orig, c.ID)
	}
	assertNoPlaintext(t, a, envValue, fileValue)

	// Compose still owns the service: down removes dso's container and
	// then the network (which it could not while a container was on it).
	p.down(t, ctx)
	if got := runContainers(t, ctx, h); len(got) != 0 {
		t.Errorf("after docker-compose down the run still has containers %v", keys(got))
	}
	if ns, err := h.Docker.NetworkList(ctx, networkListOptions(p.filter())); err != nil || len(ns) != 0 {
		t.Errorf("after docker-compose down the project still has %d networks (%v)", len(ns), err)
	}
}

// TestComposePremountedFileBindingNeedsNoSwap: the compose file declares the
// live directory's bind mount as docs/delivery.md says, with the agent
// started first; a file-only binding (auto → none) then only ever writes the
// files: the compose container is never replaced, no candidate is ever
// created, and a changed value reaches the same container.
func TestComposePremountedFileBindingNeedsNoSwap(t *testing.T) {
	const binding, filePath = "compose-files", "/run/dso-e2e/token"
	h := framework.New(t)
	ctx := newCtx(t, 5*time.Minute)
	v1, v2 := randomValue(t), randomValue(t)
	p := newComposeProject(t, h)
	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/file": v1},
		Bindings: []string{bindingYAML(binding, p.selector(), `- remoteRef: {key: app/file}
  file: {path: `+filePath+`, mode: "0444"}`, "strategy: auto")},
	})
	// What the compose file must spell: <delivery dir>/<container name>/live/<dir name>.
	name := p.containerName("web", 1)
	live := filepath.Join(a.DeliveryDir, name, "live", "run__dso-e2e")
	p.write(t, live+":"+filepath.Dir(filePath)+":ro")
	since := time.Now() // compose's own create is in the window, as the control
	p.up(t, ctx)
	id := p.webID(t, ctx)
	if c, err := inspectName(ctx, h, name); err != nil || c.ID != id {
		t.Fatalf("compose's web container is not named %s (the name docs/delivery.md gives for Compose %s): %v", name, p.version, err)
	}

	_, line, err := a.WaitLog(0, func(l framework.LogLine) bool {
		return l.Str("container") == name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
	}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if line.Msg() != "rotation complete" || line.Str("in_place") != "true" || line.Str("strategy") != "none" {
		t.Fatalf("first delivery: %s (strategy %q, in_place %q, reason %q); want an in-place rotation with strategy none",
			line.Msg(), line.Str("strategy"), line.Str("in_place"), line.Str("reason"))
	}
	if got, err := h.ExecGET(ctx, id, "http://127.0.0.1:8080/file?path="+filePath); err != nil || got != sha(v1) {
		t.Fatalf("/file in the compose container = %q, %v; want the first value's hash", got, err)
	}

	from := a.LogLen()
	a.SetSecret("app/file", v2)
	if _, line, err = a.WaitLog(from, func(l framework.LogLine) bool {
		return l.Str("container") == name && (l.Msg() == "rotation complete" || l.Msg() == "rotation failed")
	}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if line.Msg() != "rotation complete" || line.Str("in_place") != "true" {
		t.Fatalf("update: %s (in_place %q, reason %q); want an in-place rotation", line.Msg(), line.Str("in_place"), line.Str("reason"))
	}
	if got := p.webID(t, ctx); got != id {
		t.Fatalf("the compose container changed (%.12s -> %.12s); want the same one", id, got)
	}
	if got, err := h.ExecGET(ctx, id, "http://127.0.0.1:8080/file?path="+filePath); err != nil || got != sha(v2) {
		t.Fatalf("/file after the change = %q, %v; want the new value's hash", got, err)
	}
	if n := a.CountLog(0, framework.MsgContains("rotation started")); n != 0 {
		t.Errorf("%d swaps started, want none", n)
	}
	var other []string
	creates := 0
	for _, e := range containerEvents(t, h, since, time.Now()) {
		switch e.Action {
		case events.ActionCreate:
			creates++
			if e.Actor.ID != id {
				other = append(other, fmt.Sprintf("create %s (%.12s)", e.Actor.Attributes["name"], e.Actor.ID))
			}
		case events.ActionDestroy, events.ActionRename, events.ActionStop, events.ActionRestart:
			other = append(other, fmt.Sprintf("%s %s (%.12s)", e.Action, e.Actor.Attributes["name"], e.Actor.ID))
		}
	}
	if creates == 0 {
		t.Error("docker events show not even compose's create: the events query sees nothing")
	}
	if len(other) > 0 {
		t.Errorf("a pre-mounted file-only target saw %v; want no candidate, no removal, no rename", other)
	}
	if got := runContainers(t, ctx, h); len(got) != 1 {
		t.Errorf("the run has containers %v, want only %s", keys(got), name)
	}
	assertNoPlaintext(t, a, v1, v2)
	p.down(t, ctx)
}

// composeProject is one compose file in a temp dir with a project name of
// this run; its service web runs the test image on a network of its own,
// and everything carries the run labels, so the harness's cleanup removes
// whatever compose (or dso) left.
type composeProject struct {
	bin, file, project string
	version            string // docker-compose version --short: 1.29.2, 2.20.2, v2.x
	h                  *framework.Harness
}

// newComposeProject finds docker-compose, or reports it unavailable (a skip,
// or a failure under DSO_STRICT=1; hack/ensure-docker.sh installs it), and
// names the project after the harness's run.
func newComposeProject(t *testing.T, h *framework.Harness) *composeProject {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		framework.Unavailable(t, "docker-compose is not installed (%v)", err)
		return nil
	}
	out, err := exec.Command(bin, "version", "--short").Output() //nolint:gosec // G204: docker-compose from PATH
	if err != nil {
		t.Fatalf("%s version --short: %v", bin, err)
	}
	return &composeProject{bin: bin, h: h, project: h.Name("compose"), version: strings.TrimSpace(string(out))}
}

// containerName is the name compose gives the n-th container of service:
// <project>_<service>_<n> in v1, <project>-<service>-<n> in v2.
func (p *composeProject) containerName(service string, n int) string {
	sep := "-"
	if strings.HasPrefix(p.version, "1.") {
		sep = "_"
	}
	return fmt.Sprintf("%s%s%s%s%d", p.project, sep, service, sep, n)
}

// write writes the compose file; bind, if set, is one `host:container:ro`
// volume of the service.
func (p *composeProject) write(t *testing.T, bind string) {
	t.Helper()
	p.file = filepath.Join(t.TempDir(), "docker-compose.yml")
	labels := p.h.Labels(nil)
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var l strings.Builder
	for _, k := range names {
		fmt.Fprintf(&l, "%s: %q\n", k, labels[k])
	}
	volumes := ""
	if bind != "" {
		volumes = fmt.Sprintf("volumes:\n  - %q\n", bind)
	}
	yml := fmt.Sprintf(`version: "2.4"
services:
  web:
    image: %q
    networks: [appnet]
    labels:
%s
%s
networks:
  appnet:
    labels:
%s
`, p.h.Image, indent(l.String(), 6), indent(volumes, 4), indent(l.String(), 6))
	if err := os.WriteFile(p.file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *composeProject) selector() string {
	return fmt.Sprintf("compose: {project: %q, service: web}", p.project)
}

// filter selects the project's objects by compose's own label.
func (p *composeProject) filter() filters.Args {
	return filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+p.project))
}

func (p *composeProject) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.bin, append([]string{"-f", p.file, "-p", p.project}, args...)...) //nolint:gosec // G204: the test's own compose binary and file
	cmd.Dir = filepath.Dir(p.file)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *composeProject) up(t *testing.T, ctx context.Context) {
	t.Helper()
	if out, err := p.run(ctx, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d: %v\n%s", err, out)
	}
}

// down runs `docker-compose down` and checks that it removed the project's containers.
func (p *composeProject) down(t *testing.T, ctx context.Context) {
	t.Helper()
	if out, err := p.run(ctx, "down"); err != nil {
		t.Fatalf("docker-compose down: %v\n%s", err, out)
	}
	if ids, err := p.run(ctx, "ps", "-q"); err != nil || strings.TrimSpace(ids) != "" {
		t.Errorf("after docker-compose down, ps -q = %q, %v; want nothing", ids, err)
	}
}

// webID is the one container id `docker-compose ps -q web` lists.
func (p *composeProject) webID(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := p.run(ctx, "ps", "-q", "web")
	if err != nil {
		t.Fatalf("docker-compose ps -q web: %v\n%s", err, out)
	}
	ids := strings.Fields(out)
	if len(ids) != 1 {
		t.Fatalf("docker-compose ps -q web lists %d containers (%q), want exactly one", len(ids), out)
	}
	return ids[0]
}

// dsoCLI runs the dso CLI against the test agent's config and returns its
// stdout; stderr is in the error.
func dsoCLI(t *testing.T, a *framework.Agent, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, framework.BinFromEnv(t, "DSO_BIN"), args...) //nolint:gosec // G204: the tester's own $DSO_BIN
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DSO_FAULT=") && !strings.HasPrefix(kv, "DSO_CONFIG=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "DSO_CONFIG="+a.ConfigPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("dso %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), err
}

// historyRecord is what a test reads of `dso history -o json`.
type historyRecord struct {
	TraceID  string `json:"traceId"`
	Target   string `json:"target"`
	Strategy string `json:"strategy"`
	OldID    string `json:"oldId"`
	NewID    string `json:"newId"`
	Result   string `json:"result"`
}

func history(t *testing.T, a *framework.Agent, binding string) []historyRecord {
	t.Helper()
	out, err := dsoCLI(t, a, "history", binding, "-o", "json")
	if err != nil {
		t.Fatalf("dso history %s -o json: %v\n%s", binding, err, out)
	}
	var recs []historyRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("dso history %s -o json printed %q: %v", binding, out, err)
	}
	return recs
}
