// Package v1alpha1 holds dso's declarative objects (group dso.dev, version
// v1alpha1): SecretStore, SecretBinding and AgentConfig.
//
// They are shaped like Kubernetes objects (TypeMeta, ObjectMeta, Spec,
// Status with Conditions) so that people who know controllers can read them,
// and so that the agent's reconcilers can use the same vocabulary. They are
// not served by a Kubernetes API server: the agent loads them from YAML files
// and keeps applied copies in its own state store.
//
// +kubebuilder:object:generate=true
// +groupName=dso.dev
package v1alpha1
