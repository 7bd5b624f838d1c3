package agent

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/internal/docker/fake"
)

// TestAgentRunsOlderSchemaFile: a config whose bindings are still written
// in the older DSO schema (providers:/secrets:) is converted in memory, the
// container converges from the converted binding, and a reload logs the
// conversion warning again (the CLI logs it at start).
func TestAgentRunsOlderSchemaFile(t *testing.T) {
	d := newAgentDir(t)
	d.writeSecret(t, "token", "legacy-value-1")
	cfg := d.config(freePort(t), "", "", fmt.Sprintf(`---
providers:
  old-files:
    type: file
    config: {path: %q}
secrets:
- name: token
  provider: old-files
  inject: env
  targets: {containers: [api]}
`, d.secrets))
	cfgPath, b := d.load(t, cfg)
	if len(b.Warnings) == 0 || !strings.Contains(b.Warnings[0].Error(), "older DSO schema") {
		t.Fatalf("load warnings %v, want the conversion headline", b.Warnings)
	}
	eng := fake.New()
	eng.Add("api", container.Config{Image: "sha256:app"}, container.HostConfig{}, true)
	var mu sync.Mutex
	var logs strings.Builder
	log := funcr.NewJSON(func(obj string) { mu.Lock(); logs.WriteString(obj + "\n"); mu.Unlock() }, funcr.Options{})
	runAgent(t, Options{ConfigPath: cfgPath, Bundle: b, Log: log, Engine: eng})

	waitFor(t, "api converges from the converted binding", func() bool {
		c := eng.ByName("api")
		return c != nil && c.Config.Labels[docker.LabelSecretHash] != ""
	})
	if env := strings.Join(eng.ByName("api").Config.Env, ","); !strings.Contains(env, "TOKEN=legacy-value-1") {
		t.Fatalf("env %q lacks the converted binding's variable", env)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg+"# touched\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	waitFor(t, "reload", func() bool { return strings.Contains(text(), `"configuration reloaded"`) })
	if !strings.Contains(text(), `"configuration warning"`) || !strings.Contains(text(), "older DSO schema") {
		t.Errorf("the reload did not log the conversion warning:\n%s", text())
	}
	if strings.Contains(text(), "legacy-value-1") {
		t.Error("a log line contains the secret value")
	}
}
