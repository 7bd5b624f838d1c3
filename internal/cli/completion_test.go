package cli

import (
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	tests := []struct {
		shell string
		want  string // a line only that shell's script has
	}{
		{"bash", "complete -o default -F __start_dso dso"},
		{"zsh", "#compdef dso"},
		{"fish", "complete -c dso"},
		{"powershell", "Register-ArgumentCompleter"},
	}
	for _, tc := range tests {
		t.Run(tc.shell, func(t *testing.T) {
			r := run(t, nil, "", "dso", "completion", tc.shell)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			if !strings.Contains(r.out, tc.want) {
				t.Errorf("%s script lacks %q", tc.shell, tc.want)
			}
		})
	}
}

// The docker CLI completes `docker dso ...` by running
// `docker-dso __complete dso <words>`: the plugin name must be stripped for
// cobra to complete our own subcommands.
func TestCompletionRequestFromDocker(t *testing.T) {
	env := map[string]string{originalCLICommandEnv: "/usr/libexec/docker/cli-plugins/docker-dso"}
	r := run(t, env, "", "docker-dso", "__complete", "dso", "con")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if !strings.HasPrefix(r.out, "config\t") {
		t.Errorf("completion of 'con' = %q, want config first", r.out)
	}
}
