package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/internal/api"
)

// fakeDocker answers doctor's two Docker calls.
type fakeDocker struct {
	down       bool
	containers []container.Summary
}

func (f *fakeDocker) Version(context.Context) (string, string, error) {
	if f.down {
		return "", "", errors.New("docker engine not reachable: Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	}
	return "1.41", "20.10.24", nil
}

func (f *fakeDocker) List(_ context.Context, labels map[string]string) ([]container.Summary, error) {
	var out []container.Summary
	for _, c := range f.containers {
		keep := true
		for k, v := range labels {
			if c.Labels[k] != v {
				keep = false
			}
		}
		if keep {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeDocker) Close() error { return nil }

// doctorHost replaces doctor's host probes for one test.
type doctorHost struct {
	docker   *fakeDocker
	tmpfs    bool
	freePct  uint64
	writable bool
}

func (h doctorHost) install(t *testing.T) {
	t.Helper()
	pd, pt, pu, pp, pw := newDoctorDocker, isTmpfs, diskUsage, procUsage, canWrite
	t.Cleanup(func() { newDoctorDocker, isTmpfs, diskUsage, procUsage, canWrite = pd, pt, pu, pp, pw })
	newDoctorDocker = func() (doctorDocker, error) { return h.docker, nil }
	isTmpfs = func(string) (bool, error) { return h.tmpfs, nil }
	diskUsage = func(string) (uint64, uint64, error) { return h.freePct << 30, 100 << 30, nil }
	procUsage = func(int) (string, string, error) { return "23456 kB", "1.5s", nil }
	canWrite = func(string) error {
		if h.writable {
			return nil
		}
		return errors.New("permission denied")
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func running(name, status string, labels map[string]string) container.Summary {
	return container.Summary{ID: "id-" + name, Names: []string{"/" + name}, State: "running", Status: status, Labels: labels}
}

// doctorFixture writes stores and a binding into the fake agent's config:
// a file store that validates, a vault store at a closed loopback port.
func doctorFixture(t *testing.T, fa *fakeAgent) {
	t.Helper()
	for _, d := range []string{"secrets", "state", "files"} {
		if err := os.MkdirAll(filepath.Join(fa.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("DSO_TEST_VAULT_TOKEN", "s.doctor-token-value")
	extra := fmt.Sprintf(`---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: files
spec:
  file:
    dir: %s
---
apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: vault-prod
spec:
  vault:
    address: http://%s
    allowInsecureHTTP: true
    auth:
      token:
        fromEnv: DSO_TEST_VAULT_TOKEN
---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata:
  name: api-db
spec:
  storeRef:
    name: files
  target:
    selector:
      compose:
        project: shop
        service: api
  data:
    - remoteRef:
        key: db
      env: DB_PASSWORD
---
apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata:
  name: orphan
spec:
  storeRef:
    name: files
  target:
    selector:
      containers: [nothing-here]
  data:
    - remoteRef:
        key: db
      env: DB_PASSWORD
`, filepath.Join(fa.dir, "files"), closedPort(t))
	f, err := os.OpenFile(fa.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
}

func shopContainers() []container.Summary {
	managed := map[string]string{"dso.dev/managed": "true", "com.docker.compose.project": "shop", "com.docker.compose.service": "api"}
	return []container.Summary{
		running("shop-api-1", "Up 3 minutes (healthy)", managed),
		running("unrelated", "Up 1 hour", nil),
	}
}

// stable replaces the per-run parts (temp dirs, ports) so the golden is stable.
func stable(fa *fakeAgent, s string) string {
	s = strings.ReplaceAll(s, fa.socket, "$SOCKET")
	s = strings.ReplaceAll(s, fa.dir, "$DIR")
	s = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "127.0.0.1:$$PORT")
	s = regexp.MustCompile(`\d{4} [^:\s]+:[^\s]+`).ReplaceAllString(s, "$$MODE")
	return s
}

// checkLine is one check's line: status word, id, ...
var checkLine = regexp.MustCompile(`^(ok|warn|fail|skip)\s+\S+\s`)

func TestDoctorAgentDown(t *testing.T) {
	fa := newFakeAgent(t, false)
	doctorFixture(t, fa)
	doctorHost{docker: &fakeDocker{containers: shopContainers()}, tmpfs: true, freePct: 50, writable: true}.install(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"doctor/agent-down", []string{"doctor"}},
		{"doctor/agent-down-full", []string{"doctor", "--level", "full"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			r := fa.run(t, tc.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1 (agent and vault-prod fail)", r.code)
			}
			if r.err != "Error: 2 checks failing\n" {
				t.Errorf("stderr = %q", r.err)
			}
			lines := strings.Split(r.out, "\n")
			if want := "dso: unhealthy: 2 failing (agent, provider:vault-prod), 1 warning (bindings), 1 skipped"; lines[0] != want {
				t.Errorf("verdict %q, want %q", lines[0], want)
			}
			// The guide: `doctor | grep -A 2 "provider"` and
			// `grep -i "unhealthy|unavailable"` (meant as alternatives).
			var provider []string
			for _, l := range lines {
				if checkLine.MatchString(l) && strings.Contains(l, " provider:") {
					provider = append(provider, l)
				}
			}
			if len(provider) != 2 {
				t.Fatalf("provider lines %q, want 2", provider)
			}
			if !strings.Contains(provider[0], "ok") || !strings.Contains(provider[0], "checked locally, agent down") {
				t.Errorf("files line %q", provider[0])
			}
			if !strings.HasPrefix(provider[1], "fail") || !strings.Contains(provider[1], "unavailable") {
				t.Errorf("vault-prod line %q: want fail ... unavailable", provider[1])
			}
			if strings.Contains(r.out+r.err, "s.doctor-token-value") {
				t.Error("the vault token appears in doctor's output")
			}
			golden(t, tc.golden, stable(fa, r.out))
		})
	}
}

func TestDoctorAgentUp(t *testing.T) {
	fa := newFakeAgent(t, true)
	doctorFixture(t, fa)
	st := fixtureStatus()
	st.Runtime.PID = 4242
	st.Providers = []api.ProviderStatus{{Store: "vault-prod", Provider: "vault", Health: "healthy", Circuit: "closed", LatencyMs: api.Latency{Min: 1, Avg: 2, Max: 3}, Calls: 50}}
	cur := st
	fa.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { api.WriteJSON(w, http.StatusOK, cur) })
	// The agent's own checks win over the local ones for the same id.
	fa.handle("GET /v1/doctor", []api.Check{
		{ID: "provider:files", Name: "provider files", Status: "ok", Detail: "reachable and authenticated"},
		{ID: "provider:vault-prod", Name: "provider vault-prod", Status: "ok", Detail: "reachable and authenticated"},
		{ID: "tmpfs", Name: "secrets tmpfs", Status: "ok", Detail: "/run/dso/secrets is a tmpfs"},
		{ID: "state", Name: "state directory", Status: "ok", Detail: "/var/lib/dso/state writable, 50.0% free"},
	})
	fa.handle("GET /v1/bindings", []api.BindingView{
		{Name: "api-db", Spec: bindingSpecFixture()},
	})
	tests := []struct {
		name       string
		containers []container.Summary
		hits       int64
		code       int
		verdict    string
		golden     string
		args       []string
	}{
		{"healthy", shopContainers(), 190, 0, "dso: healthy (10 checks ok)", "doctor/healthy", []string{"doctor"}},
		{"healthy full", shopContainers(), 190, 0, "dso: healthy (10 checks ok)", "doctor/healthy-full", []string{"doctor", "--level", "full"}},
		{"unhealthy container and cold cache", []container.Summary{
			running("shop-api-1", "Up 3 minutes (unhealthy)", map[string]string{"dso.dev/managed": "true", "com.docker.compose.project": "shop", "com.docker.compose.service": "api"}),
		}, 10, 1, "dso: unhealthy: 1 failing (containers), 1 warning (cache)", "doctor/unhealthy-full", []string{"doctor", "--level", "full"}},
		{"candidate mid-rotation is not judged, a stopped target warns", []container.Summary{
			running("shop-api-1", "Up 3 minutes (healthy)", map[string]string{"dso.dev/managed": "true", "com.docker.compose.project": "shop", "com.docker.compose.service": "api"}),
			{ID: "id-cand", Names: []string{"/shop-api-1-dso-1201589f"}, State: "created", Status: "Created", Labels: map[string]string{"dso.dev/managed": "true", "dso.dev/replaces": "id-shop-api-1"}},
			{ID: "id-old", Names: []string{"/batch"}, State: "exited", Status: "Exited (0) 1 minute ago", Labels: map[string]string{"dso.dev/managed": "true"}},
		}, 190, 0, "dso: healthy (9 checks ok, 1 warning (containers))", "doctor/stopped", []string{"doctor"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doctorHost{docker: &fakeDocker{containers: tc.containers}, tmpfs: true, freePct: 50, writable: true}.install(t)
			st.Cache.Hits, st.Cache.Misses = tc.hits, 10
			st.Cache.HitRate = float64(tc.hits) * 100 / float64(tc.hits+10)
			cur = st
			r := fa.run(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tc.code, r.err)
			}
			if got := strings.SplitN(r.out, "\n", 2)[0]; got != tc.verdict {
				t.Errorf("verdict %q, want %q", got, tc.verdict)
			}
			if strings.Contains(r.out, "checked locally") {
				t.Error("with the agent up the provider checks come from the agent")
			}
			if strings.Contains(tc.args[len(tc.args)-1], "full") && tc.code == 1 && !strings.Contains(r.out, "remediation: ") {
				t.Error("--level full lacks a remediation line for the failing check")
			}
			golden(t, tc.golden, stable(fa, r.out))
		})
	}
}

// `doctor --json` is {verdict, checks:[{id,name,status,detail,...}]}, with
// the same exit status as the human form.
func TestDoctorJSONSchema(t *testing.T) {
	fa := newFakeAgent(t, false)
	doctorFixture(t, fa)
	doctorHost{docker: &fakeDocker{down: true}, tmpfs: false, freePct: 5, writable: true}.install(t)
	r := fa.run(t, "doctor", "--json")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	var doc struct {
		Verdict *string          `json:"verdict"`
		Checks  []map[string]any `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.out)
	}
	if doc.Verdict == nil || !strings.HasPrefix(*doc.Verdict, "dso: unhealthy: ") {
		t.Errorf("verdict = %v", doc.Verdict)
	}
	byID := map[string]map[string]any{}
	for _, c := range doc.Checks {
		for _, k := range []string{"id", "name", "status", "detail"} {
			if _, ok := c[k].(string); !ok {
				t.Errorf("check %v: %q missing or not a string", c["id"], k)
			}
		}
		byID[c["id"].(string)] = c
	}
	want := map[string]string{
		"docker": "fail", "agent": "fail", "config": "ok", "provider:files": "ok", "provider:vault-prod": "fail",
		"tmpfs": "fail", "state": "warn", "bindings": "skip", "containers": "skip", "cache": "skip",
	}
	if len(byID) != len(want) {
		t.Errorf("checks %v, want the ids %v", byID, want)
	}
	for id, st := range want {
		c, ok := byID[id]
		if !ok || c["status"] != st {
			t.Errorf("check %s = %v, want status %s", id, c, st)
			continue
		}
		if st == "fail" && c["remediation"] == nil {
			t.Errorf("failing check %s has no remediation", id)
		}
	}
}
