//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// Labels dso writes on Swarm objects (the contract an operator sees on
// docker service inspect / docker secret ls).
const labelService = "dso.dev/service"

// secretPath is where the binding delivers the value inside each task: an
// absolute Swarm secret target (Swarm mounts it there, not under
// /run/secrets).
const secretPath = "/etc/app/token"

// TestAgentSwarmService is DESIGN §7 against the real engine: a binding
// that selects a Swarm service gets its value as a versioned Docker secret,
// and a change rolls the service through Swarm's own rolling update. A
// value that makes the new tasks unhealthy is rolled back by Swarm
// (update_config failure_action rollback): the binding is Degraded and the
// old value keeps being served.
//
// If the engine is in no swarm, the test makes it a single-node one
// (docker swarm init on 127.0.0.1) and leaves the swarm again at the end;
// an engine that already is a manager is used as it is.
func TestAgentSwarmService(t *testing.T) {
	h := framework.New(t)
	ctx := newCtx(t, 12*time.Minute)
	ensureSwarmManager(t, ctx, h)

	oldValue, newValue, badValue := randomValue(t), randomValue(t), randomValue(t)
	svcName := h.Name("web")
	svcID := createService(t, ctx, h, svcName, 2, []string{"TESTAPP_UNHEALTHY_IF_FILE=" + secretPath + ":" + sha(badValue)})
	waitTasks(t, ctx, h, svcID, 2, "", 3*time.Minute)

	// A service scaled to 0: Swarm has no task to replace and sets no
	// UpdateStatus at all, which must not read as an update that never ends.
	idleValue := randomValue(t)
	idleName := h.Name("idle")
	idleID := createService(t, ctx, h, idleName, 0, nil)

	a := framework.StartAgent(t, h, framework.AgentOptions{
		RotationTimeout: time.Minute,
		Secrets:         map[string]string{"app/token": oldValue, "app/idle": idleValue},
		Bindings: []string{bindingYAML("swarm-web", "swarm: {service: "+svcName+"}", `- remoteRef: {key: app/token}
  file: {path: `+secretPath+`, mode: "0440"}`, ""), bindingYAML("swarm-idle", "swarm: {service: "+idleName+"}", `- remoteRef: {key: app/idle}
  file: {path: `+secretPath+`}`, "")},
	})
	_, idleDone, err := a.WaitLog(0, func(l framework.LogLine) bool {
		return (l.Msg() == "rotation complete" || l.Msg() == "rotation failed") && l.Str("service") == idleName
	}, 5*time.Minute)
	if err != nil {
		t.Fatalf("%v\nservice: %s", err, describeService(ctx, h, idleID))
	}
	if idleDone.Msg() != "rotation complete" {
		t.Errorf("the 0-replica service's rotation: %s (%s); want complete", idleDone.Msg(), idleDone.Str("reason"))
	}
	if got := dsoSecrets(t, ctx, h, idleName); len(got) != 1 || len(inspectService(t, ctx, h, idleID).Spec.TaskTemplate.ContainerSpec.Secrets) != 1 {
		t.Errorf("0-replica service: dso secrets %v, want one, referenced by the spec", got)
	}

	// First converge: the service gets the secret, every task serves it.
	if _, _, err := a.WaitLog(0, isServiceRotation("rotation complete", svcName), 4*time.Minute); err != nil {
		t.Fatalf("%v\nservice: %s", err, describeService(ctx, h, svcID))
	}
	first := waitTasks(t, ctx, h, svcID, 2, sha(oldValue), 2*time.Minute)
	firstSecrets := dsoSecrets(t, ctx, h, svcName)
	if len(firstSecrets) != 1 {
		t.Fatalf("dso secrets of the service after the first converge: %v, want one", firstSecrets)
	}
	svc := inspectService(t, ctx, h, svcID)
	if svc.Spec.Labels[labelSecretHash] == "" {
		t.Fatalf("service labels %v: no %s", svc.Spec.Labels, labelSecretHash)
	}
	if u := svc.Spec.UpdateConfig; u == nil || u.FailureAction != swarm.UpdateFailureActionRollback || u.Parallelism != 1 {
		t.Fatalf("update_config %+v: the service's own settings must be kept", u)
	}
	for _, ref := range svc.Spec.TaskTemplate.ContainerSpec.Secrets {
		if strings.Contains(ref.SecretName, oldValue) {
			t.Fatalf("secret name %s contains the value", ref.SecretName)
		}
	}

	// A new value: a new Docker secret, Swarm rolls new tasks, the old
	// secret is removed once no task uses it.
	from := a.LogLen()
	a.SetSecret("app/token", newValue)
	if _, _, err := a.WaitLog(from, isServiceRotation("rotation complete", svcName), 4*time.Minute); err != nil {
		t.Fatalf("%v\nservice: %s", err, describeService(ctx, h, svcID))
	}
	second := waitTasks(t, ctx, h, svcID, 2, sha(newValue), 2*time.Minute)
	for id := range second {
		if _, ok := first[id]; ok {
			t.Errorf("task %s served before and after the rotation: Swarm did not replace it", id)
		}
	}
	svc = inspectService(t, ctx, h, svcID)
	if svc.UpdateStatus == nil || svc.UpdateStatus.State != swarm.UpdateStateCompleted {
		t.Errorf("update status %+v, want completed", svc.UpdateStatus)
	}
	secondSecrets := waitSecrets(t, ctx, h, svcName, 1, 2*time.Minute)
	if secondSecrets[0] == firstSecrets[0] {
		t.Errorf("the rotation reused secret %s; want a new one", secondSecrets[0])
	}

	// A value that makes the new tasks unhealthy: Swarm's failure action
	// rolls the update back; the binding is Degraded and the tasks serve
	// the previous value, whose secret is kept.
	from = a.LogLen()
	a.SetSecret("app/token", badValue)
	_, failed, err := a.WaitLog(from, isServiceRotation("rotation failed", svcName), 6*time.Minute)
	if err != nil {
		t.Fatalf("%v\nservice: %s", err, describeService(ctx, h, svcID))
	}
	if !strings.Contains(failed.Str("reason"), "rolled the update back") {
		t.Errorf("rotation failed with reason %q; want Swarm's rollback named", failed.Str("reason"))
	}
	svc = inspectService(t, ctx, h, svcID)
	if svc.UpdateStatus == nil || svc.UpdateStatus.State != swarm.UpdateStateRollbackCompleted {
		t.Errorf("update status %+v, want rollback_completed", svc.UpdateStatus)
	}
	waitTasks(t, ctx, h, svcID, 2, sha(newValue), 2*time.Minute)
	if got := dsoSecrets(t, ctx, h, svcName); !slices.Contains(got, secondSecrets[0]) {
		t.Errorf("dso secrets after the rollback %v: the served value's secret %s is gone", got, secondSecrets[0])
	}
	m, err := a.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := framework.MetricValue(m, `dso_binding_condition{binding="swarm-web",condition="Degraded"}`); v != 1 {
		t.Errorf("dso_binding_condition Degraded = %v, want 1", v)
	}
	if v, _ := framework.MetricValue(m, `dso_rotations_total{result="succeeded",strategy="swarm"}`); v < 2 {
		t.Errorf(`dso_rotations_total{result="succeeded",strategy="swarm"} = %v, want >= 2`, v)
	}
	if v, _ := framework.MetricValue(m, `dso_rotations_total{result="rolled-back",strategy="swarm"}`); v < 1 {
		t.Errorf(`dso_rotations_total{result="rolled-back",strategy="swarm"} = %v, want >= 1`, v)
	}
	desc := runCLI(t, a, "describe", "binding", "swarm-web")
	if !strings.Contains(desc, "service/"+svcName) || !regexpLine(desc, `Degraded\s+True`) {
		t.Errorf("dso describe binding swarm-web does not show the service as a Degraded target:\n%s", desc)
	}
	// Swarm's rollback stands: the agent does not roll the bad value again.
	before := a.CountLog(from, isServiceRotation("rotation started", svcName))
	time.Sleep(20 * time.Second) // one housekeeping relist (15s) at least
	if n := a.CountLog(from, isServiceRotation("rotation started", svcName)); n != before {
		t.Errorf("%d more rotations of the rolled-back value started; want none until the value changes", n-before)
	}
	assertNoPlaintext(t, a, oldValue, newValue, badValue, idleValue)
}

