package cli

import "testing"

func TestHelpGolden(t *testing.T) {
	isolate(t)
	plugin := map[string]string{originalCLICommandEnv: "docker"}
	tests := []struct {
		golden string
		env    map[string]string
		argv   []string
	}{
		{"help/root", nil, []string{"dso", "--help"}},
		{"help/root-plugin", plugin, []string{"docker-dso", "dso", "--help"}},
		{"help/root-no-args", nil, []string{"dso"}},
		{"help/version", nil, []string{"dso", "version", "--help"}},
		{"help/config", nil, []string{"dso", "config", "--help"}},
		{"help/config-show", nil, []string{"dso", "config", "show", "--help"}},
		{"help/config-show-plugin", plugin, []string{"docker-dso", "dso", "config", "show", "--help"}},
		{"help/config-validate", nil, []string{"dso", "config", "validate", "--help"}},
		{"help/config-edit", nil, []string{"dso", "config", "edit", "--help"}},
		{"help/completion", nil, []string{"dso", "completion", "--help"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			r := run(t, tc.env, "", tc.argv...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			golden(t, tc.golden, r.out)
		})
	}
}
