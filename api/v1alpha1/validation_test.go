package v1alpha1

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func messages(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = FieldErrorMessage(e)
	}
	return out
}

func validBinding() SecretBinding {
	b := SecretBinding{Spec: SecretBindingSpec{
		StoreRef: StoreRef{Name: "local"},
		Target:   Target{Selector: Selector{Containers: []string{"api"}}},
		Data: []SecretData{
			{RemoteRef: RemoteRef{Key: "shop/db"}, Env: "DB_PASSWORD"},
			{RemoteRef: RemoteRef{Key: "shop/tls"}, File: &FileTarget{Path: "/run/secrets/tls.pem"}},
		},
	}}
	b.Name = "api-db"
	return b
}

// swarmBinding makes b a valid binding of the Swarm service web, with one
// file item.
func swarmBinding(b *SecretBinding) {
	b.Spec.Target.Selector = Selector{Swarm: &SwarmSelector{Service: "web"}}
	b.Spec.Data = []SecretData{{RemoteRef: RemoteRef{Key: "shop/tls"}, File: &FileTarget{Path: "/run/secrets/tls.pem"}}}
}

func TestSecretBindingValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b *SecretBinding)
		want   []string // exact rendered messages; nil = valid
	}{
		{"valid", func(b *SecretBinding) {}, nil},
		{"relative file path", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "run/x" },
			[]string{"spec.data[1].file.path: must be absolute"}},
		{"dot-dot", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/run/secrets/../x" },
			[]string{"spec.data[1].file.path: must not contain '..'"}},
		{"reserved ..data name", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/run/secrets/..data" },
			[]string{"spec.data[1].file.path: a file name beginning with '..' is reserved for dso's own links in the secrets directory"}},
		{"root", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/" },
			[]string{"spec.data[1].file.path: must not be /"}},
		{"under /sys", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/sys/x/y" },
			[]string{"spec.data[1].file.path: must not be under /sys: it is a kernel filesystem in the container"}},
		{"/dev itself", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/dev" },
			[]string{"spec.data[1].file.path: must not be under /dev: it is a kernel filesystem in the container"}},
		{"/devices is not /dev", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/devices/x" }, nil},
		{"duplicate env", func(b *SecretBinding) {
			b.Spec.Data = append(b.Spec.Data, SecretData{RemoteRef: RemoteRef{Key: "k"}, Env: "DB_PASSWORD"})
		}, []string{"spec.data[2].env: the same environment variable is already written by spec.data[0].env"}},
		{"duplicate file after cleaning", func(b *SecretBinding) {
			b.Spec.Data = append(b.Spec.Data, SecretData{RemoteRef: RemoteRef{Key: "k"}, File: &FileTarget{Path: "/run/secrets/./tls.pem"}})
		}, []string{"spec.data[2].file.path: the same file is already written by spec.data[1].file.path"}},
		{"bad env name", func(b *SecretBinding) { b.Spec.Data[0].Env = "9X" },
			[]string{"spec.data[0].env: must be an environment variable name: letters, digits and '_', not starting with a digit"}},
		{"labels are a selector", func(b *SecretBinding) { b.Spec.Target.Selector = Selector{Labels: map[string]string{"app": "x"}} }, nil},
		{"compose without project", func(b *SecretBinding) { b.Spec.Target.Selector = Selector{Compose: &ComposeSelector{Service: "api"}} },
			[]string{"spec.target.selector.compose.project: the compose project name is required"}},
		{"empty storeRef", func(b *SecretBinding) { b.Spec.StoreRef.Name = "" },
			[]string{"spec.storeRef.name: must name the SecretStore the values come from"}},
		{"neither env nor file", func(b *SecretBinding) { b.Spec.Data[0].Env = "" },
			[]string{"spec.data[0]: exactly one of env or file is required"}},
		{"both env and file", func(b *SecretBinding) { b.Spec.Data[0].File = &FileTarget{Path: "/run/secrets/a"} },
			[]string{"spec.data[0]: exactly one of env or file may be set: use two items to deliver the value both ways"}},
		{"empty key", func(b *SecretBinding) { b.Spec.Data[0].RemoteRef.Key = " " },
			[]string{"spec.data[0].remoteRef.key: the secret's key in the store is required, e.g. shop/db"}},
		{"refresh 999ms", func(b *SecretBinding) { b.Spec.RefreshInterval = ptr(Duration(999 * time.Millisecond)) },
			[]string{"spec.refreshInterval: must be at least 1s"}},
		{"refresh 1s", func(b *SecretBinding) { b.Spec.RefreshInterval = ptr(Duration(time.Second)) }, nil},
		{"unknown strategy", func(b *SecretBinding) { b.Spec.Rotation.Strategy = "canary" },
			[]string{"spec.rotation.strategy: must be one of auto, rolling, recreate, restart, signal, none"}},
		{"zero health timeout", func(b *SecretBinding) { b.Spec.Rotation.HealthTimeout = ptr(Duration(0)) },
			[]string{"spec.rotation.healthTimeout: must be a positive duration, e.g. 30s, 5m or 1h"}},
		{"mode 0777 ok", func(b *SecretBinding) { b.Spec.Data[1].File.Mode = "0777" }, nil},
		{"mode 1777", func(b *SecretBinding) { b.Spec.Data[1].File.Mode = "1777" },
			[]string{`spec.data[1].file.mode: must be an octal file mode between "0001" and "0777", such as "0400"`}},
		{"mode 0", func(b *SecretBinding) { b.Spec.Data[1].File.Mode = "0" },
			[]string{`spec.data[1].file.mode: must be an octal file mode between "0001" and "0777", such as "0400"`}},
		{"mode 0x1", func(b *SecretBinding) { b.Spec.Data[1].File.Mode = "0x1" },
			[]string{`spec.data[1].file.mode: must be an octal file mode such as "0400" or "0440"`}},
		{"signal strategy with env", func(b *SecretBinding) { b.Spec.Rotation = Rotation{Strategy: RotationSignal, Signal: "SIGUSR1"} },
			[]string{"spec.rotation.strategy: strategy signal only updates files, but this binding delivers env vars: use auto, rolling or recreate"}},
		{"signal without signal strategy", func(b *SecretBinding) { b.Spec.Rotation.Signal = "SIGHUP" },
			[]string{"spec.rotation.signal: is only used with strategy signal"}},
		{"shadowed /etc", func(b *SecretBinding) { b.Spec.Data[1].File.Path = "/etc/tls.pem" },
			[]string{"spec.data[1].file.path: its directory /etc would be mounted over in the container, hiding the image's files: use a directory of its own, e.g. /run/secrets/app"}},
		{"dataFrom dir holding a data file", func(b *SecretBinding) {
			b.Spec.DataFrom = []SecretDataFrom{{RemoteRef: RemoteRef{Key: "all"}, Dir: "/run/secrets"}}
		}, []string{"spec.dataFrom[0].dir: this directory also receives the file written by spec.data[1].file.path: the two may write the same file"}},
		{"no data", func(b *SecretBinding) { b.Spec.Data = nil },
			[]string{"spec.data: at least one data or dataFrom item is required"}},
		{"bad name", func(b *SecretBinding) { b.Name = "API" },
			[]string{"metadata.name: must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"}},
		{"no name", func(b *SecretBinding) { b.Name = "" }, []string{"metadata.name: a name is required"}},
		{"negative uid", func(b *SecretBinding) { b.Spec.Data[1].File.UID = ptr(int64(-1)) },
			[]string{"spec.data[1].file.uid: must be a user id of 0 or more"}},
		{"no selector names swarm", func(b *SecretBinding) { b.Spec.Target.Selector = Selector{} },
			[]string{"spec.target.selector: a target selector is required: set containers, compose, labels or swarm"}},
		{"swarm: files only, any directory", func(b *SecretBinding) { swarmBinding(b); b.Spec.Data[0].File.Path = "/etc/app/tls.pem" }, nil},
		{"swarm: uid, gid and mode carried", func(b *SecretBinding) {
			swarmBinding(b)
			b.Spec.Data[0].File.Mode, b.Spec.Data[0].File.UID, b.Spec.Data[0].File.GID = "0440", ptr(int64(1000)), ptr(int64(1000))
		}, nil},
		{"swarm: dataFrom dir", func(b *SecretBinding) {
			swarmBinding(b)
			b.Spec.DataFrom = []SecretDataFrom{{RemoteRef: RemoteRef{Key: "all"}, Dir: "/run/secrets/all"}}
		}, nil},
		{"swarm: rolling is Swarm's", func(b *SecretBinding) { swarmBinding(b); b.Spec.Rotation.Strategy = RotationRolling }, nil},
		{"swarm with containers and labels", func(b *SecretBinding) {
			swarmBinding(b)
			b.Spec.Target.Selector.Containers = []string{"api"}
			b.Spec.Target.Selector.Labels = map[string]string{"app": "x"}
		}, []string{"spec.target.selector.swarm: a binding that targets a Swarm service selects no containers: remove containers and labels, or use a second binding for the containers"}},
		{"swarm with compose", func(b *SecretBinding) {
			swarmBinding(b)
			b.Spec.Target.Selector.Compose = &ComposeSelector{Project: "shop"}
		}, []string{"spec.target.selector.swarm: a binding that targets a Swarm service selects no containers: remove compose, or use a second binding for the containers"}},
		{"swarm without service", func(b *SecretBinding) { swarmBinding(b); b.Spec.Target.Selector.Swarm.Service = "" },
			[]string{"spec.target.selector.swarm.service: the Swarm service name is required (as in docker service ls)"}},
		{"swarm bad service name", func(b *SecretBinding) { swarmBinding(b); b.Spec.Target.Selector.Swarm.Service = "web/1" },
			[]string{"spec.target.selector.swarm.service: must be a Swarm service name: at most 63 letters, digits, '-' and '_', starting and ending with a letter or digit"}},
		{"swarm refuses env", func(b *SecretBinding) {
			swarmBinding(b)
			b.Spec.Data = append(b.Spec.Data, SecretData{RemoteRef: RemoteRef{Key: "k"}, Env: "TOKEN"})
		}, []string{"spec.data[1].env: a binding that targets a Swarm service delivers files only (Docker secrets, mounted into each task): an env var would put the value into the service spec, readable by anyone who can run docker service inspect; use file: {path: ...}"}},
		{"swarm refuses dataFrom env", func(b *SecretBinding) {
			swarmBinding(b)
			b.Spec.DataFrom = []SecretDataFrom{{RemoteRef: RemoteRef{Key: "all"}, Prefix: "APP_"}}
		}, []string{"spec.dataFrom[0].dir: a binding that targets a Swarm service delivers files only: set dir (each field becomes a file in it); an env var would put the value into the service spec, readable by anyone who can run docker service inspect"}},
		{"swarm kernel filesystem", func(b *SecretBinding) { swarmBinding(b); b.Spec.Data[0].File.Path = "/proc/x" },
			[]string{"spec.data[0].file.path: must not be under /proc: it is a kernel filesystem in the container"}},
		{"swarm relative path", func(b *SecretBinding) { swarmBinding(b); b.Spec.Data[0].File.Path = "db" },
			[]string{"spec.data[0].file.path: must be absolute"}},
		{"swarm in-place strategy", func(b *SecretBinding) { swarmBinding(b); b.Spec.Rotation.Strategy = RotationRestart },
			[]string{"spec.rotation.strategy: a Swarm service is rotated by Swarm's own rolling service update (the service's update_config decides order, parallelism and failure action): leave strategy unset, auto or rolling"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBinding()
			tt.mutate(&b)
			b.Default()
			got := messages(b.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSecretStoreValidate(t *testing.T) {
	token := &ValueSource{FromEnv: "VAULT_TOKEN"}
	tests := []struct {
		name string
		spec SecretStoreSpec
		want []string
	}{
		{"local", SecretStoreSpec{Local: &LocalProvider{Path: "/var/lib/dso/vault.enc"}}, nil},
		{"no provider", SecretStoreSpec{}, []string{"spec: exactly one provider is required: one of local, vault, aws, azure, file, env"}},
		{"two providers", SecretStoreSpec{Local: &LocalProvider{Path: "/a"}, Env: &EnvProvider{}},
			[]string{"spec: exactly one provider may be set, found local and env: use one SecretStore per provider"}},
		{"vault ok", SecretStoreSpec{Vault: &VaultProvider{Address: "http://127.0.0.1:8200", Auth: VaultAuth{Token: token}}}, nil},
		{"vault http to localhost", SecretStoreSpec{Vault: &VaultProvider{Address: "http://localhost:8200", Auth: VaultAuth{Token: token}}}, nil},
		{"vault http to a network host", SecretStoreSpec{Vault: &VaultProvider{Address: "http://vault.internal:8200", Auth: VaultAuth{Token: token}}},
			[]string{"spec.vault.address: plain http to a host that is not loopback would send the Vault token unencrypted: use https, or set allowInsecureHTTP: true if the network is trusted"}},
		{"vault http opted in", SecretStoreSpec{Vault: &VaultProvider{Address: "http://vault.internal:8200", AllowInsecureHTTP: true, Auth: VaultAuth{Token: token}}}, nil},
		{"vault kv 3", SecretStoreSpec{Vault: &VaultProvider{Address: "https://v", KVVersion: 3, Auth: VaultAuth{Token: token}}},
			[]string{"spec.vault.kvVersion: must be 1 or 2"}},
		{"vault not a URL", SecretStoreSpec{Vault: &VaultProvider{Address: "v:8200", Auth: VaultAuth{Token: token}}},
			[]string{"spec.vault.address: must be an http:// or https:// URL with a host, e.g. https://vault.example:8200"}},
		{"vault no auth", SecretStoreSpec{Vault: &VaultProvider{Address: "https://v"}},
			[]string{"spec.vault.auth: exactly one auth method is required: token or appRole"}},
		{"vault token neither", SecretStoreSpec{Vault: &VaultProvider{Address: "https://v", Auth: VaultAuth{Token: &ValueSource{}}}},
			[]string{"spec.vault.auth.token: set exactly one of fromEnv (an environment variable name) or fromFile (an absolute path)"}},
		{"vault token both", SecretStoreSpec{Vault: &VaultProvider{Address: "https://v", Auth: VaultAuth{Token: &ValueSource{FromEnv: "A", FromFile: "/b"}}}},
			[]string{"spec.vault.auth.token: set exactly one of fromEnv or fromFile, not both"}},
		{"vault token relative file", SecretStoreSpec{Vault: &VaultProvider{Address: "https://v", Auth: VaultAuth{Token: &ValueSource{FromFile: "tok"}}}},
			[]string{"spec.vault.auth.token.fromFile: must be an absolute path"}},
		{"azure http", SecretStoreSpec{Azure: &AzureProvider{VaultURL: "http://x.vault.azure.net"}},
			[]string{"spec.azure.vaultURL: must be an https:// URL, e.g. https://myvault.vault.azure.net/"}},
		{"aws no region", SecretStoreSpec{AWS: &AWSProvider{}}, []string{"spec.aws.region: the AWS region is required, e.g. eu-west-1"}},
		{"refresh below 1s", SecretStoreSpec{Env: &EnvProvider{}, RefreshInterval: ptr(Duration(time.Millisecond))},
			[]string{"spec.refreshInterval: must be at least 1s"}},
		{"rate limit zero qps", SecretStoreSpec{Env: &EnvProvider{}, RateLimit: &RateLimit{}},
			[]string{"spec.rateLimit.qps: must be a positive number of calls per second"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SecretStore{Spec: tt.spec}
			s.Name = "s"
			s.Default()
			got := messages(s.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAgentConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *AgentConfigSpec)
		want   []string
	}{
		{"defaults", func(c *AgentConfigSpec) {}, nil},
		{"zero size", func(c *AgentConfigSpec) { c.Agent.Cache.MaxSize = ptr(Size(0)) },
			[]string{"spec.agent.cache.max_size: must be a positive size, e.g. 500Mi or 1Gi"}},
		{"negative parallelism", func(c *AgentConfigSpec) { c.Agent.Rotation.Parallelism = ptr(int32(-1)) },
			[]string{"spec.agent.rotation.parallelism: must be at least 1 (the number of rotations run at once)"}},
		{"negative debounce", func(c *AgentConfigSpec) { c.Agent.Watch.DebounceWindow = ptr(Duration(-1)) },
			[]string{"spec.agent.watch.debounce_window: must be a positive duration, e.g. 30s, 5m or 1h"}},
		{"bad level and format", func(c *AgentConfigSpec) { c.Logging.Level, c.Logging.Format = "trace", "text" },
			[]string{"spec.logging.level: must be one of debug, info, warn, error", "spec.logging.format: must be one of json, console"}},
		{"webhook without token", func(c *AgentConfigSpec) { c.Agent.Watch.Webhook.Enabled = true },
			[]string{"spec.agent.watch.webhook.token: an enabled webhook needs a bearer token: set token: {fromEnv: NAME} or {fromFile: PATH}"}},
		{"bad listen port", func(c *AgentConfigSpec) { c.Agent.Metrics.Listen = "127.0.0.1:0" },
			[]string{"spec.agent.metrics.listen: must end in a port between 1 and 65535, e.g. 127.0.0.1:9469"}},
		{"relative bindings dir", func(c *AgentConfigSpec) { c.Bindings.Dirs = []string{"b"} },
			[]string{"spec.bindings.dirs[0]: must be an absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c AgentConfig
			tt.mutate(&c.Spec)
			c.Default()
			got := messages(c.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// No validation error may carry the value it rejects: not in the detail,
// and not in BadValue either (field.Error.Error() prints BadValue).
func TestValidationNeverCarriesValues(t *testing.T) {
	const secret = "hunter2-SECRET"
	b := validBinding()
	b.Name = secret
	b.Spec.StoreRef.Name = secret
	b.Spec.Data[0].Env = secret + "!"
	b.Spec.Data[1].File.Path = secret
	b.Spec.Data[1].File.Mode = secret
	b.Spec.Rotation = Rotation{Strategy: secret, Signal: secret}
	s := SecretStore{Spec: SecretStoreSpec{Vault: &VaultProvider{Address: "https://u:" + secret + "@v", Auth: VaultAuth{Token: &ValueSource{FromEnv: secret + "-", FromFile: secret}}}}}
	s.Name = secret
	errs := append(b.Validate(), s.Validate()...)
	if len(errs) < 8 {
		t.Fatalf("expected many errors, got %v", messages(errs))
	}
	for _, e := range errs {
		if strings.Contains(FieldErrorMessage(e), secret) || strings.Contains(e.Error(), secret) {
			t.Errorf("error carries the value: %q", e.Error())
		}
	}
}