func isServiceRotation(msg, service string) func(framework.LogLine) bool {
	return func(l framework.LogLine) bool { return l.Msg() == msg && l.Str("service") == service }
}

// ensureSwarmManager makes the engine a single-node swarm manager if it is
// in no swarm, and registers leaving that swarm (and removing the bridge
// network swarm init created) at the end. A manager is used as is; a
// worker or a node in another state cannot run the test.
func ensureSwarmManager(t *testing.T, ctx context.Context, h *framework.Harness) {
	t.Helper()
	info, err := h.Docker.Info(ctx)
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			framework.Unavailable(t, "the engine is a Swarm worker; the Swarm test needs a manager")
		}
		t.Log("the engine already is a Swarm manager: using its swarm as it is")
		return
	case swarm.LocalNodeStateInactive:
	default:
		framework.Unavailable(t, "the engine's swarm state is %q", info.Swarm.LocalNodeState)
	}
	_, gwErr := h.Docker.NetworkInspect(ctx, "docker_gwbridge", network.InspectOptions{})
	hadGW := gwErr == nil
	if _, err := h.Docker.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		t.Fatalf("docker swarm init --advertise-addr 127.0.0.1: %v", err)
	}
	t.Log("initialised a single-node swarm on 127.0.0.1 for this test")
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Docker.SwarmLeave(cctx, true); err != nil {
			t.Errorf("docker swarm leave --force: %v", err)
		}
		if !hadGW {
			if err := h.Docker.NetworkRemove(cctx, "docker_gwbridge"); err != nil && !cerrdefs.IsNotFound(err) {
				t.Logf("removing docker_gwbridge, which swarm init created: %v", err)
			}
		}
	})
}

