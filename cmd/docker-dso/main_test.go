package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testVersion is stamped into the test binary the way the Makefile stamps a
// release, to prove the ldflags reach every output.
const testVersion = "v0.0.0-bintest"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildBinary builds this command once per test run into a temporary
// directory, as docker-dso, with dso as a symlink to it.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { buildDir, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func build() (string, error) {
	dir, err := os.MkdirTemp("", "dso-bintest-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "docker-dso")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/dso-dev/dso/internal/version.Version="+testVersion, ".")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "dso")); err != nil {
		return "", err
	}
	return dir, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type result struct {
	out, err string
	code     int
}

func runBin(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	c := exec.Command(name, args...)
	home := t.TempDir()
	// A clean environment: no DSO_CONFIG, no docker plugin variables, a
	// HOME without ~/.dso/dso.yaml.
	c.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, env...)
	c.Dir = home
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return result{out.String(), errb.String(), code}
}

func TestBinary(t *testing.T) {
	dir := buildBinary(t)
	plugin := filepath.Join(dir, "docker-dso")
	plain := filepath.Join(dir, "dso")
	dockerEnv := []string{"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker"}

	t.Run("metadata", func(t *testing.T) {
		r := runBin(t, nil, plugin, "docker-cli-plugin-metadata")
		var m map[string]string
		if err := json.Unmarshal([]byte(r.out), &m); err != nil || r.code != 0 {
			t.Fatalf("exit %d, not a JSON object (%v):\n%s%s", r.code, err, r.out, r.err)
		}
		if m["SchemaVersion"] != "0.1.0" || m["Vendor"] != "dso" || m["Version"] != testVersion {
			t.Errorf("metadata = %v", m)
		}
	})

	tests := []struct {
		name     string
		env      []string
		bin      string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"plugin version", dockerEnv, plugin, []string{"dso", "version"}, 0, "Version:    " + testVersion, ""},
		{"plugin with docker global flags", dockerEnv, plugin, []string{"--context", "default", "dso", "version", "--json"}, 0, `"version": "` + testVersion + `"`, ""},
		{"plugin help says docker dso", dockerEnv, plugin, []string{"dso", "--help"}, 0, "Usage:\n  docker dso [command]", ""},
		{"plain version", nil, plain, []string{"version"}, 0, "Version:    " + testVersion, ""},
		{"plain help says dso", nil, plain, []string{"--help"}, 0, "Usage:\n  dso [command]", ""},
		{"error exits 1, printed once", nil, plain, []string{"frobnicate"}, 1, "", `Error: unknown command "frobnicate" for "dso"`},
		{"plugin error names docker dso", dockerEnv, plugin, []string{"dso", "frobnicate"}, 1, "", `Error: unknown command "frobnicate" for "docker dso"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runBin(t, tc.env, tc.bin, tc.args...)
			if r.code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, r.out, r.err)
			}
			if !strings.Contains(r.out, tc.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantOut, r.out)
			}
			if !strings.Contains(r.err, tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, r.err)
			}
			if tc.wantCode != 0 && strings.Count(r.err, "Error:") != 1 {
				t.Errorf("want exactly one Error: in stderr:\n%s", r.err)
			}
		})
	}
}

// TestThroughDockerCLI installs the binary as a plugin of the real docker
// CLI (in a private DOCKER_CONFIG) and runs it the way users do. It needs
// only the docker client binary, not a running engine.
func TestThroughDockerCLI(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		if os.Getenv("DSO_STRICT") == "1" {
			t.Fatalf("the docker CLI is not installed (DSO_STRICT=1): %v", err)
		}
		t.Skipf("the docker CLI is not installed; skipping the plugin round trip (set DSO_STRICT=1 to fail instead): %v", err)
	}
	dir := buildBinary(t)
	cfg := t.TempDir()
	if err := os.Mkdir(filepath.Join(cfg, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "docker-dso"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "cli-plugins", "docker-dso"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg}

	tests := []struct {
		name    string
		args    []string
		wantOut string
	}{
		{"docker lists the plugin", []string{"--help"}, "dso*"},
		{"docker dso --help", []string{"dso", "--help"}, "Usage:\n  docker dso [command]"},
		{"docker dso version", []string{"dso", "version"}, "Version:    " + testVersion},
		{"docker global option before the plugin", []string{"--log-level", "error", "dso", "version", "--json"}, `"version": "` + testVersion + `"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runBin(t, env, docker, tc.args...)
			if r.code != 0 || !strings.Contains(r.out, tc.wantOut) {
				t.Errorf("docker %s: exit %d, want output containing %q\nstdout:\n%s\nstderr:\n%s",
					strings.Join(tc.args, " "), r.code, tc.wantOut, r.out, r.err)
			}
		})
	}
}
