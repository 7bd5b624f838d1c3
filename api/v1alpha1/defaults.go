package v1alpha1

import (
	"math"
	"time"
)

// Defaults of the AgentConfig, as documented in the operations guide and in
// config/dso.yaml. They are exported so that `config show`, docs and tests
// quote the same values the agent uses.
const (
	DefaultCacheTTL           = Duration(time.Hour)
	DefaultCacheMaxSize       = Size(500 << 20)
	DefaultRotationTimeout    = Duration(30 * time.Second)
	DefaultParallelism        = int32(2)
	DefaultPollingInterval    = Duration(5 * time.Minute)
	DefaultDebounceWindow     = Duration(5 * time.Second)
	DefaultAPISocket          = "/run/dso/dso.sock"
	DefaultMetricsListen      = "127.0.0.1:9469"
	DefaultWebhookListen      = "127.0.0.1:9470"
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "json"
	DefaultLogFile            = "/var/log/dso/agent.log"
	DefaultStateDir           = "/var/lib/dso/state"
	DefaultDeliveryDir        = "/run/dso/secrets"
	DefaultBindingsDir        = "/etc/dso/bindings.d"
	DefaultVaultMount         = "secret"
	DefaultVaultKVVersion     = int32(2)
	DefaultVaultAppRolePath   = "approle"
	DefaultLocalKeyFileSuffix = ".key"
	DefaultFileMode           = "0400"
	DefaultSignal             = "SIGHUP"
)

// Default fills every unset AgentConfig field with its documented default.
// Only nil or empty fields are filled: the tunables are pointers so that an
// explicit zero ("parallelism: 0") survives defaulting and is rejected by
// Validate instead of being silently replaced.
func (c *AgentConfig) Default() {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = KindAgentConfig
	}
	a := &c.Spec.Agent
	setDuration(&a.Cache.TTL, DefaultCacheTTL)
	if a.Cache.MaxSize == nil {
		v := DefaultCacheMaxSize
		a.Cache.MaxSize = &v
	}
	setDuration(&a.Rotation.Timeout, DefaultRotationTimeout)
	if a.Rotation.Parallelism == nil {
		v := DefaultParallelism
		a.Rotation.Parallelism = &v
	}
	setDuration(&a.Watch.PollingInterval, DefaultPollingInterval)
	setDuration(&a.Watch.DebounceWindow, DefaultDebounceWindow)
	setString(&a.Watch.Webhook.Listen, DefaultWebhookListen)
	setString(&a.API.Socket, DefaultAPISocket)
	setString(&a.Metrics.Listen, DefaultMetricsListen)
	setString(&a.Delivery.Dir, DefaultDeliveryDir)

	l := &c.Spec.Logging
	setString(&l.Level, DefaultLogLevel)
	setString(&l.Format, DefaultLogFormat)
	setString(&l.File, DefaultLogFile)

	setString(&c.Spec.State.Dir, DefaultStateDir)
	if len(c.Spec.Bindings.Dirs) == 0 {
		c.Spec.Bindings.Dirs = []string{DefaultBindingsDir}
	}
}

// Default fills the provider defaults of a SecretStore: Vault mount "secret",
// KV version 2, AppRole mount "approle", the local store's key file beside
// its data file, and a rate-limit burst of at least one call.
func (s *SecretStore) Default() {
	if s.APIVersion == "" {
		s.APIVersion = APIVersion
	}
	if s.Kind == "" {
		s.Kind = KindSecretStore
	}
	if v := s.Spec.Vault; v != nil {
		setString(&v.Mount, DefaultVaultMount)
		if v.KVVersion == 0 {
			v.KVVersion = DefaultVaultKVVersion
		}
		if v.Auth.AppRole != nil {
			setString(&v.Auth.AppRole.Path, DefaultVaultAppRolePath)
		}
	}
	if l := s.Spec.Local; l != nil && l.KeyFile == "" && l.Path != "" {
		l.KeyFile = l.Path + DefaultLocalKeyFileSuffix
	}
	// A token bucket with burst 0 would refuse every call; a user who wrote
	// only qps means "about that many per second", so the burst becomes the
	// rounded-up qps (at least 1).
	if r := s.Spec.RateLimit; r != nil && r.Burst == 0 && r.QPS > 0 {
		b := math.Ceil(r.QPS)
		if b > math.MaxInt32 {
			b = math.MaxInt32
		}
		r.Burst = int32(b)
	}
}

// Default fills the rotation strategy (auto), the signal of the signal
// strategy (SIGHUP) and every file's mode ("0400").
func (b *SecretBinding) Default() {
	if b.APIVersion == "" {
		b.APIVersion = APIVersion
	}
	if b.Kind == "" {
		b.Kind = KindSecretBinding
	}
	r := &b.Spec.Rotation
	if r.Strategy == "" {
		r.Strategy = RotationAuto
	}
	if r.Strategy == RotationSignal && r.Signal == "" {
		r.Signal = DefaultSignal
	}
	for i := range b.Spec.Data {
		if f := b.Spec.Data[i].File; f != nil && f.Mode == "" {
			f.Mode = DefaultFileMode
		}
	}
}

func setDuration(p **Duration, v Duration) {
	if *p == nil {
		*p = &v
	}
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}
