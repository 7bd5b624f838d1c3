package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SecretStoreSpec is one connection to one secret provider. Exactly one
// provider field is set.
type SecretStoreSpec struct {
	// Local is the embedded encrypted file store (the default, no cloud account).
	Local *LocalProvider `json:"local,omitempty"`
	// Vault is a HashiCorp Vault KV engine (v1 or v2).
	Vault *VaultProvider `json:"vault,omitempty"`
	// AWS is AWS Secrets Manager.
	AWS *AWSProvider `json:"aws,omitempty"`
	// Azure is Azure Key Vault.
	Azure *AzureProvider `json:"azure,omitempty"`
	// File reads secrets from files in a directory (development, Docker/Swarm
	// secret files).
	File *FileProvider `json:"file,omitempty"`
	// Env reads secrets from the agent's environment (development only).
	Env *EnvProvider `json:"env,omitempty"`

	// RateLimit bounds the calls dso makes to this store.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// RefreshInterval is how often keys of this store are polled when a
	// binding does not say; it defaults to agent.watch.polling_interval.
	RefreshInterval *Duration `json:"refreshInterval,omitempty"`
}

// SecretStoreStatus is what the agent last observed of a store.
type SecretStoreStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// SecretStore is one connection to a provider, referenced by bindings.
type SecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretStoreSpec   `json:"spec,omitempty"`
	Status SecretStoreStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SecretStoreList is a list of SecretStores.
type SecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretStore `json:"items"`
}
