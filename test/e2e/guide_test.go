//go:build e2e

package e2e

// TestOperationsGuide is issue 5's acceptance: it walks
// /work/shared/seed/operational-guide.txt (the Day-2 guide, a contract word
// for word) against an agent started the way an operator starts one
// without systemd, and checks what every pipeline of the guide prints.
//
// Substitutions, so the guide runs in a test: `docker dso` -> $DSO_BIN,
// `sudo ` dropped, /etc/dso/dso.yaml, /var/lib/dso/state/, /backup/ and
// ~/.dso/vault.enc -> the test's temp paths, `sudo nano /etc/dso/dso.yaml`
// -> `dso config edit` with $EDITOR a script that makes the guide's change,
// systemd -> the no-systemd supervisor (`dso system enable|disable`).
//
// Lines skipped because they are not dso commands (each is logged as
// skipped with its reason): systemctl status/restart/is-active, journalctl,
// ping, curl (the upgrade download and provider endpoint), sha256sum,
// cp/install of the binary, ls -la and df -h of /etc/dso..., docker ps,
// docker inspect, docker stats, top, iostat, netstat, the vault/aws/az CLIs
// and the docker-compose.yml healthcheck snippet.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dso-dev/dso/test/e2e/framework"
)

// guideEnv is one operator's shell: the binary, the config and run dir,
// and the paths the guide's commands are rewritten to.
type guideEnv struct {
	t        *testing.T
	bin      string
	dir      string
	cfg      string
	stateDir string
	logFile  string
	backup   string
	vault    string
	runDir   string
	editor   string // current $EDITOR script ("" = none)
	stdin    string // input of the next sh call (a secret value)
}

// result is what one shell line did.
type result struct {
	out    string // stdout: what the next command of a pipeline sees
	stderr string // stderr of the whole line (not piped on)
	code   int
}

// sub rewrites a guide line into the command this test runs.
func (g *guideEnv) sub(line string) string {
	s := strings.TrimPrefix(line, "sudo ")
	s = strings.ReplaceAll(s, "sudo docker dso", "docker dso")
	s = strings.ReplaceAll(s, "docker dso", g.bin)
	s = strings.ReplaceAll(s, "/etc/dso/dso.yaml", g.cfg)
	s = strings.ReplaceAll(s, "/var/lib/dso/state/", g.stateDir+"/")
	s = strings.ReplaceAll(s, "/backup/", g.backup+"/")
	s = strings.ReplaceAll(s, "~/.dso/vault.enc", g.vault)
	// The guide restores a backup of 2024-05-12; ours is today's.
	s = strings.ReplaceAll(s, "dso-state-20240512", "dso-state-$(date +%Y%m%d)")
	return s
}

// sh runs a shell line (already substituted) with the operator's env. A
// stream command (`-f`, `--watch`) is stopped after d: its whole process
// group gets SIGTERM (only processes this call started).
func (g *guideEnv) sh(shell, cmdline string, d time.Duration, stream bool) result {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, "-c", cmdline)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	env := []string{"DSO_CONFIG=" + g.cfg, "DSO_RUN_DIR=" + g.runDir}
	if g.editor != "" {
		env = append(env, "EDITOR="+g.editor, "VISUAL=")
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DSO_") || strings.HasPrefix(kv, "EDITOR=") || strings.HasPrefix(kv, "VISUAL=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	var buf, ebuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &ebuf
	cmd.Stdin = strings.NewReader(g.stdin)
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	if stream && ctx.Err() != nil {
		code = 0 // stopped by us after d, as an operator presses ^C
	} else if ctx.Err() != nil {
		g.t.Errorf("%q did not finish within %s:\n%s%s", cmdline, d, buf.String(), ebuf.String())
	}
	return result{out: buf.String(), stderr: ebuf.String(), code: code}
}

// check is what a guide line's result must satisfy; it returns a short
// note for the log ("" for plain ok) or an error.
type check func(r result) (string, error)

// step runs one guide line and logs `guide: <line> -> ...`.
func (g *guideEnv) step(line string, c check) result {
	g.t.Helper()
	return g.stepOpts(line, "sh", 60*time.Second, false, c)
}

