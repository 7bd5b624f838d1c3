// Package framework is the shared harness of dso's end-to-end tests, which
// run against a real Docker engine.
//
// It exists so every e2e test creates and cleans up Docker objects the same
// safe way: each Harness has a run id, everything it creates carries the
// label dso.test=<run id>, and t.Cleanup removes exactly the objects with
// that label, even when the test fails. Nothing without a dso.test label is
// ever touched; the older DSO deleted containers by name pattern host-wide,
// and this harness must not repeat that on a developer's machine.
//
// The package has no build tag so `go vet ./...` and its own unit tests
// compile without Docker; the e2e tests that use it are tagged `e2e`.
// Helpers that take a testing.TB fail that (sub)test on error, so they work
// from parallel subtests; helpers that return an error leave it to the caller.
package framework

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

const (
	// LabelRun marks every object a harness creates; its value is the run id.
	LabelRun = "dso.test"
	// LabelCreated holds the creation time (Unix seconds) for the stale sweep.
	LabelCreated = "dso.test.created"
	// StaleAfter is how old a labelled object must be before a later run
	// may remove it (a run that was killed before its cleanup ran).
	StaleAfter = time.Hour
	// DefaultImage is the test image built by hack/build-testimage.sh.
	DefaultImage = "dso-testapp:dev"
	// namePrefix starts every container and network name, so test objects
	// are recognisable in `docker ps` at a glance.
	namePrefix = "dso-e2e-"
)

// Harness is one test's handle on the Docker engine.
type Harness struct {
	t      testing.TB
	RunID  string
	Docker *client.Client
	// Image is the test image reference (DSO_TESTIMAGE or DefaultImage).
	Image string
	seq   atomic.Int64
}

// Strict reports whether missing prerequisites must fail instead of skip
// (DSO_STRICT=1, set by CI and by `make test`).
func Strict() bool { return os.Getenv("DSO_STRICT") == "1" }

// Unavailable skips the test because an external part is missing, or fails
// it under DSO_STRICT=1 where a skip would hide that nothing was tested.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (DSO_STRICT=1: e2e prerequisites must be present; run hack/ensure-docker.sh)", msg)
		return
	}
	t.Skipf("%s; skipping (set DSO_STRICT=1 to make this a failure)", msg)
}

var (
	sweepOnce sync.Once
	imageMu   sync.Mutex
	imageOK   = map[string]bool{}
)

// New connects to the engine (negotiating the API version: the engines here
// speak 1.41), makes sure the test image exists, sweeps stale runs once per
// process, and registers the cleanup of everything this run creates.
func New(t testing.TB) *Harness {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		Unavailable(t, "cannot configure a Docker client from the environment: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		_ = cli.Close()
		Unavailable(t, "no Docker engine answers at %s: %v", cli.DaemonHost(), err)
	}
	h := &Harness{t: t, RunID: newRunID(), Docker: cli, Image: os.Getenv("DSO_TESTIMAGE")}
	if h.Image == "" {
		h.Image = DefaultImage
	}
	// Registered before anything is created, so a Fatal in a later step
	// still removes what was made up to that point.
	t.Cleanup(h.cleanup)
	sweepOnce.Do(func() {
		if err := SweepStale(context.Background(), cli, time.Now()); err != nil {
			t.Logf("stale sweep: %v", err)
		}
	})
	h.ensureImage()
	return h
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("0102-150405") + "-" + hex.EncodeToString(b)
}

// Labels returns the labels every object of this run carries, merged with extra.
func (h *Harness) Labels(extra map[string]string) map[string]string {
	l := map[string]string{LabelRun: h.RunID, LabelCreated: strconv.FormatInt(time.Now().Unix(), 10)}
	for k, v := range extra {
		if k == LabelRun || k == LabelCreated {
			continue // the run labels are what cleanup relies on
		}
		l[k] = v
	}
	return l
}

// Name returns the Docker object name prefix for short in this run.
func (h *Harness) Name(short string) string { return namePrefix + h.RunID + "-" + short }

// uniqueName adds a sequence number, so table tests may reuse a short name.
func (h *Harness) uniqueName(short string) string {
	return h.Name(fmt.Sprintf("%s-%d", short, h.seq.Add(1)))
}

