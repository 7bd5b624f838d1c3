package sources

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/docker"
)

// requireEngine returns a client of the local Docker engine, or skips (fails
// under DSO_STRICT=1, as in CI) when there is none.
func requireEngine(t *testing.T) *docker.Client {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("DSO_STRICT") == "1" {
			t.Fatalf("%s (DSO_STRICT=1: a Docker engine is required)", msg)
		}
		t.Skipf("%s; skipping (set DSO_STRICT=1 to make this a failure)", msg)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		missing("no docker CLI on PATH")
	}
	c, err := docker.NewClient()
	if err != nil {
		missing("cannot make a Docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := c.Version(ctx); err != nil {
		missing("no Docker engine answers: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dockerCLI(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestInformerAgainstRealEngine checks the event shapes the fake assumes
// (name attribute without "/", oldName with it, labels in the attributes)
// against the engine on this machine. Containers are only created, renamed
// and removed, never started, so the image needs no binary.
func TestInformerAgainstRealEngine(t *testing.T) {
	eng := requireEngine(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	image := "dso-informer-test:" + suffix
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	_ = tw.WriteHeader(&tar.Header{Name: "empty", Mode: 0o644, Size: 0})
	_ = tw.Close()
	dockerCLI(t, tarball.Bytes(), "import", "-", image)
	name, renamed := "dso-informer-test-"+suffix, "dso-informer-test-renamed-"+suffix
	t.Cleanup(func() {
		_ = exec.Command("docker", "rm", "-f", name, renamed).Run()
		_ = exec.Command("docker", "rmi", "-f", image).Run()
	})

	inf, h := startInformer(t, &realEngine{eng}, DockerInformerOptions{})
	eventually(t, 20*time.Second, "informer ready", inf.Ready)

	id := dockerCLI(t, nil, "create", "--name", name, "--label", "dso.test/informer=1", image, "/nothing")
	eventually(t, 20*time.Second, "create seen", func() bool { return h.has(name) })
	if c, ok := inf.Get(name); !ok || c.ID != id || c.Labels["dso.test/informer"] != "1" {
		t.Fatalf("after create: %+v %v; want ID %s with the label", c, ok, id)
	}

	h.take()
	dockerCLI(t, nil, "rename", name, renamed)
	eventually(t, 20*time.Second, "rename seen under both names", func() bool { return h.has(renamed) && h.has(name) })
	if _, ok := inf.Get(name); ok {
		t.Error("old name still cached after rename")
	}
	if c, ok := inf.Get(renamed); !ok || c.ID != id {
		t.Errorf("new name not cached with the same ID after rename: %+v %v", c, ok)
	}

	h.take()
	dockerCLI(t, nil, "rm", renamed)
	eventually(t, 20*time.Second, "destroy seen", func() bool { return h.has(renamed) })
	if _, ok := inf.Get(renamed); ok {
		t.Error("container still cached after destroy")
	}
}

// realEngine narrows *docker.Client to DockerEngine (and proves it fits).
type realEngine struct{ DockerEngine }
