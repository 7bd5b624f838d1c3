package orphancleanup

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// TestRecoversFromDockerStateAlone preloads what `docker ps -a` shows after
// crashes at different points and checks one pass leaves exactly one
// running container per target, and never touches containers dso did not
// create even when their names look like the older DSO's leftovers.
func TestRecoversFromDockerStateAlone(t *testing.T) {
	eng := fake.New()
	hc := container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}
	cand := func(name, target, replaces string, running bool) {
		c := eng.Add(name, container.Config{Image: "img", Labels: map[string]string{
			docker.LabelManaged: "true", docker.LabelTargetName: target, docker.LabelReplaces: replaces,
			docker.LabelRotation: "trace-" + target, docker.LabelRestartPolicy: "always", docker.LabelSecretHash: "new",
		}}, container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}}, running)
		if running {
			c.Health = "healthy"
		}
	}
	// a: crashed after renaming old to retired; candidate healthy -> finish.
	oldA := eng.Add("a-dso-retired-1", container.Config{Image: "img"}, hc, true)
	cand("a-dso-1", "a", oldA.ID, true)
	// b: crashed after create; old still named b -> remove candidate.
	oldB := eng.Add("b", container.Config{Image: "img"}, hc, true)
	cand("b-dso-1", "b", oldB.ID, false)
	// c: crashed after the cutover renames, old not yet removed -> remove old.
	oldC := eng.Add("c-dso-retired-1", container.Config{Image: "img"}, hc, true)
	cand("c", "c", oldC.ID, true)
	// d: recreate crashed after stopping old; candidate not started -> revert, old started.
	oldD := eng.Add("d", container.Config{Image: "img"}, hc, false)
	cand("d-dso-1", "d", oldD.ID, false)
	// Decoys dso did not create.
	eng.Add("web_dso_backup_1", container.Config{Image: "img"}, hc, false)
	eng.Add("web_dso_new_1", container.Config{Image: "img"}, hc, true)

	var logs strings.Builder
	log := funcr.New(func(_, a string) { logs.WriteString(a + "\n") }, funcr.Options{})
	swap := &containerswap.Reconciler{Engine: eng, Locks: containerswap.NewLocks(), Log: log}
	r := &Reconciler{Swap: swap, Log: log}
	if _, err := r.Reconcile(context.Background(), Key{}); err != nil {
		t.Fatal(err)
	}
	run, n := r.Last()
	if n != 1 || strings.Join(run.Found, ",") != "a,b,c,d" {
		t.Fatalf("run = %+v (%d)", run, n)
	}
	var names []string
	for _, c := range eng.Containers() {
		names = append(names, c.Name)
		if (c.Name == "a" || c.Name == "b" || c.Name == "c" || c.Name == "d") && !c.Running {
			t.Errorf("%s not running", c.Name)
		}
	}
	if got := strings.Join(names, ","); got != "a,b,c,d,web_dso_backup_1,web_dso_new_1" {
		t.Fatalf("containers after recovery: %s", got)
	}
	if a := eng.ByName("a"); a.Config.Labels[docker.LabelSecretHash] != "new" || a.HostConfig.RestartPolicy.Name != container.RestartPolicyAlways {
		t.Errorf("a not finished: %+v %v", a.Config.Labels, a.HostConfig.RestartPolicy)
	}
	if b := eng.ByName("b"); b.ID != oldB.ID {
		t.Errorf("b is not the old container")
	}
	if !strings.Contains(logs.String(), "Automatic recovery") {
		t.Errorf("no 'Automatic recovery' log line:\n%s", logs.String())
	}

	// A second pass finds nothing and changes nothing.
	eng.ResetActions()
	if _, err := r.Reconcile(context.Background(), Key{}); err != nil {
		t.Fatal(err)
	}
	if run, _ := r.Last(); len(run.Found) != 0 || len(eng.ActionStrings()) != 0 {
		t.Fatalf("second pass: found %v, actions %v", run.Found, eng.ActionStrings())
	}
}
