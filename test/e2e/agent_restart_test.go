//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// mutating are the container actions that change a container. exec_*,
// attach and health_status are not changes.
var mutating = map[events.Action]bool{
	events.ActionCreate: true, events.ActionStart: true, events.ActionStop: true, events.ActionKill: true,
	events.ActionDie: true, events.ActionDestroy: true, events.ActionRename: true, events.ActionUpdate: true,
	events.ActionRestart: true, events.ActionPause: true, events.ActionUnPause: true,
}

// TestAgentRestartChangesNothing is acceptance 5: with every target
// converged (a rolling env+file target and a file-only target), an agent
// restart makes zero mutating Docker calls on the run's containers between
// the restart and readiness + 5s, as `docker events` shows.
func TestAgentRestartChangesNothing(t *testing.T) {
	h := framework.New(t)
	ctx := newCtx(t, 3*time.Minute)
	app := h.RunID + "-restart"
	web := h.Run(t, ctx, framework.ContainerSpec{Name: "web", Labels: map[string]string{labelApp: app}})
	files := h.Run(t, ctx, framework.ContainerSpec{Name: "files", Labels: map[string]string{labelApp: app + "-files"}})
	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/env": randomValue(t), "app/file": randomValue(t)},
		Bindings: []string{
			bindingYAML("web", labelSelector(app), `- remoteRef: {key: app/env}
  env: TOKEN
- remoteRef: {key: app/file}
  file: {path: /run/dso-e2e/token}`, ""),
			bindingYAML("files", labelSelector(app+"-files"), `- remoteRef: {key: app/file}
  file: {path: /run/dso-e2e/token}`, "strategy: none"),
		},
	})
	for _, c := range []*framework.Container{web, files} {
		if _, _, err := a.WaitLog(0, isRotation("rotation complete", c.Name), time.Minute); err != nil {
			t.Fatal(err)
		}
		waitReplaced(t, ctx, h, c.Name, c.ID, 30*time.Second)
	}
	before := runContainers(t, ctx, h)

	if err := a.Stop(); err != nil {
		t.Fatalf("stopping the agent: %v", err)
	}
	since := time.Now()
	from := a.LogLen()
	a.Start()
	time.Sleep(5 * time.Second)
	until := time.Now()

	evs := containerEvents(t, h, since, until)
	// The control: the image's 1s HEALTHCHECK makes exec events all the
	// time, so an empty list means the filter or the window is wrong and
	// "zero mutating" would prove nothing.
	if len(evs) == 0 {
		t.Fatal("no container events of the run at all in the window: the events query sees nothing")
	}
	var bad []string
	for _, e := range evs {
		if mutating[e.Action] {
			bad = append(bad, fmt.Sprintf("%s %s (%s)", e.Action, e.Actor.Attributes["name"], e.Actor.ID[:12]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("the agent restart made %d mutating Docker calls on converged containers: %v", len(bad), bad)
	}
	t.Logf("restart: %d container events of the run between restart and ready+5s, %d mutating", len(evs), len(bad))
	if n := a.CountLog(from, framework.MsgContains("rotation started")); n != 0 {
		t.Errorf("%d rotations started after a restart with nothing changed", n)
	}
	after := runContainers(t, ctx, h)
	for name, c := range before {
		if got, ok := after[name]; !ok || got.ID != c.ID || got.Labels[labelSecretHash] != c.Labels[labelSecretHash] {
			t.Errorf("container %s changed across the restart", name)
		}
	}
}

// containerEvents returns the container events of the run in [since, until].
func containerEvents(t *testing.T, h *framework.Harness, since, until time.Time) []events.Message {
	t.Helper()
	ctx := newCtx(t, 30*time.Second)
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", framework.LabelRun+"="+h.RunID))
	ts := func(tm time.Time) string { return fmt.Sprintf("%d.%09d", tm.Unix(), tm.Nanosecond()) }
	msgs, errs := h.Docker.Events(ctx, events.ListOptions{Since: ts(since), Until: ts(until), Filters: f})
	var out []events.Message
	for {
		select {
		case m := <-msgs:
			out = append(out, m)
		case err := <-errs:
			// The stream ends with io.EOF once until has passed.
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("reading docker events: %v", err)
			}
			sort.Slice(out, func(i, j int) bool { return out[i].TimeNano < out[j].TimeNano })
			return out
		}
	}
}
