//go:build systemd

// Package systemd tests `docker dso system enable|status|logs|restart|
// disable` where they are meant to run: on a host whose PID 1 is systemd,
// with the agent in the hardened dso-agent unit and its lines in journald.
//
// The machines dso is developed and tested on have no systemd as PID 1, so
// the host here is a container of dso-systemd:dev (hack/build-systemd-image.sh:
// Debian bookworm with systemd, built with debootstrap, no registry) whose
// PID 1 is /sbin/init. The statically built bin/dso is copied in as
// /usr/local/bin/dso, the unit's default path, and every command runs
// inside it through `docker exec`, as root, the way an operator runs them.
//
// Accommodations, each because the "host" is a container:
//
//   - docker.service: the unit Requires= it (it orders the agent after
//     dockerd). The container runs no dockerd; the engine is the real host's,
//     its socket bind-mounted at /run/docker.sock. A stand-in docker.service
//     (a oneshot that checks the socket is there) satisfies the dependency;
//     on a real host it is Docker's own unit.
//   - Capabilities: not --privileged. Docker 20.10 gives a privileged
//     container every capability it knows of, and where dockerd itself lacks
//     one (CAP_SYS_RESOURCE on the test VMs) runc fails with "unable to apply
//     caps: operation not permitted". The container gets every capability
//     but that one, with seccomp and AppArmor off, which is what systemd and
//     the unit's sandboxing (mount namespaces) need.
//   - cgroup v1: /sys/fs/cgroup is bind-mounted read-only and /run, /run/lock
//     are tmpfs, the usual recipe for systemd in a container on a v1 host.
//   - --network none: the agent reaches the engine through the socket and
//     serves /readyz on the container's own loopback; nothing else is needed.
//
// Run it with `make test-systemd` (it builds bin/dso and the image). Without
// the image, a static DSO_BIN or an engine the test skips, and fails under
// DSO_STRICT=1.
package systemd

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// runLabel marks every container this test starts; cleanup removes
	// them by it.
	runLabel = "dev.dso.test.systemd"
	// cmdTimeout bounds one docker exec: generous, the machines are shared.
	cmdTimeout = 3 * time.Minute
)

// unavailable skips a test whose external part is missing, or fails it
// under DSO_STRICT=1 (CI), where a skip would hide that nothing ran.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("DSO_STRICT") == "1" {
		t.Fatalf("DSO_STRICT=1: %s", msg)
	}
	t.Skip(msg)
}

// dsoBin is $DSO_BIN (default ../../bin/dso), which must be statically
// linked: the image has no Go toolchain and may have another libc.
func dsoBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DSO_BIN")
	if bin == "" {
		bin = "../../bin/dso"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(abs)
	if err != nil {
		unavailable(t, "DSO_BIN=%s: %v (run make build)", abs, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("DSO_BIN=%s is dynamically linked: build it with CGO_ENABLED=0 (make build)", abs)
		}
	}
	return abs
}

