package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/config"
)

func newApplyCommand(s Streams) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Store SecretStore and SecretBinding objects in the agent",
		Long: `Store the SecretStore and SecretBinding documents of FILE (every *.yaml and
*.yml file of DIR, or stdin for "-") in the agent, which converges the
containers to them right away. Each object is reported as created,
configured or unchanged.

The files are checked like 'config validate' checks them, with file:line
errors, before anything is sent. Objects declared in the config file or its
bindings folders are owned by those files: edit the files instead.`,
		Example: `  dso apply -f api-db.yaml
  dso apply -f ./bindings/
  cat api-db.yaml | dso apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := sendObjects(cmd, s, files, false)
			if err != nil {
				return err
			}
			var out strings.Builder
			for _, it := range res.Items {
				fmt.Fprintf(&out, "%s %s\n", objectRef(it.Kind, it.Name), it.Action)
			}
			_, err = io.WriteString(s.Out, out.String())
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) holding the objects; repeatable")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// objectRef is kubectl's kind/name form: "secretbinding/api-db".
func objectRef(kind, name string) string {
	return strings.ToLower(kind) + "/" + name
}

// readObjects loads the stores and bindings of every -f argument, checked by
// the config loader, as JSON objects for the agent. Every error of every
// file is printed (file:line: ...) before the command fails, so that one run
// shows all there is to fix.
func readObjects(args []string, s Streams) ([]json.RawMessage, error) {
	var paths []string
	for _, a := range args {
		if a == "-" {
			paths = append(paths, a)
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", a, err)
		}
		if !st.IsDir() {
			paths = append(paths, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("reading folder %s: %w", a, err)
		}
		var found []string
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				found = append(found, filepath.Join(a, e.Name()))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("folder %s has no *.yaml or *.yml file", a)
		}
		sort.Strings(found)
		paths = append(paths, found...)
	}

	var objs []json.RawMessage
	var errs config.ErrorList
	for _, p := range paths {
		var data []byte
		var err error
		name := p
		if p == "-" {
			name = "<stdin>"
			data, err = io.ReadAll(s.In)
		} else {
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		b, perrs := config.ParseFile(name, data)
		errs = append(errs, perrs...)
		if len(perrs) > 0 || b == nil {
			continue
		}
		for i := range b.Stores {
			st := b.Stores[i]
			st.APIVersion, st.Kind = v1alpha1.APIVersion, v1alpha1.KindSecretStore
			raw, err := json.Marshal(&st)
			if err != nil {
				return nil, fmt.Errorf("encoding secretstore/%s: %w", st.Name, err)
			}
			objs = append(objs, raw)
		}
		for i := range b.Bindings {
			bd := b.Bindings[i]
			bd.APIVersion, bd.Kind = v1alpha1.APIVersion, v1alpha1.KindSecretBinding
			raw, err := json.Marshal(&bd)
			if err != nil {
				return nil, fmt.Errorf("encoding secretbinding/%s: %w", bd.Name, err)
			}
			objs = append(objs, raw)
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			note(s.Err, "%s\n", e.Error())
		}
		return nil, fmt.Errorf("the files have %s: fix them and run the command again", plural(len(errs), "error"))
	}
	if len(objs) == 0 {
		return nil, errors.New("no SecretStore or SecretBinding document found: nothing to send")
	}
	return objs, nil
}

// sendObjects reads the objects of files (checked like config validate) and
// sends them to the agent: stored, or with dryRun only compared (diff).
func sendObjects(cmd *cobra.Command, s Streams, files []string, dryRun bool) (api.ApplyResult, error) {
	objs, err := readObjects(files, s)
	if err != nil {
		return api.ApplyResult{}, err
	}
	t, err := resolveAgent(cmd)
	if err != nil {
		return api.ApplyResult{}, err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	res, err := t.client.Apply(ctx, api.ApplyRequest{Objects: objs, DryRun: dryRun})
	if err != nil {
		doing := "applying"
		if dryRun {
			doing = "computing the diff"
		}
		return res, wrapAgentErr(err, doing)
	}
	return res, nil
}
