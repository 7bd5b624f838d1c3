package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// testImage returns the dso-testapp image, building it when absent.
func testImage(t *testing.T, c *client.Client) string {
	t.Helper()
	img := os.Getenv("DSO_TESTIMAGE")
	if img == "" {
		img = "dso-testapp:dev"
	}
	if _, err := c.ImageInspect(context.Background(), img); err == nil {
		return img
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "hack", "build-testimage.sh")
	out, err := exec.Command(script, img).CombinedOutput()
	if err != nil {
		t.Fatalf("building %s: %v\n%s", img, err, out)
	}
	return img
}

// engineOrSkip returns a raw client and the adapter, or skips (fails under DSO_STRICT=1).
func engineOrSkip(t *testing.T) (*client.Client, *Client) {
	t.Helper()
	d, err := NewClient()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err = d.Version(ctx)
	}
	if err != nil {
		if os.Getenv("DSO_STRICT") == "1" {
			t.Fatalf("Docker engine required (DSO_STRICT=1): %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d.c, d
}

// TestCandidateOnRealEngine swaps nothing yet: it checks that a candidate
// derived by CandidateSpec is accepted by the real engine (API 1.41 here)
// and keeps the old container's anonymous volume, aliases and networks.
func TestCandidateOnRealEngine(t *testing.T) {
	raw, d := engineOrSkip(t)
	img := testImage(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	labels := map[string]string{"dso.test": run}

	var netIDs []string
	for _, n := range []string{"dso-it-a-" + run, "dso-it-b-" + run} {
		resp, err := raw.NetworkCreate(ctx, n, network.CreateOptions{Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		netIDs = append(netIDs, resp.ID)
	}
	var ids []string
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		vols := map[string]bool{}
		for _, id := range ids {
			if c, err := raw.ContainerInspect(cctx, id); err == nil {
				for _, m := range c.Mounts {
					if m.Name != "" {
						vols[m.Name] = true
					}
				}
			}
			_ = raw.ContainerRemove(cctx, id, container.RemoveOptions{Force: true})
		}
		for v := range vols { // only the anonymous volume this test created
			_ = raw.VolumeRemove(cctx, v, false)
		}
		for _, n := range netIDs {
			_ = raw.NetworkRemove(cctx, n)
		}
	})

	oldSpec := CreateSpec{
		Name: "dso-it-old-" + run,
		Config: &container.Config{
			Image:   img,
			Env:     []string{"KEEP=1"},
			Labels:  labels,
			Volumes: map[string]struct{}{"/cache": {}},
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   container.NetworkMode("dso-it-a-" + run),
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		},
		Networks: []NetworkAttachment{
			{Name: "dso-it-a-" + run, Endpoint: &network.EndpointSettings{Aliases: []string{"svc"}}},
			{Name: "dso-it-b-" + run, Endpoint: &network.EndpointSettings{Aliases: []string{"svc-b"}}},
		},
	}
	oldID, err := d.Create(ctx, oldSpec)
	if oldID != "" {
		ids = append(ids, oldID)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, oldID); err != nil {
		t.Fatal(err)
	}
	old, err := d.Inspect(ctx, oldID)
	if err != nil {
		t.Fatal(err)
	}
	var anon string
	for _, m := range old.Mounts {
		if m.Destination == "/cache" {
			anon = m.Name
		}
	}
	if anon == "" {
		t.Fatalf("old container has no anonymous volume at /cache: %+v", old.Mounts)
	}

	spec, err := CandidateSpec(old, CandidateOptions{
		Name:   "dso-it-cand-" + run,
		Env:    map[string]string{"TOKEN": "v2"},
		Labels: map[string]string{LabelManaged: "true", LabelReplaces: oldID},
	})
	if err != nil {
		t.Fatal(err)
	}
	candID, err := d.Create(ctx, spec)
	if candID != "" {
		ids = append(ids, candID)
	}
	if err != nil {
		t.Fatalf("engine refused the candidate: %v", err)
	}
	if err := d.Start(ctx, candID); err != nil {
		t.Fatal(err)
	}
	cand, err := d.Inspect(ctx, candID)
	if err != nil {
		t.Fatal(err)
	}
	var candVol string
	for _, m := range cand.Mounts {
		if m.Destination == "/cache" {
			candVol = m.Name
		}
	}
	if candVol != anon {
		t.Errorf("candidate /cache volume = %q, want the old anonymous volume %q", candVol, anon)
	}
	if cand.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("candidate restart policy = %q, want no", cand.HostConfig.RestartPolicy.Name)
	}
	if cand.Config.Labels[LabelRestartPolicy] != "unless-stopped" {
		t.Errorf("restart-policy label = %q", cand.Config.Labels[LabelRestartPolicy])
	}
	for n, alias := range map[string]string{"dso-it-a-" + run: "svc", "dso-it-b-" + run: "svc-b"} {
		ep := cand.NetworkSettings.Networks[n]
		if ep == nil {
			t.Errorf("candidate not on network %s", n)
			continue
		}
		if !slices.Contains(ep.Aliases, alias) {
			t.Errorf("network %s aliases = %v, want %s", n, ep.Aliases, alias)
		}
		if slices.Contains(ep.Aliases, oldID[:12]) {
			t.Errorf("network %s: candidate carries the old short-id alias", n)
		}
	}
	if !slices.Contains(cand.Config.Env, "TOKEN=v2") || !slices.Contains(cand.Config.Env, "KEEP=1") {
		t.Errorf("candidate env = %v", cand.Config.Env)
	}

	// SetRestartPolicy restores the remembered policy at cutover.
	p, err := ParseRestartPolicy(cand.Config.Labels[LabelRestartPolicy])
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetRestartPolicy(ctx, candID, p); err != nil {
		t.Fatal(err)
	}
	if cand, err = d.Inspect(ctx, candID); err != nil || cand.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restored restart policy = %v (err %v)", cand.HostConfig.RestartPolicy, err)
	}
}

// IsNotFound must recognise what the real engine answers for a missing
// container and network (the reconcilers treat that as "already gone"), and
// nothing else.
func TestIsNotFoundOnRealEngine(t *testing.T) {
	raw, d := engineOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, inspectErr := d.Inspect(ctx, "dso-no-such-container-0d6f1a")
	_, netErr := raw.NetworkInspect(ctx, "dso-no-such-network-0d6f1a", network.InspectOptions{})
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"missing container", inspectErr, true},
		{"missing container, wrapped", fmt.Errorf("inspect: %w", inspectErr), true},
		{"missing network", netErr, true},
		{"no error", nil, false},
		{"other error", errors.New("no such container"), false},
	}
	for _, tt := range tests {
		if got := IsNotFound(tt.err); got != tt.want {
			t.Errorf("%s: IsNotFound(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
