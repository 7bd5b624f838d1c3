//go:build e2e

package e2e

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestAgentFiftyTargetsParallelismTwo is acceptance 7: one binding selects
// 50 containers by label; one SetSecret rotates all of them with
// agent.rotation.parallelism 2, and the agent log shows never more than 2
// swaps in flight at once (and, as the control that the count works, 2 at
// some point). The first round is the initial convergence of containers
// dso did not create; the timed round is the SetSecret.
func TestAgentFiftyTargetsParallelismTwo(t *testing.T) {
	const n, parallelism = 50, 2
	h := framework.New(t)
	ctx := newCtx(t, 8*time.Minute)
	app := h.RunID + "-scale"

	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := range n {
		names[i] = h.Name(fmt.Sprintf("t%02d", i))
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := h.Docker.ContainerCreate(ctx, &container.Config{Image: h.Image, Labels: h.Labels(map[string]string{labelApp: app}), Healthcheck: slowHealthcheck}, nil, nil, nil, name)
			if err == nil {
				err = h.Docker.ContainerStart(ctx, c.ID, container.StartOptions{})
			}
			if err != nil {
				errs <- fmt.Errorf("container %s: %w", name, err)
			}
		}(names[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	v1, v2 := randomValue(t), randomValue(t)
	a := framework.StartAgent(t, h, framework.AgentOptions{
		Parallelism: parallelism,
		Secrets:     map[string]string{"app/token": v1},
		Bindings: []string{bindingYAML("scale", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: rolling")},
	})
	done := func(l framework.LogLine) bool { return l.Msg() == "rotation complete" }
	t0 := time.Now()
	if _, _, err := a.WaitLogN(0, n, done, 4*time.Minute); err != nil {
		t.Fatalf("initial convergence: %v", err)
	}
	initial := time.Since(t0)
	hash1 := commonHash(t, h, names)

	from := a.LogLen()
	t1 := time.Now()
	a.SetSecret("app/token", v2)
	if _, _, err := a.WaitLogN(from, n, done, 4*time.Minute); err != nil {
		t.Fatalf("rotation of %d targets: %v", n, err)
	}
	total := time.Since(t1)
	hash2 := commonHash(t, h, names)
	if hash2 == hash1 {
		t.Fatal("the targets' secret hash did not change with the secret")
	}
	for _, name := range []string{names[0], names[n/2], names[n-1]} {
		if got, err := h.ExecGET(ctx, name, "http://127.0.0.1:8080/env/TOKEN"); err != nil || got != sha(v2) {
			t.Errorf("%s serves %q, %v; want the new value's hash", name, got, err)
		}
	}
	if f := a.CountLog(0, framework.MsgContains("rotation failed")); f != 0 {
		t.Errorf("%d rotations failed", f)
	}

	maxOverlap, swaps := overlap(a.Logs())
	if swaps != 2*n {
		t.Errorf("the log shows %d finished swaps, want %d (two rounds of %d)", swaps, 2*n, n)
	}
	if maxOverlap > parallelism {
		t.Errorf("%d swaps were in flight at once, parallelism is %d", maxOverlap, parallelism)
	}
	if maxOverlap < parallelism {
		t.Errorf("at most %d swap in flight: the overlap count or the parallelism does not work", maxOverlap)
	}
	t.Logf("%d targets: total %.1fs (one SetSecret, parallelism %d; initial convergence %.1fs; max %d swaps in flight)",
		n, total.Seconds(), parallelism, initial.Seconds(), maxOverlap)
}

// slowHealthcheck is the image's HEALTHCHECK command at a 30s interval.
// At the image's 1s, 50 containers make dockerd run 50 execs a second, which
// on this 2-core machine slowed every swap ~10x (a first run: 213s for the
// 50). The gate runs the check command itself through exec, so the interval
// does not slow the swaps; candidates copy this config.
var slowHealthcheck = &container.HealthConfig{Test: []string{"CMD", "/testapp", "probe"}, Interval: 30 * time.Second, Timeout: 2 * time.Second, Retries: 2}

// commonHash returns the secret-hash label all named containers share, and
// fails when they differ (the hash covers bindings and values, not names).
func commonHash(t *testing.T, h *framework.Harness, names []string) string {
	t.Helper()
	ctx := newCtx(t, time.Minute)
	var hash string
	for _, name := range names {
		c, err := inspectName(ctx, h, name)
		if err != nil {
			t.Fatal(err)
		}
		got := c.Config.Labels[labelSecretHash]
		if !c.State.Running || got == "" || (hash != "" && got != hash) {
			t.Fatalf("%s: running %v, hash %.12s; want running with the common hash %.12s", name, c.State.Running, got, hash)
		}
		hash = got
	}
	return hash
}

// overlap computes, from the agent log, the largest number of swaps in
// flight at once: each trace id is an interval from "rotation started" to
// "rotation complete" or "rotation failed". It returns that maximum and the
// number of finished intervals.
func overlap(lines []framework.LogLine) (int, int) {
	type ev struct {
		t     time.Time
		delta int
	}
	startAt := map[string]time.Time{}
	var evs []ev
	for _, l := range lines {
		id := l.Str("trace_id")
		switch l.Msg() {
		case "rotation started":
			startAt[id] = l.Time()
		case "rotation complete", "rotation failed":
			if s, ok := startAt[id]; ok {
				evs = append(evs, ev{s, +1}, ev{l.Time(), -1})
				delete(startAt, id)
			}
		}
	}
	// Ends sort before starts at the same instant: one swap handing its
	// slot to the next is not an overlap.
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].t.Equal(evs[j].t) {
			return evs[i].delta < evs[j].delta
		}
		return evs[i].t.Before(evs[j].t)
	})
	cur, peak := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak, len(evs) / 2
}
