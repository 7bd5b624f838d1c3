package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/internal/config"
	"github.com/dso-dev/dso/providers/local"
)

// storeFlagName picks one local store of the config when it declares several.
const storeFlagName = "store"

// newSecretCommand is the `secret` group: it edits the local encrypted store
// directly, so it works on a host where no agent runs (or before one does).
func newSecretCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage the secrets of the local encrypted store",
		Long: `Manage the secrets of the local encrypted store.

The commands act on the local store of the resolved config file (--store NAME
picks one when it declares several), else on ~/.dso/vault.enc. They do not need
a running agent; the agent notices the change by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().String(storeFlagName, "", "name of the local SecretStore to use when the config declares several")
	cmd.AddCommand(
		newSecretSetCommand(s),
		newSecretGetCommand(s),
		newSecretListCommand(s),
		newSecretRmCommand(s),
	)
	return cmd
}

// localStoreTarget says which store file a command acts on and why.
type localStoreTarget struct {
	// Name is the SecretStore name ("local" for the default store).
	Name    string
	Path    string
	KeyFile string
	// From explains the choice for messages: "store \"x\" of /etc/dso/dso.yaml".
	From string
	// Skipped names the config's local stores passed over for the default
	// store (only when ambiguousOK), so init can say so.
	Skipped []string
}

// resolveLocalStore finds the local store a command acts on: --store NAME in
// the resolved config; else the config's only local store; else the user's
// default ~/.dso/vault.enc. ambiguousOK lets `init` fall back to the default
// when the config declares several local stores (it has --path instead of
// --store); the secret commands refuse to guess.
func resolveLocalStore(cmd *cobra.Command, storeName string, ambiguousOK bool) (localStoreTarget, error) {
	cfgPath, _, err := config.Resolve(configPath(cmd))
	if err != nil {
		return localStoreTarget{}, err
	}
	var b *config.Bundle
	if cfgPath != "" {
		if b, err = config.Load(cfgPath); err != nil {
			return localStoreTarget{}, fmt.Errorf("the local store is looked up in config file %s, which does not load (fix it, or point --config elsewhere): %w", cfgPath, err)
		}
	}
	var names []string
	var only *localStoreTarget
	if b != nil {
		for i := range b.Stores {
			st := &b.Stores[i]
			if storeName != "" && st.Name == storeName {
				if st.Spec.Local == nil {
					return localStoreTarget{}, fmt.Errorf("store %q in %s is not a local store: the secret commands manage local stores only; change secrets of other stores with that store's own tools", storeName, cfgPath)
				}
				return targetFromSpec(st.Name, st.Spec.Local.Path, st.Spec.Local.KeyFile, cfgPath), nil
			}
			if st.Spec.Local != nil {
				names = append(names, st.Name)
				t := targetFromSpec(st.Name, st.Spec.Local.Path, st.Spec.Local.KeyFile, cfgPath)
				only = &t
			}
		}
	}
	switch {
	case storeName != "" && cfgPath == "":
		return localStoreTarget{}, fmt.Errorf("--store %s was given but no config file was found: pass --config FILE or set $DSO_CONFIG", storeName)
	case storeName != "":
		return localStoreTarget{}, fmt.Errorf("config file %s has no store named %q; its local stores are: %s", cfgPath, storeName, listOrNone(names))
	case len(names) == 1:
		return *only, nil
	case len(names) > 1 && !ambiguousOK:
		return localStoreTarget{}, fmt.Errorf("config file %s declares %d local stores (%s): pick one with --store NAME", cfgPath, len(names), strings.Join(names, ", "))
	}
	p, err := local.DefaultUserPath()
	if err != nil {
		return localStoreTarget{}, err
	}
	t := localStoreTarget{Name: local.DefaultName, Path: p, KeyFile: local.DefaultKeyFile(p), From: "the default store"}
	if len(names) > 1 {
		t.Skipped = names
		t.From = fmt.Sprintf("the default store, because config file %s declares several local stores", cfgPath)
	}
	return t, nil
}

func targetFromSpec(name, path, keyFile, cfgPath string) localStoreTarget {
	if keyFile == "" {
		keyFile = local.DefaultKeyFile(path)
	}
	return localStoreTarget{Name: name, Path: path, KeyFile: keyFile, From: fmt.Sprintf("store %q of %s", name, cfgPath)}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// openLocalStore resolves and opens the store for a secret command.
func openLocalStore(cmd *cobra.Command) (*local.Store, error) {
	name, _ := cmd.Flags().GetString(storeFlagName)
	t, err := resolveLocalStore(cmd, name, false)
	if err != nil {
		return nil, err
	}
	return local.Open(t.Path, t.KeyFile, local.WithName(t.Name))
}
