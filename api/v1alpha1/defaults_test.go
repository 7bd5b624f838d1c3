package v1alpha1

import (
	"reflect"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestAgentConfigDefault(t *testing.T) {
	var c AgentConfig
	c.Default()
	a := c.Spec.Agent
	checks := []struct {
		name      string
		got, want any
	}{
		{"cache.ttl", *a.Cache.TTL, Duration(time.Hour)},
		{"cache.max_size", *a.Cache.MaxSize, Size(500 * 1024 * 1024)},
		{"rotation.timeout", *a.Rotation.Timeout, Duration(30 * time.Second)},
		{"rotation.parallelism", *a.Rotation.Parallelism, int32(2)},
		{"watch.polling_interval", *a.Watch.PollingInterval, Duration(5 * time.Minute)},
		{"watch.debounce_window", *a.Watch.DebounceWindow, Duration(5 * time.Second)},
		{"watch.webhook.listen", a.Watch.Webhook.Listen, "127.0.0.1:9470"},
		{"api.socket", a.API.Socket, "/run/dso/dso.sock"},
		{"metrics.listen", a.Metrics.Listen, "127.0.0.1:9469"},
		{"logging.level", c.Spec.Logging.Level, "info"},
		{"logging.format", c.Spec.Logging.Format, "json"},
		{"logging.file", c.Spec.Logging.File, "/var/log/dso/agent.log"},
		{"state.dir", c.Spec.State.Dir, "/var/lib/dso/state"},
		{"bindings.dirs", c.Spec.Bindings.Dirs, []string{"/etc/dso/bindings.d"}},
		{"kind", c.Kind, "AgentConfig"},
		{"apiVersion", c.APIVersion, "dso.dev/v1alpha1"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Errorf("defaults do not validate: %v", errs)
	}
}

// Explicit values, including zeros, must survive defaulting so that Validate
// can reject the zeros.
func TestAgentConfigDefaultKeepsExplicitValues(t *testing.T) {
	c := AgentConfig{Spec: AgentConfigSpec{
		Agent: AgentSettings{
			Cache:    CacheSettings{TTL: ptr(Duration(0)), MaxSize: ptr(Size(1 << 30))},
			Rotation: RotationSettings{Parallelism: ptr(int32(0))},
		},
		Logging:  LoggingSettings{Level: "debug"},
		Bindings: BindingsSettings{Dirs: []string{"/srv/b"}},
	}}
	c.Default()
	if *c.Spec.Agent.Cache.TTL != 0 || *c.Spec.Agent.Rotation.Parallelism != 0 {
		t.Error("explicit zero was replaced by a default")
	}
	if *c.Spec.Agent.Cache.MaxSize != 1<<30 || c.Spec.Logging.Level != "debug" || !reflect.DeepEqual(c.Spec.Bindings.Dirs, []string{"/srv/b"}) {
		t.Errorf("explicit value changed: %+v", c.Spec)
	}
	if len(c.Validate()) != 2 {
		t.Errorf("want the two explicit zeros rejected, got %v", c.Validate())
	}
}

func TestSecretStoreDefault(t *testing.T) {
	tests := []struct {
		name  string
		in    SecretStoreSpec
		check func(s SecretStoreSpec) bool
	}{
		{"vault mount, kv version, approle path",
			SecretStoreSpec{Vault: &VaultProvider{Address: "https://v:8200", Auth: VaultAuth{AppRole: &VaultAppRole{}}}},
			func(s SecretStoreSpec) bool {
				return s.Vault.Mount == "secret" && s.Vault.KVVersion == 2 && s.Vault.Auth.AppRole.Path == "approle"
			}},
		{"vault explicit values kept",
			SecretStoreSpec{Vault: &VaultProvider{Mount: "kv", KVVersion: 1, Auth: VaultAuth{AppRole: &VaultAppRole{Path: "ar"}}}},
			func(s SecretStoreSpec) bool {
				return s.Vault.Mount == "kv" && s.Vault.KVVersion == 1 && s.Vault.Auth.AppRole.Path == "ar"
			}},
		{"local key file beside the store",
			SecretStoreSpec{Local: &LocalProvider{Path: "/var/lib/dso/vault.enc"}},
			func(s SecretStoreSpec) bool { return s.Local.KeyFile == "/var/lib/dso/vault.enc.key" }},
		{"local explicit key file kept",
			SecretStoreSpec{Local: &LocalProvider{Path: "/a", KeyFile: "/b"}},
			func(s SecretStoreSpec) bool { return s.Local.KeyFile == "/b" }},
		{"burst from qps",
			SecretStoreSpec{Env: &EnvProvider{}, RateLimit: &RateLimit{QPS: 2.5}},
			func(s SecretStoreSpec) bool { return s.RateLimit.Burst == 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SecretStore{Spec: tt.in}
			s.Default()
			if !tt.check(s.Spec) || s.Kind != KindSecretStore {
				t.Errorf("unexpected defaults: %+v", s.Spec)
			}
		})
	}
}

func TestSecretBindingDefault(t *testing.T) {
	b := SecretBinding{Spec: SecretBindingSpec{Data: []SecretData{
		{File: &FileTarget{Path: "/run/secrets/a/x"}},
		{File: &FileTarget{Path: "/run/secrets/a/y", Mode: "0440"}},
		{Env: "A"},
	}}}
	b.Default()
	if b.Spec.Rotation.Strategy != RotationAuto || b.Spec.Rotation.Signal != "" {
		t.Errorf("rotation = %+v, want auto without a signal", b.Spec.Rotation)
	}
	if b.Spec.Data[0].File.Mode != "0400" || b.Spec.Data[1].File.Mode != "0440" {
		t.Errorf("modes = %q %q", b.Spec.Data[0].File.Mode, b.Spec.Data[1].File.Mode)
	}
	s := SecretBinding{Spec: SecretBindingSpec{Rotation: Rotation{Strategy: RotationSignal}}}
	s.Default()
	if s.Spec.Rotation.Signal != "SIGHUP" {
		t.Errorf("signal = %q, want SIGHUP", s.Spec.Rotation.Signal)
	}
}
