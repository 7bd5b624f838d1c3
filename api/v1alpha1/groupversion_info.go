package v1alpha1

import "k8s.io/apimachinery/pkg/runtime/schema"

const (
	// Group is the API group of every dso object.
	Group = "dso.dev"
	// Version is the API version implemented by this package.
	Version = "v1alpha1"

	KindSecretStore   = "SecretStore"
	KindSecretBinding = "SecretBinding"
	KindAgentConfig   = "AgentConfig"
)

// GroupVersion is the group and version of this package's objects.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// APIVersion is the apiVersion string written in YAML: "dso.dev/v1alpha1".
var APIVersion = GroupVersion.String()

// Condition types shared by SecretStore and SecretBinding.
const (
	ConditionReady    = "Ready"
	ConditionSynced   = "Synced"
	ConditionDegraded = "Degraded"
)
