package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RotationStrategy says how a target is brought onto a new secret value.
type RotationStrategy string

const (
	// RotationAuto picks rolling, recreate (host ports published) or none
	// (file-only binding).
	RotationAuto RotationStrategy = "auto"
	// RotationRolling creates a candidate, gates on health, then cuts over.
	RotationRolling RotationStrategy = "rolling"
	// RotationRecreate stops the old container before starting the candidate.
	RotationRecreate RotationStrategy = "recreate"
	// RotationRestart rewrites files in place and restarts the container.
	RotationRestart RotationStrategy = "restart"
	// RotationSignal rewrites files in place and signals the container.
	RotationSignal RotationStrategy = "signal"
	// RotationNone rewrites files in place and leaves the container alone.
	RotationNone RotationStrategy = "none"
)

// RotationStrategies lists every valid strategy.
var RotationStrategies = []RotationStrategy{RotationAuto, RotationRolling, RotationRecreate, RotationRestart, RotationSignal, RotationNone}

// SecretBindingSpec says which containers get which secrets from which store.
type SecretBindingSpec struct {
	// StoreRef names the SecretStore the data comes from.
	StoreRef StoreRef `json:"storeRef"`
	// Target selects the containers.
	Target Target `json:"target"`
	// Data lists single values and where each is delivered.
	Data []SecretData `json:"data,omitempty"`
	// DataFrom delivers every field of a JSON secret.
	DataFrom []SecretDataFrom `json:"dataFrom,omitempty"`
	// RefreshInterval is how often the store is polled for these keys;
	// default: the store's, else agent.watch.polling_interval.
	RefreshInterval *Duration `json:"refreshInterval,omitempty"`
	// Rotation says how targets move onto a changed value.
	Rotation Rotation `json:"rotation,omitempty"`
}

// StoreRef references a SecretStore by name.
type StoreRef struct {
	Name string `json:"name"`
}

// Target selects containers.
type Target struct {
	Selector Selector `json:"selector"`
}

// Selector matches containers, or one Swarm service. A container matches
// when it matches any of the set criteria (names, compose service, labels);
// within Labels every label must match. Swarm is exclusive: a binding that
// targets a Swarm service selects no container (docs/swarm.md).
type Selector struct {
	// Containers are container names.
	Containers []string `json:"containers,omitempty"`
	// Compose selects a compose project/service.
	Compose *ComposeSelector `json:"compose,omitempty"`
	// Labels selects containers carrying all of these labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Swarm selects one Swarm service. Its data is delivered as versioned
	// Docker secrets and rotated by Swarm's own rolling service update;
	// it may not be combined with containers, compose or labels.
	Swarm *SwarmSelector `json:"swarm,omitempty"`
}

// SwarmSelector selects a Swarm service by name. One service per binding:
// bind several services with several bindings (they may share values; the
// store is asked once per secret either way).
type SwarmSelector struct {
	// Service is the Swarm service name (as in docker service ls).
	Service string `json:"service"`
}

// ComposeSelector selects the containers of a compose service.
type ComposeSelector struct {
	Project string `json:"project"`
	Service string `json:"service,omitempty"`
}

// RemoteRef points at one secret in a store.
type RemoteRef struct {
	// Key is the secret's name in the store, e.g. shop/db.
	Key string `json:"key"`
	// Property extracts one field of a JSON secret.
	Property string `json:"property,omitempty"`
	// Version pins a provider version; empty means latest.
	Version string `json:"version,omitempty"`
}

// SecretData delivers one value, as an env var or as a file (exactly one).
type SecretData struct {
	RemoteRef RemoteRef   `json:"remoteRef"`
	Env       string      `json:"env,omitempty"`
	File      *FileTarget `json:"file,omitempty"`
}

// FileTarget is where and how a value is written inside the container.
type FileTarget struct {
	// Path is absolute, inside the container.
	Path string `json:"path"`
	// Mode is an octal string such as "0400"; default "0400".
	Mode string `json:"mode,omitempty"`
	UID  *int64 `json:"uid,omitempty"`
	GID  *int64 `json:"gid,omitempty"`
}

// SecretDataFrom delivers every field of a JSON secret: as env vars named
// Prefix+field, or, when Dir is set, as files Dir/field.
type SecretDataFrom struct {
	RemoteRef RemoteRef `json:"remoteRef"`
	Prefix    string    `json:"prefix,omitempty"`
	Dir       string    `json:"dir,omitempty"`
}

// Rotation configures how targets pick up new values.
type Rotation struct {
	// Strategy; default auto.
	Strategy RotationStrategy `json:"strategy,omitempty"`
	// Signal sent by the signal strategy; default SIGHUP.
	Signal string `json:"signal,omitempty"`
	// HealthTimeout bounds the health gate; default agent.rotation.timeout.
	HealthTimeout *Duration `json:"healthTimeout,omitempty"`
}

// TargetStatus is the observed state of one selected container, or of the
// selected Swarm service (Service set, Container empty).
type TargetStatus struct {
	Container    string       `json:"container"`
	Service      string       `json:"service,omitempty"`
	Hash         string       `json:"hash,omitempty"`
	Phase        string       `json:"phase,omitempty"`
	LastRotation *metav1.Time `json:"lastRotation,omitempty"`
}

// SecretBindingStatus is what the agent last observed of a binding.
type SecretBindingStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	LastSyncTime       *metav1.Time       `json:"lastSyncTime,omitempty"`
	NextSyncTime       *metav1.Time       `json:"nextSyncTime,omitempty"`
	Targets            []TargetStatus     `json:"targets,omitempty"`
}

// +kubebuilder:object:root=true

// SecretBinding binds secrets of one store to a set of containers.
type SecretBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretBindingSpec   `json:"spec,omitempty"`
	Status SecretBindingStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SecretBindingList is a list of SecretBindings.
type SecretBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretBinding `json:"items"`
}