// ensureImage builds the test image once per process if it is absent.
func (h *Harness) ensureImage() {
	h.t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	if imageOK[h.Image] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := h.Docker.ImageInspect(ctx, h.Image); err == nil {
		imageOK[h.Image] = true
		return
	} else if !cerrdefs.IsNotFound(err) {
		h.t.Fatalf("inspecting test image %s: %v", h.Image, err)
	}
	root, err := RepoRoot()
	if err != nil {
		h.t.Fatalf("test image %s is absent and cannot be built: %v", h.Image, err)
	}
	h.t.Logf("test image %s is absent; building it with hack/build-testimage.sh", h.Image)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "build-testimage.sh"), h.Image)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("building test image %s failed: %v\n%s", h.Image, err, out)
	}
	imageOK[h.Image] = true
}

// RepoRoot finds the dso module root above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("reading the working directory: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/dso-dev/dso\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/dso-dev/dso above the working directory; run the tests from inside the repository")
		}
		dir = parent
	}
}

func runFilter(runID string) filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelRun+"="+runID))
}

// cleanup removes every container and network labelled with this run id.
// On failure it first logs each container's state and output (the testapp
// only ever prints hashes, never values), which is what one needs to debug
// a failed e2e run after its containers are gone.
func (h *Harness) cleanup() {
	defer func() { _ = h.Docker.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := removeLabelled(ctx, h.Docker, runFilter(h.RunID), func(id string, labels map[string]string) bool {
		if h.t.Failed() {
			h.logContainer(ctx, id)
		}
		return labels[LabelRun] == h.RunID
	}); err != nil {
		h.t.Errorf("cleanup of run %s left objects behind: %v", h.RunID, err)
	}
}

// removeLabelled removes the containers (forcefully, with their anonymous
// volumes) and then the networks matched by f, for which keep also returns
// true. keep is a second check on the labels themselves, so that a filter
// mistake can never widen what gets deleted.
func removeLabelled(ctx context.Context, cli *client.Client, f filters.Args, keep func(id string, labels map[string]string) bool) error {
	var errs []error
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range cs {
		if !keep(c.ID, c.Labels) {
			continue
		}
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", shortID(c.ID), err))
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing networks: %w", err))...)
	}
	for _, n := range ns {
		if !keep(n.ID, n.Labels) {
			continue
		}
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// IsStale reports whether an object with these labels belongs to an earlier
// test run that is older than StaleAfter. Anything without the dso.test
// label, or without a readable creation time, is never stale.
func IsStale(labels map[string]string, now time.Time) bool {
	if labels[LabelRun] == "" {
		return false
	}
	sec, err := strconv.ParseInt(labels[LabelCreated], 10, 64)
	if err != nil {
		return false
	}
	return now.Sub(time.Unix(sec, 0)) > StaleAfter
}

// SweepStale removes containers and networks of test runs older than
// StaleAfter: runs that were killed (SIGKILL, OOM, a CI timeout) before
// their t.Cleanup could run. Runs in progress elsewhere are younger and left alone.
func SweepStale(ctx context.Context, cli *client.Client, now time.Time) error {
	f := filters.NewArgs(filters.Arg("label", LabelRun))
	return removeLabelled(ctx, cli, f, func(_ string, labels map[string]string) bool { return IsStale(labels, now) })
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// logContainer writes a container's state, health log and last output lines
// to the test log.
func (h *Harness) logContainer(ctx context.Context, id string) {
	info, err := h.Docker.ContainerInspect(ctx, id)
	if err != nil {
		h.t.Logf("container %s: inspect failed: %v", shortID(id), err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "container %s (%s): status %s, exit code %d", info.Name, shortID(id), info.State.Status, info.State.ExitCode)
	if hs := info.State.Health; hs != nil {
		fmt.Fprintf(&b, ", health %s", hs.Status)
		for _, r := range hs.Log {
			fmt.Fprintf(&b, "\n  healthcheck exit %d: %s", r.ExitCode, strings.TrimSpace(r.Output))
		}
	}
	if out, err := h.Logs(ctx, id, 20); err == nil && out != "" {
		fmt.Fprintf(&b, "\n  last output:\n%s", out)
	}
	h.t.Log(b.String())
}
