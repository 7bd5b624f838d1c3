package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// AgentConfigSpec carries the keys of the operations guide. In a file it may
// be written either under spec: or, as the guide does, at the top level of
// the document (agent:, logging:, state:, bindings:).
type AgentConfigSpec struct {
	Agent    AgentSettings    `json:"agent,omitempty"`
	Logging  LoggingSettings  `json:"logging,omitempty"`
	State    StateSettings    `json:"state,omitempty"`
	Bindings BindingsSettings `json:"bindings,omitempty"`
	// Notifications are outbound webhooks told about rotations and recovery.
	Notifications []NotificationSink `json:"notifications,omitempty"`
}

// AgentSettings are the agent's tunables.
type AgentSettings struct {
	Cache    CacheSettings    `json:"cache,omitempty"`
	Rotation RotationSettings `json:"rotation,omitempty"`
	Watch    WatchSettings    `json:"watch,omitempty"`
	API      APISettings      `json:"api,omitempty"`
	Metrics  MetricsSettings  `json:"metrics,omitempty"`
	Delivery DeliverySettings `json:"delivery,omitempty"`
}

// DeliverySettings locate the tmpfs that secret files are written to.
type DeliverySettings struct {
	// Dir is mounted as a tmpfs by the agent unless it already is one;
	// default /run/dso/secrets.
	Dir string `json:"dir,omitempty"`
}

// CacheSettings bound the secret cache.
type CacheSettings struct {
	// TTL of a cached value; default 1h.
	TTL *Duration `json:"ttl,omitempty"`
	// MaxSize is the cache's byte budget; default 500Mi.
	MaxSize *Size `json:"max_size,omitempty"`
}

// RotationSettings bound container rotations.
type RotationSettings struct {
	// Timeout of a rotation's health gate; default 30s.
	Timeout *Duration `json:"timeout,omitempty"`
	// Parallelism is the number of swaps run at once; default 2.
	Parallelism *int32 `json:"parallelism,omitempty"`
}

// WatchSettings control how changes are noticed.
type WatchSettings struct {
	// PollingInterval is the default provider poll period; default 5m.
	PollingInterval *Duration `json:"polling_interval,omitempty"`
	// DebounceWindow coalesces bursts of changes per target; default 5s.
	DebounceWindow *Duration `json:"debounce_window,omitempty"`
	// Webhook is an optional inbound endpoint that triggers a fetch now.
	Webhook WebhookSettings `json:"webhook,omitempty"`
}

// WebhookSettings configure the inbound change webhook.
type WebhookSettings struct {
	Enabled bool `json:"enabled,omitempty"`
	// Listen address; default 127.0.0.1:9470.
	Listen string `json:"listen,omitempty"`
	// Token is the bearer token callers must present.
	Token *ValueSource `json:"token,omitempty"`
}

// APISettings configure the agent's unix socket API.
type APISettings struct {
	// Socket path; default /run/dso/dso.sock.
	Socket string `json:"socket,omitempty"`
}

// MetricsSettings configure /metrics, /healthz and /readyz.
type MetricsSettings struct {
	// Listen address; default 127.0.0.1:9469.
	Listen string `json:"listen,omitempty"`
}

// LoggingSettings configure the agent's log.
type LoggingSettings struct {
	// Level: debug, info, warn, error; default info.
	Level string `json:"level,omitempty"`
	// Format: json or console; default json.
	Format string `json:"format,omitempty"`
	// File receives JSON lines; default /var/log/dso/agent.log
	// (journald is used instead when running under systemd).
	File string `json:"file,omitempty"`
}

// StateSettings locate the agent's state store.
type StateSettings struct {
	// Dir; default /var/lib/dso/state.
	Dir string `json:"dir,omitempty"`
}

// BindingsSettings locate watched folders of declarations.
type BindingsSettings struct {
	// Dirs; default [/etc/dso/bindings.d].
	Dirs []string `json:"dirs,omitempty"`
}

// AgentConfigStatus is unused for now; present for shape.
type AgentConfigStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// AgentConfig is the agent's configuration (/etc/dso/dso.yaml).
type AgentConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AgentConfigSpec   `json:"spec,omitempty"`
	Status AgentConfigStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AgentConfigList is a list of AgentConfigs.
type AgentConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentConfig `json:"items"`
}