// createService creates a replicated service of the test image (by image
// ID: Swarm then never asks a registry) with the image's HEALTHCHECK and an
// update_config of its own — start-first, one task at a time, failure
// action rollback — and registers removing it and every secret made for it.
func createService(t *testing.T, ctx context.Context, h *framework.Harness, name string, replicas uint64, env []string) string {
	t.Helper()
	img, err := h.Docker.ImageInspect(ctx, h.Image)
	if err != nil {
		t.Fatalf("inspecting %s: %v", h.Image, err)
	}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: h.Labels(nil)},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: img.ID, Env: env, Labels: h.Labels(nil), StopGracePeriod: ptrDuration(2 * time.Second)},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptrDuration(time.Second)},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionRollback,
			Monitor: 5 * time.Second, MaxFailureRatio: 0},
		RollbackConfig: &swarm.UpdateConfig{Parallelism: 0, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionPause, Monitor: 2 * time.Second},
	}
	resp, err := h.Docker.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("creating service %s: %v", name, err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := h.Docker.ServiceRemove(cctx, resp.ID); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing service %s: %v", name, err)
		}
		// Secrets can go once no task uses them any more.
		deadline := time.Now().Add(time.Minute)
		for {
			var left []string
			for _, f := range []filters.Args{
				filters.NewArgs(filters.Arg("label", labelService+"="+name)),
				filters.NewArgs(filters.Arg("label", framework.LabelRun+"="+h.RunID)),
			} {
				list, err := h.Docker.SecretList(cctx, swarm.SecretListOptions{Filters: f})
				if err != nil {
					t.Errorf("listing secrets: %v", err)
					return
				}
				for _, s := range list {
					if s.Spec.Labels[labelService] != name && s.Spec.Labels[framework.LabelRun] != h.RunID {
						continue // the filter is trusted only with a second look
					}
					if err := h.Docker.SecretRemove(cctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
						left = append(left, s.Spec.Name+": "+err.Error())
					}
				}
			}
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("secrets of service %s left behind: %v", name, left)
				return
			}
			time.Sleep(time.Second)
		}
	})
	return resp.ID
}

