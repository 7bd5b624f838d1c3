package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
)

const applyStore = `apiVersion: dso.dev/v1alpha1
kind: SecretStore
metadata:
  name: vault-prod
spec:
  vault:
    address: https://vault.internal:8200
    auth:
      token:
        fromEnv: VAULT_TOKEN
`

const applyBinding = `apiVersion: dso.dev/v1alpha1
kind: SecretBinding
metadata:
  name: api-db
spec:
  storeRef:
    name: vault-prod
  target:
    selector:
      compose:
        project: shop
        service: api
  data:
    - remoteRef:
        key: shop/db
        property: password
      env: DB_PASSWORD
`

// applyAgent answers /v1/apply: stores are "unchanged", bindings
// "configured" with a diff and two containers to rotate; the requests are
// recorded.
type applyAgent struct {
	*fakeAgent
	requests []api.ApplyRequest
	kinds    []string
}

func newApplyAgent(t *testing.T, changes bool) *applyAgent {
	aa := &applyAgent{fakeAgent: newFakeAgent(t, true)}
	aa.mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		var req api.ApplyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			api.WriteError(w, 400, err.Error())
			return
		}
		aa.requests = append(aa.requests, req)
		var res api.ApplyResult
		for _, raw := range req.Objects {
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &meta); err != nil {
				api.WriteError(w, 400, err.Error())
				return
			}
			aa.kinds = append(aa.kinds, meta.Kind+"/"+meta.Metadata.Name)
			it := api.ApplyItem{Kind: meta.Kind, Name: meta.Metadata.Name, Action: "unchanged"}
			if changes && meta.Kind == v1alpha1.KindSecretBinding {
				it.Action = "configured"
				it.Diff = "--- stored\n+++ applied\n-  property: pass\n+  property: password\n"
				it.Rotates = []string{"shop-api-1", "shop-api-2"}
			}
			res.Items = append(res.Items, it)
		}
		api.WriteJSON(w, 200, res)
	})
	return aa
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // written into a folder
		args  func(dir string) []string
		stdin string
		want  string
	}{
		{"one file", map[string]string{"all.yaml": applyStore + "---\n" + applyBinding},
			func(d string) []string { return []string{"apply", "-f", filepath.Join(d, "all.yaml")} }, "",
			"secretstore/vault-prod unchanged\nsecretbinding/api-db configured\n"},
		{"folder, sorted, non-YAML ignored", map[string]string{"b.yaml": applyBinding, "a.yml": applyStore, "README.md": "not yaml"},
			func(d string) []string { return []string{"apply", "-f", d} }, "",
			"secretstore/vault-prod unchanged\nsecretbinding/api-db configured\n"},
		{"stdin", nil, func(string) []string { return []string{"apply", "-f", "-"} }, applyBinding,
			"secretbinding/api-db configured\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aa := newApplyAgent(t, true)
			dir := filepath.Join(aa.dir, "objs")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			argv := append([]string{"dso", "--config", aa.config}, tc.args(dir)...)
			r := run(t, nil, tc.stdin, argv...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			if r.out != tc.want {
				t.Errorf("stdout %q, want %q", r.out, tc.want)
			}
			if len(aa.requests) != 1 || aa.requests[0].DryRun {
				t.Errorf("requests %+v: want one, not a dry run", aa.requests)
			}
		})
	}
}

// A bad file is reported with the loader's file:line errors and nothing is
// sent to the agent.
func TestApplyInvalidFileSendsNothing(t *testing.T) {
	aa := newApplyAgent(t, true)
	p := filepath.Join(aa.dir, "bad.yaml")
	bad := strings.Replace(applyBinding, "  storeRef:", "  storeRefs:", 1)
	if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"apply", "diff"} {
		r := aa.run(t, verb, "-f", p)
		if r.code != 1 || !strings.Contains(r.err, p+":6:") || !strings.Contains(r.err, "storeRefs") ||
			!strings.Contains(r.err, "Error: the files have 2 errors: fix them and run the command again") {
			t.Errorf("%s: exit %d, stderr %q: want the file:line error and a summary", verb, r.code, r.err)
		}
	}
	if len(aa.requests) != 0 {
		t.Errorf("%d requests sent for an invalid file", len(aa.requests))
	}
}

func TestApplyAndDiffAgentDown(t *testing.T) {
	fa := newFakeAgent(t, false)
	p := filepath.Join(fa.dir, "b.yaml")
	if err := os.WriteFile(p, []byte(applyBinding), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"apply", "diff"} {
		r := fa.run(t, verb, "-f", p)
		if r.code != 1 || !strings.HasPrefix(r.err, "Error: "+api.ErrAgentDown.Error()) {
			t.Errorf("%s: exit %d, stderr %q", verb, r.code, r.err)
		}
	}
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		golden  string
		changes bool
		code    int
	}{
		{"diff/changes", true, 1},
		{"diff/none", false, 0},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			aa := newApplyAgent(t, tc.changes)
			p := filepath.Join(aa.dir, "all.yaml")
			if err := os.WriteFile(p, []byte(applyStore+"---\n"+applyBinding), 0o600); err != nil {
				t.Fatal(err)
			}
			r := aa.run(t, "diff", "-f", p)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.err)
			}
			if len(aa.requests) != 1 || !aa.requests[0].DryRun {
				t.Fatalf("requests %+v: want one dry run", aa.requests)
			}
			if got := strings.Join(aa.kinds, " "); got != "SecretStore/vault-prod SecretBinding/api-db" {
				t.Errorf("objects sent: %s", got)
			}
			golden(t, tc.golden, r.out+"# stderr: "+r.err)
		})
	}
}

func TestDelete(t *testing.T) {
	fa := newFakeAgent(t, true)
	fa.mux.HandleFunc("DELETE /v1/bindings/{name}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("name") {
		case "api-db":
			api.WriteJSON(w, 200, api.DeleteResult{Kind: "secretbinding", Name: "api-db", Deleted: true})
		case "from-file":
			api.WriteError(w, 409, "secretbinding from-file is declared in /etc/dso/dso.yaml:31: remove it there")
		default:
			api.WriteError(w, 404, "secretbinding "+r.PathValue("name")+" not found")
		}
	})
	fa.mux.HandleFunc("DELETE /v1/stores/{name}", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, api.DeleteResult{Kind: "secretstore", Name: r.PathValue("name"), Deleted: true})
	})
	for _, tc := range []struct {
		args         []string
		code         int
		out, errText string
	}{
		{[]string{"delete", "binding", "api-db"}, 0, "secretbinding/api-db deleted\n", ""},
		{[]string{"delete", "store", "vault-staging"}, 0, "secretstore/vault-staging deleted\n", ""},
		{[]string{"delete", "binding", "from-file"}, 1, "", "Error: deleting secretbinding/from-file: secretbinding from-file is declared in /etc/dso/dso.yaml:31: remove it there\n"},
		{[]string{"delete", "binding", "nope"}, 1, "", "Error: deleting secretbinding/nope: secretbinding nope not found: list them with 'dso get bindings'\n"},
		{[]string{"delete", "pod", "x"}, 1, "", "Error: unknown object type \"pod\": use stores or bindings\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := fa.run(t, tc.args...)
			if r.code != tc.code || r.out != tc.out || r.err != tc.errText {
				t.Errorf("got exit %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tc.code, tc.out, tc.errText)
			}
		})
	}
}