func (g *guideEnv) stream(line string, d time.Duration, c check) result {
	g.t.Helper()
	return g.stepOpts(line, "sh", d, true, c)
}

func (g *guideEnv) stepOpts(line, shell string, d time.Duration, stream bool, c check) result {
	g.t.Helper()
	return g.stepAs(line, g.sub(line), shell, d, stream, c)
}

// stepAs runs cmdline in place of the guide's line (nano -> config edit).
func (g *guideEnv) stepAs(line, cmdline, shell string, d time.Duration, stream bool, c check) result {
	g.t.Helper()
	r := g.sh(shell, cmdline, d, stream)
	if c == nil {
		c = exit0
	}
	note, err := c(r)
	switch {
	case err != nil:
		g.t.Errorf("guide: %s -> FAILED: %v\n--- output (exit %d) ---\n%s%s", line, err, r.code, r.out, r.stderr)
	case note == "":
		g.t.Logf("guide: %s -> ok\n%s%s", line, indentOut(r.out), stderrNote(r))
	default:
		g.t.Logf("guide: %s -> checked (%s)\n%s%s", line, note, indentOut(r.out), stderrNote(r))
	}
	return r
}

func (g *guideEnv) skip(line, reason string) {
	g.t.Logf("guide: %s -> skipped (%s)", line, reason)
}

func stderrNote(r result) string {
	if strings.TrimSpace(r.stderr) == "" {
		return ""
	}
	return "\n    stderr: " + strings.ReplaceAll(strings.TrimRight(r.stderr, "\n"), "\n", "\n    stderr: ")
}

func indentOut(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (no output)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 40 {
		lines = append(lines[:40], fmt.Sprintf("... (%d more lines)", len(lines)-40))
	}
	return "    " + strings.Join(lines, "\n    ")
}

func exit0(r result) (string, error) {
	if r.code != 0 {
		return "", fmt.Errorf("exit code %d, want 0", r.code)
	}
	return "", nil
}

// nonEmpty checks a pipeline printed something (grep's exit 1 means no match).
func nonEmpty(what string) check {
	return func(r result) (string, error) {
		if strings.TrimSpace(r.out) == "" {
			return "", fmt.Errorf("printed nothing; want %s", what)
		}
		return what, nil
	}
}

// contains checks exit 0 and that every pattern matches the output.
func contains(pats ...string) check {
	return func(r result) (string, error) {
		if r.code != 0 {
			return "", fmt.Errorf("exit code %d, want 0", r.code)
		}
		for _, p := range pats {
			if !regexp.MustCompile(p).MatchString(r.out) {
				return "", fmt.Errorf("output does not match %q", p)
			}
		}
		return "matches " + strings.Join(pats, ", "), nil
	}
}

// jsonObject checks the output is one JSON object (jq printed it).
func jsonObject(r result) (string, error) {
	if r.code != 0 {
		return "", fmt.Errorf("exit code %d, want 0", r.code)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.out), &m); err != nil {
		return "", fmt.Errorf("jq output is not a JSON object: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return fmt.Sprintf("JSON object with keys %v", keys), nil
}

// nano runs the guide's `sudo nano /etc/dso/dso.yaml` as `dso config edit`
// with the $EDITOR script written last.
func (g *guideEnv) nano(c check) {
	g.t.Helper()
	g.stepAs("sudo nano /etc/dso/dso.yaml", g.bin+" config edit", "sh", 60*time.Second, false, c)
}

// writeEditor writes an $EDITOR script (it gets the file path as $1).
func (g *guideEnv) writeEditor(name, body string) {
	g.t.Helper()
	p := filepath.Join(g.dir, name+".sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nset -e\n"+body+"\n"), 0o700); err != nil { //nolint:gosec // an executable script in the test's own temp dir
		g.t.Fatalf("writing the editor script: %v", err)
	}
	g.editor = p
}

