//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// TestAgentKeepsAnonymousVolumes: a swap re-mounts the target's anonymous
// volume by name, whichever way it was declared — `docker run -v /data`
// (Config.Volumes) or `--mount type=volume,dst=/data` (HostConfig.Mounts
// without a source, which is also how Compose v2 declares `volumes: [/data]`).
// A fresh empty volume would lose the app's data (NOTES.md).
func TestAgentKeepsAnonymousVolumes(t *testing.T) {
	volumes := framework.RemoveVolumesAtEnd(t)
	h := framework.New(t)
	trackRunVolumes(t, h, volumes)
	ctx := newCtx(t, 3*time.Minute)
	app := h.RunID + "-volumes"
	forms := []struct {
		name string
		cfg  *container.Config
		hc   *container.HostConfig
	}{
		{name: "v-flag", cfg: &container.Config{Volumes: map[string]struct{}{"/data": {}}}, hc: &container.HostConfig{}},
		{name: "mount-flag", cfg: &container.Config{}, hc: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "/data"}}}},
	}
	origs := map[string]*framework.Container{}
	vols := map[string]string{}
	for _, f := range forms {
		f.cfg.Labels = map[string]string{labelApp: app}
		c := h.RunRaw(t, ctx, f.name, f.cfg, f.hc, nil, false)
		info, err := h.Docker.ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if vols[f.name] = volumeAt(info, "/data"); vols[f.name] == "" {
			t.Fatalf("%s: no anonymous volume at /data", f.name)
		}
		// Removed at the end even if a swap orphaned it.
		*volumes = append(*volumes, vols[f.name])
		origs[f.name] = c
	}
	a := framework.StartAgent(t, h, framework.AgentOptions{
		Secrets: map[string]string{"app/token": randomValue(t)},
		Bindings: []string{bindingYAML("volumes", labelSelector(app), `- remoteRef: {key: app/token}
  env: TOKEN`, "strategy: rolling")},
	})
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			c := origs[f.name]
			if _, _, err := a.WaitLog(0, isRotation("rotation complete", c.Name), time.Minute); err != nil {
				t.Fatal(err)
			}
			now := waitReplaced(t, ctx, h, c.Name, c.ID, 30*time.Second)
			if got := volumeAt(now, "/data"); got != vols[f.name] {
				t.Errorf("after the swap /data is volume %.12s, want the original %.12s: the app lost its data", got, vols[f.name])
			}
			if _, err := h.Docker.VolumeInspect(ctx, vols[f.name]); err != nil {
				t.Errorf("the original volume is gone: %v", err)
			}
		})
	}
}