func ptrDuration(d time.Duration) *time.Duration { return &d }

func inspectService(t *testing.T, ctx context.Context, h *framework.Harness, id string) swarm.Service {
	t.Helper()
	s, _, err := h.Docker.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspecting service %s: %v", id, err)
	}
	return s
}

// describeService summarises a service's update status and tasks for a
// failure message.
func describeService(ctx context.Context, h *framework.Harness, id string) string {
	s, _, err := h.Docker.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	if st := s.UpdateStatus; st != nil {
		fmt.Fprintf(&b, "update %s (%s);", st.State, st.Message)
	}
	tasks, _ := h.Docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
	for _, t := range tasks {
		fmt.Fprintf(&b, " task %s slot %d desired %s state %s %s;", t.ID[:12], t.Slot, t.DesiredState, t.Status.State, t.Status.Err)
	}
	return b.String()
}

// waitTasks waits until n tasks of the service run and, when wantHash is
// set, every one of them serves a file at secretPath hashing to it. It
// returns the running tasks' ids.
func waitTasks(t *testing.T, ctx context.Context, h *framework.Harness, id string, n int, wantHash string, timeout time.Duration) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		tasks, err := h.Docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id), filters.Arg("desired-state", "running"))})
		ids := map[string]bool{}
		ok := err == nil
		if err != nil {
			last = err.Error()
		}
		running := 0
		for _, task := range tasks {
			if task.Status.State != swarm.TaskStateRunning || task.Status.ContainerStatus == nil {
				continue
			}
			running++
			ids[task.ID] = true
			if wantHash == "" {
				continue
			}
			got, err := h.ExecGET(ctx, task.Status.ContainerStatus.ContainerID, "http://127.0.0.1:8080/file?path="+secretPath)
			if err != nil || strings.TrimSpace(got) != wantHash {
				ok = false
				last = fmt.Sprintf("task %s serves %q (%v)", task.ID[:12], strings.TrimSpace(got), err)
			}
		}
		if ok && running != n {
			ok = false
			last = fmt.Sprintf("%d of %d tasks running", running, n)
		}
		if ok && len(tasks) == n {
			return ids
		}
		if ok {
			last = fmt.Sprintf("%d tasks desired running, want %d", len(tasks), n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s not as expected within %s: %s\n%s", id, timeout, last, describeService(ctx, h, id))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dsoSecrets lists the names of the secrets dso made for the service.
func dsoSecrets(t *testing.T, ctx context.Context, h *framework.Harness, service string) []string {
	t.Helper()
	list, err := h.Docker.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", labelService+"="+service))})
	if err != nil {
		t.Fatalf("listing secrets: %v", err)
	}
	var out []string
	for _, s := range list {
		if s.Spec.Labels[labelManaged] == "true" {
			out = append(out, s.Spec.Name)
		}
	}
	sort.Strings(out)
	return out
}

// waitSecrets waits until exactly n dso secrets of the service remain (an
// old one goes once no task uses it).
func waitSecrets(t *testing.T, ctx context.Context, h *framework.Harness, service string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := dsoSecrets(t, ctx, h, service)
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("dso secrets of %s: %v, want %d within %s (the old one removed)", service, got, n, timeout)
		}
		time.Sleep(time.Second)
	}
}

// runCLI runs the dso CLI against the agent's config.
func runCLI(t *testing.T, a *framework.Agent, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Getenv("DSO_BIN"), args...) //nolint:gosec // G204: the tester's own $DSO_BIN
	cmd.Env = append(os.Environ(), "DSO_CONFIG="+a.ConfigPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dso %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func regexpLine(text, pattern string) bool {
	return regexp.MustCompile(pattern).MatchString(text)
}
