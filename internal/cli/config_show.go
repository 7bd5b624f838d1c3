package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/config"
)

func newConfigShowCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration after defaults",
		Long: `Print the effective configuration after defaults, as YAML documents: the
agent configuration first, then the secret stores (providers), then the
bindings. The first line names the config file and why it was chosen.

Credentials are only ever references (fromEnv/fromFile) in dso's
configuration; show prints those references and never resolves them.`,
		Example: `  dso config show
  dso config show | grep -A 5 providers
  dso --config ./dso.yaml config show`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, source, err := resolveConfig(cmd)
			if err != nil {
				return err
			}
			b, err := config.Load(path)
			if err != nil {
				if errs := configErrors(err); errs != nil {
					for _, e := range errs {
						note(s.Err, "%s\n", e.Error())
					}
					return fmt.Errorf("the configuration has %s: run 'config validate' after fixing them", plural(len(errs), "error"))
				}
				return fmt.Errorf("loading %s: %w", path, err)
			}
			for _, w := range b.Warnings { // stderr: stdout stays YAML for pipes
				note(s.Err, "Warning: %s\n", w.Error())
			}
			return writeEffectiveConfig(s.Out, path, source, b)
		},
	}
}

// writeEffectiveConfig prints the bundle as a multi-document YAML stream
// that could be loaded again, with comment lines saying where each object
// came from.
func writeEffectiveConfig(w io.Writer, path, source string, b *config.Bundle) error {
	var out strings.Builder
	if path == "" {
		fmt.Fprintf(&out, "# config file: none (%s)\n", source)
	} else {
		fmt.Fprintf(&out, "# config file: %s (%s)\n", path, source)
	}

	agent := b.Agent
	if agent.APIVersion == "" {
		agent.APIVersion = v1alpha1.APIVersion
	}
	if agent.Kind == "" {
		agent.Kind = v1alpha1.KindAgentConfig
	}
	if err := writeDoc(&out, agent); err != nil {
		return fmt.Errorf("printing the agent configuration: %w", err)
	}

	// The operations guide tells people to run
	// `config show | grep -A 5 providers`: a header naming "providers" with
	// one summary line per store right under it makes those five lines the
	// useful ones.
	out.WriteString("---\n")
	if len(b.Stores) == 0 {
		out.WriteString("# providers: none (no SecretStore declared)\n")
	} else {
		fmt.Fprintf(&out, "# providers: %s\n", plural(len(b.Stores), "store"))
		for i := range b.Stores {
			fmt.Fprintf(&out, "#   %s\n", storeSummary(&b.Stores[i]))
		}
	}
	for i := range b.Stores {
		st := b.Stores[i]
		if i > 0 {
			out.WriteString("---\n")
		}
		writeOrigin(&out, b, "secretstore", st.Name)
		if err := writeDoc(&out, st); err != nil {
			return fmt.Errorf("printing store %q: %w", st.Name, err)
		}
	}

	out.WriteString("---\n")
	if len(b.Bindings) == 0 {
		out.WriteString("# bindings: none (no SecretBinding declared)\n")
	} else {
		fmt.Fprintf(&out, "# bindings: %s\n", plural(len(b.Bindings), "binding"))
	}
	for i := range b.Bindings {
		bd := b.Bindings[i]
		if i > 0 {
			out.WriteString("---\n")
		}
		writeOrigin(&out, b, "secretbinding", bd.Name)
		if err := writeDoc(&out, bd); err != nil {
			return fmt.Errorf("printing binding %q: %w", bd.Name, err)
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func writeOrigin(out *strings.Builder, b *config.Bundle, kind, name string) {
	if origin, ok := b.Origins[kind+"/"+name]; ok {
		fmt.Fprintf(out, "# %s/%s from %s\n", kind, name, origin)
	}
}

// storeSummary is one line naming a store, its provider and where it points.
func storeSummary(st *v1alpha1.SecretStore) string {
	sp := st.Spec
	switch {
	case sp.Vault != nil:
		return fmt.Sprintf("%s: vault %s", st.Name, sp.Vault.Address)
	case sp.AWS != nil:
		return fmt.Sprintf("%s: aws region %s", st.Name, sp.AWS.Region)
	case sp.Azure != nil:
		return fmt.Sprintf("%s: azure %s", st.Name, sp.Azure.VaultURL)
	case sp.Local != nil:
		return fmt.Sprintf("%s: local %s", st.Name, sp.Local.Path)
	case sp.File != nil:
		return fmt.Sprintf("%s: file %s", st.Name, sp.File.Dir)
	case sp.Env != nil:
		return fmt.Sprintf("%s: env prefix %q", st.Name, sp.Env.Prefix)
	}
	return st.Name + ": no provider"
}

// writeDoc prints one object as YAML. The object goes through JSON (the
// API types' tags are JSON tags) and loses what only adds noise to a
// config listing: null values (metadata.creationTimestamp) and an empty
// status or metadata.
func writeDoc(out *strings.Builder, obj any) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	pruneNulls(m)
	for _, k := range []string{"status", "metadata"} {
		if v, ok := m[k].(map[string]any); ok && len(v) == 0 {
			delete(m, k)
		}
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	out.Write(y)
	return nil
}

func pruneNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			pruneNulls(e)
		}
	case []any:
		for _, e := range t {
			pruneNulls(e)
		}
	}
}