// docker runs the docker CLI on the host.
func docker(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	c := exec.CommandContext(ctx, "docker", args...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// host is the systemd container.
type host struct {
	t  *testing.T
	id string
}

// result is one command's output and exit code.
type result struct {
	out  string // stdout and stderr, interleaved as written
	code int
}

// sh runs a shell command in the container as root.
func (h *host) sh(script string) result {
	h.t.Helper()
	return h.shEnv(nil, script)
}

func (h *host) shEnv(env []string, script string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	args := []string{"exec"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(args, h.id, "sh", "-c", script)
	c := exec.CommandContext(ctx, "docker", args...)
	var b bytes.Buffer
	c.Stdout, c.Stderr = &b, &b
	err := c.Run()
	r := result{out: b.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		h.t.Fatalf("docker exec %q: %v\n%s", script, err, b.String())
	}
	h.t.Logf("$ %s  (exit %d)\n%s", script, r.code, r.out)
	return r
}

// must runs a command that has to exit 0 and returns its output.
func (h *host) must(script string) string {
	h.t.Helper()
	r := h.sh(script)
	if r.code != 0 {
		h.t.Fatalf("%q exited %d:\n%s", script, r.code, r.out)
	}
	return r.out
}

// value runs a command and returns its trimmed output, whatever its exit
// code (systemctl is-active exits 3 for "inactive").
func (h *host) value(script string) string {
	h.t.Helper()
	return strings.TrimSpace(h.sh(script).out)
}

// mainPID is `systemctl show -p MainPID dso-agent`.
func (h *host) mainPID() int {
	h.t.Helper()
	v := h.value("systemctl show -p MainPID --value dso-agent")
	n, err := strconv.Atoi(v)
	if err != nil {
		h.t.Fatalf("systemctl show -p MainPID: %q", v)
	}
	return n
}

// startHost starts the systemd container and waits until systemd has
// booted. The container is removed (by the run label) when the test ends,
// failed or not.
func startHost(t *testing.T, image string) *host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	run := make([]byte, 6)
	_, _ = rand.Read(run)
	label := runLabel + "=" + hex.EncodeToString(run)
	t.Cleanup(func() { removeByLabel(t, label) })
	out, err := docker(ctx, "run", "-d",
		"--label", label,
		"--name", "dso-systemd-test-"+hex.EncodeToString(run),
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
		"--tmpfs", "/run", "--tmpfs", "/run/lock",
		"-v", "/var/run/docker.sock:/var/run/docker.sock",
		"--network", "none",
		image)
	if err != nil {
		t.Fatalf("starting the systemd container: %v", err)
	}
	h := &host{t: t, id: strings.TrimSpace(out)}
	t.Cleanup(func() {
		if t.Failed() {
			h.sh("systemctl status --no-pager dso-agent; journalctl -u dso-agent --no-pager -n 80; systemctl --failed --no-pager")
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		state := h.value("systemctl is-system-running")
		if state == "running" || state == "degraded" {
			if state == "degraded" {
				h.sh("systemctl --failed --no-pager")
			}
			return h
		}
		if time.Now().After(deadline) {
			logs, _ := docker(ctx, "logs", "--tail", "50", h.id)
			t.Fatalf("systemd in %s did not finish booting within 2m: is-system-running says %q\n%s", image, state, logs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func removeByLabel(t *testing.T, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := docker(ctx, "ps", "-aq", "--filter", "label="+label)
	if err != nil {
		t.Logf("listing the test's containers: %v", err)
		return
	}
	for _, id := range strings.Fields(ids) {
		if _, err := docker(ctx, "rm", "-f", "-v", id); err != nil {
			t.Logf("removing %s: %v", id, err)
		}
	}
}

// The stand-in for Docker's unit: the engine is the host's, reached through
// the bind-mounted socket (see the package comment).
const dockerStandIn = `[Unit]
Description=Stand-in for docker.service (test/systemd): the engine is the host's, its socket bind-mounted at /run/docker.sock

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/test -S /run/docker.sock
`

// The host's config: the documented defaults (/run/dso, /var/lib/dso,
// /var/log/dso/agent.log, /readyz on 127.0.0.1:9469) and one local store.
const hostConfig = `agent:
  metrics:
    listen: 127.0.0.1:9469
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: local
spec:
  local:
    path: /var/lib/dso/vault.enc
`

// A second config elsewhere, with another port and log file: `DSO_CONFIG=...
// dso system enable` must record it in the unit's drop-in, and later commands
// run without DSO_CONFIG must follow it.
const altConfig = `agent:
  api:
    socket: /run/dso/alt.sock
  metrics:
    listen: 127.0.0.1:9479
logging:
  file: /var/log/dso/alt.log
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: local
spec:
  local:
    path: /var/lib/dso/vault.enc
`

func writeFile(h *host, path, content string) {
	h.t.Helper()
	h.must(fmt.Sprintf("mkdir -p %s && cat > %s <<'EOF'\n%sEOF", filepath.Dir(path), path, content))
}

func expect(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

var pidLine = regexp.MustCompile(`(?m)^dso agent: running \(pid (\d+)\)$`)

// statusPID is the pid `dso system status` reports as running, 0 if none.
func statusPID(out string) int {
	m := pidLine.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		unavailable(t, "the docker CLI is not installed")
	}
	bin := dsoBin(t)
	image := os.Getenv("DSO_SYSTEMD_IMAGE")
	if image == "" {
		image = "dso-systemd:dev"
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", image)
		cancel()
		if err != nil {
			unavailable(t, "image %s: %v (run make systemd-image; is the engine up?)", image, err)
		}
	}
	unit, err := os.ReadFile("../../config/systemd/dso-agent.service")
	if err != nil {
		t.Fatal(err)
	}

	h := startHost(t, image)
	if comm := h.value("cat /proc/1/comm"); comm != "systemd" {
		t.Fatalf("PID 1 of the container is %q, not systemd", comm)
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		_, err := docker(ctx, "cp", bin, h.id+":/usr/local/bin/dso")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	writeFile(h, "/etc/systemd/system/docker.service", dockerStandIn)
	writeFile(h, "/etc/dso/dso.yaml", hostConfig)
	h.must("mkdir -p /etc/dso/bindings.d && systemctl daemon-reload && systemctl start docker.service")
	h.must("dso init")

	t.Run("before enable", func(t *testing.T) {
		h := &host{t: t, id: h.id}
		r := h.sh("dso system status")
		if r.code != 3 {
			t.Errorf("system status without the unit exited %d, want 3 (stopped)", r.code)
		}
		expect(t, "system status", r.out, "dso agent: stopped", "not installed")
		r = h.sh("dso system disable")
		if r.code != 0 {
			t.Errorf("system disable without the unit exited %d, want 0", r.code)
		}
	})
	if t.Failed() {
		return
	}

	// enable installs the unit, enables and starts it, waits for /readyz.
	out := h.must("dso system enable")
	expect(t, "system enable", out, "dso agent enabled (systemd unit dso-agent): version ", "config /etc/dso/dso.yaml")
	if got := h.must("cat /etc/systemd/system/dso-agent.service"); got != string(unit) {
		t.Errorf("the installed unit differs from config/systemd/dso-agent.service:\n%s", got)
	}
	if r := h.sh("test -e /etc/systemd/system/dso-agent.service.d/10-dso-config.conf"); r.code == 0 {
		t.Errorf("enable with the unit's own binary and config wrote a drop-in:\n%s", h.must("cat /etc/systemd/system/dso-agent.service.d/10-dso-config.conf"))
	}
	if v := h.value("systemctl is-enabled dso-agent"); v != "enabled" {
		t.Fatalf("after enable: systemctl is-enabled dso-agent = %q", v)
	}
	if v := h.value("systemctl is-active dso-agent"); v != "active" {
		t.Fatalf("after enable: systemctl is-active dso-agent = %q", v)
	}
	expect(t, "dso status", h.must("dso status"), "Ready:        yes", "Config file:  /etc/dso/dso.yaml")

	// status: running, enabled, the unit's MainPID.
	pid := h.mainPID()
	r := h.sh("dso system status")
	if r.code != 0 {
		t.Errorf("system status of a running unit exited %d", r.code)
	}
	if got := statusPID(r.out); got != pid {
		t.Errorf("system status says pid %d, systemctl MainPID=%d", got, pid)
	}
	expect(t, "system status", r.out, "Enabled:   yes (systemd unit dso-agent", "Version:   ", "Config:    /etc/dso/dso.yaml", "Log:       /var/log/dso/agent.log", "agent ready")

	// logs: from logging.file, the agent's own lines.
	out = h.must("dso system logs -n 5")
	expect(t, "system logs -n 5", out, "agent ready")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 5 {
		t.Errorf("system logs -n 5 printed %d lines", n)
	}
	h.must("dso system logs -p err --since 1h")
	// The same lines are in the journal: with the file gone, logs reads it.
	h.must("mv /var/log/dso/agent.log /var/log/dso/agent.log.aside")
	out = h.must("dso system logs -n 5")
	h.must("mv /var/log/dso/agent.log.aside /var/log/dso/agent.log")
	expect(t, "system logs -n 5 (journald)", out, "agent ready")

	// restart: waits for readiness, prints the version, new MainPID.
	out = h.must("dso system restart")
	expect(t, "system restart", out, "dso agent restarted: version ")
	newPID := h.mainPID()
	if newPID == pid || newPID == 0 {
		t.Errorf("MainPID after restart = %d (before: %d)", newPID, pid)
	}
	if v := h.value("systemctl is-active dso-agent"); v != "active" {
		t.Errorf("after restart: is-active = %q", v)
	}

	// A crash: systemd restarts the agent (Restart=on-failure).
	h.must(fmt.Sprintf("kill -KILL %d", newPID))
	deadline := time.Now().Add(time.Minute)
	for {
		p := h.mainPID()
		if p != 0 && p != newPID && h.value("systemctl is-active dso-agent") == "active" {
			newPID = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd did not restart the killed agent within 1m (MainPID %d)", p)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r = h.sh("dso system status")
	if got := statusPID(r.out); r.code != 0 || got != newPID {
		t.Errorf("system status after the crash: exit %d, pid %d; systemctl MainPID=%d", r.code, got, newPID)
	}

	// doctor: the agent check is ok (it may need the restarted agent to
	// become ready first).
	deadline = time.Now().Add(time.Minute)
	for {
		r = h.sh("dso doctor")
		if r.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if r.code != 0 {
		t.Errorf("dso doctor exited %d", r.code)
	}
	if !regexp.MustCompile(`(?m)^ok\s+agent\s+dso agent\s+running \(pid ` + strconv.Itoa(newPID) + `\b`).MatchString(r.out) {
		t.Errorf("dso doctor: no ok agent line for pid %d:\n%s", newPID, r.out)
	}

	// The guide's line: the agent's own lines are in the journal.
	out = h.must("journalctl -u dso-agent -n 50 --no-pager")
	expect(t, "journalctl -u dso-agent -n 50", out, `"msg":"agent ready"`)

	// disable: stopped, disabled, and status says so with exit 3.
	out = h.must("dso system disable")
	expect(t, "system disable", out, "dso agent disabled")
	if v := h.value("systemctl is-enabled dso-agent"); v != "disabled" {
		t.Errorf("after disable: is-enabled = %q", v)
	}
	if v := h.value("systemctl is-active dso-agent"); v != "inactive" {
		t.Errorf("after disable: is-active = %q", v)
	}
	r = h.sh("dso system status")
	if r.code != 3 {
		t.Errorf("system status after disable exited %d, want 3", r.code)
	}
	expect(t, "system status after disable", r.out, "dso agent: stopped", "Enabled:   no")
	// The stopped agent's lines are still readable.
	expect(t, "system logs after disable", h.must("dso system logs -n 3"), "agent stopped")

	// A config elsewhere: enable records it in a drop-in, and restart,
	// status and logs run without DSO_CONFIG follow the unit's config.
	writeFile(h, "/etc/dso/alt.yaml", altConfig)
	if r := h.shEnv([]string{"DSO_CONFIG=/etc/dso/alt.yaml"}, "dso system enable"); r.code != 0 {
		t.Fatalf("DSO_CONFIG=/etc/dso/alt.yaml dso system enable exited %d", r.code)
	}
	expect(t, "drop-in", h.must("cat /etc/systemd/system/dso-agent.service.d/10-dso-config.conf"), "--config /etc/dso/alt.yaml")
	expect(t, "system restart (alt config)", h.must("dso system restart"), "dso agent restarted: version ")
	r = h.sh("dso system status")
	if r.code != 0 {
		t.Errorf("system status (alt config) exited %d", r.code)
	}
	expect(t, "system status (alt config)", r.out, "Config:    /etc/dso/alt.yaml", "Log:       /var/log/dso/alt.log", "ready on http://127.0.0.1:9479/readyz")
	expect(t, "system logs (alt config)", h.must("dso system logs -n 5"), "agent ready listen=127.0.0.1:9479")
	// An explicit config that is not the unit's is installed by restart.
	if r := h.shEnv([]string{"DSO_CONFIG=/etc/dso/dso.yaml"}, "dso system restart"); r.code != 0 {
		t.Errorf("DSO_CONFIG=/etc/dso/dso.yaml dso system restart exited %d", r.code)
	}
	if r := h.sh("test -e /etc/systemd/system/dso-agent.service.d/10-dso-config.conf"); r.code == 0 {
		t.Error("restart with the unit's default config left the alt drop-in in place")
	}
	expect(t, "system status (back to dso.yaml)", h.must("dso system status"), "Config:    /etc/dso/dso.yaml", "ready on http://127.0.0.1:9469/readyz")
	h.must("dso system disable")
	if r := h.sh("dso system status"); r.code != 3 {
		t.Errorf("system status after the second disable exited %d, want 3", r.code)
	}

	// A unit systemd cannot start: enable fails and says why, with the
	// unit's state and journal (here docker.service fails).
	h.must("sed -i 's#^ExecStart=.*#ExecStart=/bin/false#' /etc/systemd/system/docker.service && systemctl daemon-reload && systemctl stop docker.service")
	r = h.sh("dso system enable")
	if r.code == 0 {
		t.Error("system enable succeeded although docker.service fails")
	}
	expect(t, "system enable (docker.service fails)", r.out, "dependency", "systemd unit dso-agent: ")
	if r := h.sh("dso system status"); r.code != 3 {
		t.Errorf("system status with a unit that cannot start exited %d, want 3", r.code)
	}
}