// waitLog waits for n agent log lines with msg for container name.
func (g *guideEnv) waitLog(msg, name string, n int, d time.Duration) framework.LogLine {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		seen := 0
		for _, l := range framework.ParseLog(g.logFile) {
			if l.Msg() == msg && l.Str("container") == name {
				seen++
				if seen == n {
					return l
				}
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(g.logFile)
			g.t.Fatalf("%d of %d %q log lines for %s within %s; log tail:\n%s", seen, n, msg, name, d, lastLines(string(b), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func TestOperationsGuide(t *testing.T) {
	bin := framework.BinFromEnv(t, "DSO_BIN")
	h := framework.New(t)
	ctx := newCtx(t, 10*time.Minute)
	dir := t.TempDir()
	g := &guideEnv{
		t: t, bin: bin, dir: dir,
		cfg:      filepath.Join(dir, "dso.yaml"),
		stateDir: filepath.Join(dir, "state"),
		logFile:  filepath.Join(dir, "agent.log"),
		backup:   filepath.Join(dir, "backup"),
		vault:    filepath.Join(dir, "vault.enc"),
		runDir:   filepath.Join(dir, "run"),
	}
	delivery := filepath.Join(dir, "secrets")
	bdir := filepath.Join(dir, "bindings.d")
	for _, d := range []string{bdir, g.backup} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// Two targets: "good" rotates fine; "bad" becomes unhealthy with the
	// second value (the env names only its sha256, not the value).
	goodApp, badApp := h.RunID+"-guide-good", h.RunID+"-guide-bad"
	good1, good2, bad1, bad2 := randomValue(t), randomValue(t), randomValue(t), randomValue(t)
	good := h.Run(t, ctx, framework.ContainerSpec{Name: "good", Labels: map[string]string{labelApp: goodApp}})
	bad := h.Run(t, ctx, framework.ContainerSpec{Name: "bad", Labels: map[string]string{labelApp: badApp},
		Env: []string{"TESTAPP_UNHEALTHY_IF_ENV=TOKEN:" + sha(bad2)}})

	// The guide's own starting values: cache.ttl 1h, max_size 500Mi,
	// rotation.timeout 30s, polling_interval 5m, so each of its "Change:
	// X -> Y" edits applies to this file literally.
	metrics := framework.Loopback(framework.FreeLoopbackPort(t))
	cfg := fmt.Sprintf(`agent:
  cache:
    ttl: 1h
    max_size: 500Mi
  rotation:
    timeout: 30s
    parallelism: 2
  watch:
    polling_interval: 5m
    debounce_window: 500ms
  api:
    socket: %q
  metrics:
    listen: %q
  delivery:
    dir: %q
logging:
  level: info
  format: json
  file: %q
state:
  dir: %q
bindings:
  dirs: [%q]
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: %s
spec:
  local:
    path: %q
`, filepath.Join(dir, "dso.sock"), metrics, delivery, g.logFile, g.stateDir, bdir, framework.StoreName, g.vault)
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, app := range map[string]string{"good": goodApp, "bad": badApp} {
		b := bindingYAML("guide-"+name, labelSelector(app), "- remoteRef: {key: app/"+name+"}\n  env: TOKEN", "strategy: rolling")
		if err := os.WriteFile(filepath.Join(bdir, name+".yaml"), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Registered after the harness and t.TempDir: runs first (LIFO), so the
	// agent is stopped before containers and the dir are removed. The test
	// must never leave an agent running.
	t.Cleanup(func() {
		r := g.sh("sh", g.bin+" system disable", 60*time.Second, false)
		if r.code != 0 {
			t.Errorf("cleanup: dso system disable exit %d:\n%s", r.code, r.out)
		}
		if st := g.sh("sh", g.bin+" system status", 30*time.Second, false); st.code == 0 {
			t.Errorf("cleanup: dso system status still reports a running agent:\n%s", st.out)
		}
		framework.UnmountAll(t, delivery)
		if t.Failed() {
			b, _ := os.ReadFile(g.logFile)
			t.Logf("agent log tail:\n%s", lastLines(string(b), 60))
		}
	})

	setSecret := func(key, value string) {
		t.Helper()
		// The value on stdin, exactly (a heredoc would add a newline).
		g.stdin = value
		r := g.sh("sh", g.bin+" secret set "+key, 30*time.Second, false)
		g.stdin = ""
		if r.code != 0 || strings.Contains(r.out, value) {
			t.Fatalf("dso secret set %s: exit %d, output %q (must not contain the value)", key, r.code, strings.ReplaceAll(r.out, value, "<redacted>"))
		}
	}
	if r := g.sh("sh", g.bin+" init", 30*time.Second, false); r.code != 0 {
		t.Fatalf("dso init: exit %d\n%s", r.code, r.out)
	}
	setSecret("app/good", good1)
	setSecret("app/bad", bad1)

	r := g.sh("sh", g.bin+" system enable", 90*time.Second, false)
	if r.code != 0 {
		t.Fatalf("dso system enable: exit %d\n%s", r.code, r.out)
	}
	t.Logf("setup: dso system enable:\n%s", indentOut(r.out))

	// History: first convergence of both, then one real rotation, then one
	// failure (the bad target's candidate is unhealthy and rolled back).
	g.waitLog("rotation complete", good.Name, 1, 90*time.Second)
	g.waitLog("rotation complete", bad.Name, 1, 90*time.Second)
	setSecret("app/good", good2)
	g.waitLog("rotation complete", good.Name, 2, 90*time.Second)
	setSecret("app/bad", bad2)
	failed := g.waitLog("rotation failed", bad.Name, 1, 120*time.Second)
	t.Logf("setup: history has a rotation and a failure (reason %q)", failed.Str("reason"))
	histBefore := g.sh("sh", g.bin+" history -o json", 30*time.Second, false)
	if histBefore.code != 0 {
		t.Fatalf("dso history -o json: exit %d\n%s", histBefore.code, histBefore.out)
	}

	walkGuide(t, g, failed.Str("trace_id"), histBefore.out)
	assertNoPlaintextFiles(t, dir, delivery, good1, good2, bad1, bad2)
}

// walkGuide runs the guide, section by section, in its order.
func walkGuide(t *testing.T, g *guideEnv, failedTrace, histBefore string) {
	notDSO := "not a dso command"
	restarted := contains(`(?i)restarted`, `v?\d+\.\d+|dev|version`)

	// --- Daily Operations: 1. Health Checks
	g.step("docker dso doctor --level full", nil)
	g.step("docker dso status", contains(`(?i)cache`))
	g.step("docker dso system logs -n 30", func(r result) (string, error) {
		if _, err := exit0(r); err != nil {
			return "", err
		}
		if n := strings.Count(strings.TrimRight(r.out, "\n"), "\n") + 1; n > 30 {
			return "", fmt.Errorf("%d lines, want at most 30", n)
		}
		return "at most 30 lines", nil
	})
	g.step("docker dso doctor", nil)
	g.stream("docker dso status --watch", 3*time.Second, nonEmpty("status frames until stopped"))

	// --- 2. Monitoring
	g.stream("docker dso status --watch", 3*time.Second, nonEmpty("status frames until stopped"))
	g.stream("docker dso system logs -f", 3*time.Second, nonEmpty("log lines until stopped"))
	g.skip(`docker ps --filter name=app --format "table {{.Names}}	{{.Status}}"`, notDSO)
	g.step("docker dso status --json | jq '.observability'", jsonObject)

	// --- 3. Configuration Management
	g.step("docker dso config show", contains(`max_size`))
	g.step("docker dso config validate", nil)
	// "Edit if needed": the guide's first common change, max_size 500Mi -> 1Gi.
	g.writeEditor("edit-max-size", `sed -i 's/max_size: 500Mi/max_size: 1Gi/' "$1"`)
	g.step("docker dso config edit", fileHas(g.cfg, "max_size: 1Gi"))
	g.step("sudo docker dso system restart", restarted)

	// --- v3.5 Automatic Recovery
	g.step(`docker dso system logs | grep "Automatic recovery"`, nonEmpty("recovery lines"))
	g.step("docker dso status --json | jq '.recovery'", jsonObject)

	// --- Troubleshooting: Rotation Failures
	g.step("docker dso system logs -p err --since 1h", contains(`rotation failed`))
	g.skip("docker ps --filter health=unhealthy", notDSO)
	g.step("docker dso doctor --level full", anyExit("doctor --level full ran"))
	g.step(`docker dso doctor | grep -A 2 "provider"`, contains(`(?i)provider`))
	g.step("docker dso system restart", restarted)
	g.stream("docker dso system logs -f -p err", 3*time.Second, nonEmpty("error lines until stopped"))

	// --- High Cache Miss Rate
	g.step("docker dso status | grep -i cache", nonEmpty("a cache line"))
	// The first fetch of each key after a start is a miss: there must be some.
	g.step("docker dso system logs | grep cache_miss", nonEmpty("cache_miss lines"))
	g.writeEditor("edit-ttl", `sed -i 's/ttl: 1h/ttl: 4h/' "$1"`)
	g.nano(fileHas(g.cfg, "ttl: 4h"))
	t.Log("guide: # Change: cache.max_size: 500Mi → 1Gi -> checked (already 1Gi from the edit above)")
	g.step("sudo docker dso system restart", restarted)

	// --- Agent Service Won't Start
	g.skip("systemctl status dso-agent -l", "systemd is not PID 1 here; `dso system status` replaces it")
	g.step("docker dso system status", contains(`(?i)running`))
	g.skip("journalctl -u dso-agent -n 50", "no journald; `dso system logs -n 50` replaces it")
	g.step("docker dso config validate", nil)
	g.step("sudo docker dso config validate", nil)
	g.skip("ls -la /etc/dso /var/lib/dso /run/dso", notDSO)
	g.skip("df -h /var/lib/dso", notDSO)
	g.skip("sudo systemctl restart dso-agent", "systemd is not PID 1 here")
	g.skip("journalctl -u dso-agent -f", "no journald")

	// --- Container Rotation Slow
	g.step(`docker dso system logs | grep "rotation complete"`, func(r result) (string, error) {
		if strings.TrimSpace(r.out) != "" {
			return "rotation complete lines", nil
		}
		all := g.sh("sh", g.bin+" system logs -n 0 | grep -c \"rotation complete\"", 60*time.Second, false)
		return "", fmt.Errorf("empty as written, while the whole log (-n 0) has %s: `system logs` without -n shows only the last 20 entries, so the guide's history grep misses them", strings.TrimSpace(all.out))
	})
	g.step(`docker dso system logs | grep -E "health|verify|swap"`, nonEmpty("step lines"))
	g.skip("docker inspect <container> --format '{{json .State.Health}}'", notDSO)
	g.writeEditor("edit-timeout", `sed -i 's/timeout: 30s/timeout: 15s/' "$1"`)
	g.nano(fileHas(g.cfg, "timeout: 15s"))
	g.skip("docker-compose.yml: healthcheck: interval/timeout", "a compose file snippet, not a command")

	// --- Provider Connection Issues
	g.step("docker dso doctor --level full | grep -A 3 provider", contains(`(?i)provider`))
	g.step("docker dso doctor", nil)
	g.skip("ping <provider-host>", notDSO+" (and no traffic off loopback)")
	g.skip("curl <provider-endpoint>", notDSO+" (and no traffic off loopback)")
	g.step("docker dso config show | grep -A 5 providers", nonEmpty("a providers section"))
	g.skip("vault status / aws secretsmanager list-secrets / az keyvault secret list", "provider CLIs, not dso")
	g.step("sudo docker dso system restart", restarted)

	// --- Maintenance
	g.step("docker dso doctor", nil)
	g.step("docker dso system logs -n 20", nil)
	g.step("docker dso system logs --since 7d | grep rotation", nonEmpty("rotation lines"))
	// Lower case: the Cache line says "cache utilisation" too.
	g.step("docker dso status | grep cache", nonEmpty("the cache line"))
	g.step("docker dso config validate", nil)

	// --- Backup & Recovery. The guide tars the state dir; a running
	// agent's bbolt file can be mid-write, so the consistent copy while it
	// runs is `system backup -o FILE` (not in the guide, run here first).
	online := filepath.Join(g.backup, "online.db")
	r := g.sh("sh", g.bin+" system backup -o "+online, 60*time.Second, false)
	if st, err := os.Stat(online); r.code != 0 || err != nil || st.Size() == 0 {
		t.Errorf("dso system backup -o %s: exit %d, %v\n%s", online, r.code, err, r.out)
	} else {
		t.Logf("extra: dso system backup -o FILE -> ok (%d bytes)\n%s", st.Size(), indentOut(r.out))
	}
	g.step("sudo cp /etc/dso/dso.yaml /backup/dso-config-$(date +%Y%m%d).yaml", nil)
	// Stopped before the tar (the brief's order): a tar of a live store is
	// what the guide's restore section then puts back.
	g.step("sudo docker dso system disable", contains(`(?i)disabled`))
	g.step("sudo tar -czf /backup/dso-state-$(date +%Y%m%d).tar.gz /var/lib/dso/state/", nil)
	g.step("tar -czf /backup/dso-vault-$(date +%Y%m%d).tar.gz ~/.dso/vault.enc", nil)
	// Lose the state, so the restore has to bring the history back.
	if err := os.RemoveAll(g.stateDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("setup: removed %s before the restore", g.stateDir)
	g.step("sudo docker dso system disable", nil)
	g.step("sudo tar -xzf /backup/dso-state-20240512.tar.gz -C /", nil)
	g.step("sudo docker dso system enable", contains(`(?i)enabled`))
	g.step("docker dso doctor", nil)
	g.step("docker dso status", nil)
	histAfter := g.sh("sh", g.bin+" history -o json", 30*time.Second, false)
	if histAfter.code != 0 || failedTrace == "" || !strings.Contains(histAfter.out, failedTrace) {
		t.Errorf("after the restore, dso history -o json (exit %d) does not hold the failed rotation %q from before the backup", histAfter.code, failedTrace)
	} else {
		t.Logf("extra: history after restore still holds the failed rotation %s (%d bytes before, %d after)", failedTrace, len(histBefore), len(histAfter.out))
	}

	// --- Upgrade Procedure
	g.skip("curl -Lo /tmp/dso-new https://releases.dso.dev/...", notDSO+" (no download)")
	g.skip("sha256sum /tmp/dso-new", notDSO)
	g.skip("sudo cp /usr/local/bin/dso /usr/local/bin/dso-v1.0.0", notDSO)
	g.skip("sudo install -m 755 /tmp/dso-new /usr/local/bin/dso", notDSO)
	g.step("sudo docker dso system restart", restarted)
	g.step("docker dso version", contains(`\S`))
	g.step("docker dso doctor", nil)
	g.step("docker dso config validate", nil)
	g.writeEditor("edit-polling", `sed -i 's/polling_interval: 5m/polling_interval: 15m/' "$1"`)
	g.nano(fileHas(g.cfg, "polling_interval: 15m"))
	g.step("docker dso config validate", nil)
	g.step("sudo docker dso system restart", restarted)
	g.stream("docker dso system logs -f", 3*time.Second, nonEmpty("log lines until stopped"))

	// --- Performance Tuning
	g.skip("docker stats --no-stream dso-agent", notDSO+" (the agent is not a container here)")
	g.skip("top | grep dso", notDSO)
	g.skip("iostat -x 1 5", notDSO)
	g.skip(`netstat -s | grep -E "TCP|UDP"`, notDSO)

	// --- Alerting & Notifications
	g.step(`docker dso system logs | grep -i "rotation failed" | wc -l`, atLeast(1))

	// One store unreachable for the provider alerts: a vault store at a
	// closed loopback port, added through config edit and removed after.
	saved := filepath.Join(g.dir, "dso.yaml.before-vault")
	tokenFile := filepath.Join(g.dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte("not-a-real-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed := framework.Loopback(framework.FreeLoopbackPort(t))
	g.writeEditor("add-vault", fmt.Sprintf(`cp "$1" %q
cat >>"$1" <<'EOF'
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: unreachable-vault
spec:
  vault:
    address: http://%s
    auth:
      token: {fromFile: %q}
EOF`, saved, closed, tokenFile))
	g.step("docker dso config edit", fileHas(g.cfg, "unreachable-vault"))
	g.step("docker dso system restart", restarted)
	g.step(`docker dso doctor | grep -i "unhealthy|unavailable"`, func(r result) (string, error) {
		// Basic grep: "|" is a literal character, so this cannot match
		// doctor's lines; the guide's alert never fires as written.
		if strings.TrimSpace(r.out) != "" {
			return "", fmt.Errorf("basic grep matched a literal %q line; the analysis in the docs is wrong", "unhealthy|unavailable")
		}
		return "as written it cannot match: | is literal in basic grep", nil
	})
	g.stepOpts(`docker dso doctor | grep -iE "unhealthy|unavailable"`, "sh", 60*time.Second, false,
		contains(`(?i)unreachable-vault|unavailable|unhealthy`))
	g.writeEditor("remove-vault", fmt.Sprintf(`cp %q "$1"`, saved))
	g.step("docker dso config edit", fileLacks(g.cfg, "unreachable-vault"))
	g.step("docker dso system restart", restarted)

	g.step(`docker dso status | awk '/Cache/ {print $NF}'`, func(r result) (string, error) {
		out := strings.TrimSpace(r.out)
		if !strings.HasSuffix(out, "%") {
			return "", fmt.Errorf("awk printed %q; want a value ending in %%", out)
		}
		return "a percentage: " + out, nil
	})
	g.step(`docker dso status | awk '/Cache/ {print $NF}' | grep -E "99|100"`, anyExit("cache not exhausted: grep finds nothing"))
	g.skip("systemctl is-active dso-agent", "systemd is not PID 1 here; `dso system status` exit code is the equivalent")
	script := `ROTATION_ERRORS=$(docker dso system logs --since 1h | grep "rotation failed" | wc -l)
echo "ROTATION_ERRORS=$ROTATION_ERRORS"
if [ $ROTATION_ERRORS -gt 5 ]; then
  # Alert: high rotation failure rate
  echo "ALERT: $ROTATION_ERRORS rotations failed in last hour"
fi`
	g.stepOpts(script, "bash", 60*time.Second, false, func(r result) (string, error) {
		m := regexp.MustCompile(`ROTATION_ERRORS=\s*(\d+)`).FindStringSubmatch(r.out)
		if r.code != 0 || m == nil {
			return "", fmt.Errorf("script exit %d, no count printed", r.code)
		}
		n, _ := strconv.Atoi(m[1])
		if n < 1 {
			return "", fmt.Errorf("counted %d failed rotations in the last hour; the history has at least one", n)
		}
		return fmt.Sprintf("%d failed rotations in the last hour (the echo of the count is added by the test)", n), nil
	})
}

func anyExit(note string) check {
	return func(r result) (string, error) { return fmt.Sprintf("%s; exit %d", note, r.code), nil }
}

func atLeast(n int) check {
	return func(r result) (string, error) {
		v, err := strconv.Atoi(strings.TrimSpace(r.out))
		if err != nil {
			return "", fmt.Errorf("wc -l printed %q: %w", r.out, err)
		}
		if v < n {
			return "", fmt.Errorf("count %d, want at least %d", v, n)
		}
		return fmt.Sprintf("count %d >= %d", v, n), nil
	}
}

func fileHas(path, s string) check {
	return func(r result) (string, error) {
		if r.code != 0 {
			return "", fmt.Errorf("exit code %d", r.code)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if !strings.Contains(string(b), s) {
			return "", fmt.Errorf("the config does not contain %q after the edit", s)
		}
		return "config now has " + s, nil
	}
}

func fileLacks(path, s string) check {
	return func(r result) (string, error) {
		if r.code != 0 {
			return "", fmt.Errorf("exit code %d", r.code)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if strings.Contains(string(b), s) {
			return "", fmt.Errorf("the config still contains %q", s)
		}
		return "config no longer has " + s, nil
	}
}

// assertNoPlaintextFiles fails when a file under dir (except the delivery
// tmpfs and the encrypted store) holds a secret value: logs, state, the
// backups and the config edits included.
func assertNoPlaintextFiles(t *testing.T, dir, delivery string, values ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == delivery {
			return filepath.SkipDir
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(p, "vault.enc") || strings.Contains(p, "dso-vault-") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s contains a plaintext secret value", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning the test's files for values: %v", err)
	}
}
