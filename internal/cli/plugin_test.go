package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dso-dev/dso/internal/version"
)

func TestParseInvocation(t *testing.T) {
	dockerEnv := map[string]string{originalCLICommandEnv: "docker"}
	tests := []struct {
		name       string
		argv0      string
		args       []string
		env        map[string]string
		wantPlugin bool
		wantMeta   bool
		wantArgs   []string
	}{
		{"metadata", "/root/.docker/cli-plugins/docker-dso", []string{"docker-cli-plugin-metadata"}, nil, false, true, nil},
		{"metadata as dso too", "dso", []string{"docker-cli-plugin-metadata"}, nil, false, true, nil},
		{"docker runs the plugin", "/root/.docker/cli-plugins/docker-dso", []string{"dso", "version", "--json"}, dockerEnv, true, false, []string{"version", "--json"}},
		{"docker global flags before the name are dropped", "docker-dso", []string{"--debug", "-H", "unix:///x.sock", "dso", "config", "show"}, dockerEnv, true, false, []string{"config", "show"}},
		{"docker --config is docker's, not ours", "docker-dso", []string{"--config", "/tmp/dockercfg", "dso", "version"}, dockerEnv, true, false, []string{"version"}},
		{"a flag value equal to the plugin name", "docker-dso", []string{"--context", "dso", "dso", "version"}, dockerEnv, true, false, []string{"version"}},
		{"--flag=value form", "docker-dso", []string{"--context=dso", "dso", "version"}, dockerEnv, true, false, []string{"version"}},
		{"plugin name only", "docker-dso", []string{"dso"}, dockerEnv, true, false, []string{}},
		{"docker asks for completions", "docker-dso", []string{"__complete", "dso", "ver"}, dockerEnv, true, false, []string{"__complete", "ver"}},
		{"renamed binary started by docker", "/opt/dso/bin/dso", []string{"dso", "version"}, dockerEnv, true, false, []string{"version"}},
		{"plain dso", "/usr/local/bin/dso", []string{"version"}, nil, false, false, []string{"version"}},
		{"plain dso keeps a first arg named dso", "dso", []string{"dso"}, nil, false, false, []string{"dso"}},
		{"docker-dso run by hand without the name", "docker-dso", []string{"version"}, nil, false, false, []string{"version"}},
		{"no args", "dso", nil, nil, false, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := parseInvocation(tc.argv0, tc.args, func(k string) string { return tc.env[k] })
			if inv.plugin != tc.wantPlugin || inv.metadata != tc.wantMeta {
				t.Errorf("plugin=%v metadata=%v, want plugin=%v metadata=%v", inv.plugin, inv.metadata, tc.wantPlugin, tc.wantMeta)
			}
			if !tc.wantMeta && !slices.Equal(inv.args, tc.wantArgs) {
				t.Errorf("args = %q, want %q", inv.args, tc.wantArgs)
			}
		})
	}
}

func TestPluginMetadata(t *testing.T) {
	r := run(t, nil, "", "docker-dso", "docker-cli-plugin-metadata")
	if r.code != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	// The docker CLI rejects a plugin whose stdout is anything but one JSON
	// object with the mandatory keys.
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("metadata is not a JSON object: %v\n%s", err, r.out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", r.out)
	}
	want := map[string]string{
		"SchemaVersion": "0.1.0",
		"Vendor":        "dso",
		"Version":       version.Get().Version,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %q", k, m[k], v)
		}
	}
	for _, k := range []string{"ShortDescription", "URL"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("%s missing or empty", k)
		}
	}
	if len(m) != 5 {
		t.Errorf("keys = %v, want exactly SchemaVersion, Vendor, Version, ShortDescription, URL", m)
	}
}

func TestPluginModeNamesDockerDSO(t *testing.T) {
	env := map[string]string{originalCLICommandEnv: "docker"}
	plugin := run(t, env, "", "docker-dso", "dso", "config", "validate", "--help")
	plain := run(t, nil, "", "dso", "config", "validate", "--help")
	for _, want := range []string{"docker dso config validate [-f FILE]...", "  docker dso config validate -f"} {
		if !strings.Contains(plugin.out, want) {
			t.Errorf("plugin help lacks %q:\n%s", want, plugin.out)
		}
	}
	if strings.Contains(plain.out, "docker dso") {
		t.Errorf("plain help mentions docker dso:\n%s", plain.out)
	}
	if !strings.Contains(plain.out, "  dso config validate [-f FILE]...") {
		t.Errorf("plain help lacks the dso usage line:\n%s", plain.out)
	}
}
