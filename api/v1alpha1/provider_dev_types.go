package v1alpha1

// FileProvider reads each key as a file under Dir (for example Docker or
// Swarm secret files in /run/secrets).
type FileProvider struct {
	Dir string `json:"dir"`
}

// EnvProvider reads each key from an environment variable of the agent: the
// key is upper-cased, '/', '-' and '.' become '_', and Prefix is prepended.
type EnvProvider struct {
	Prefix string `json:"prefix,omitempty"`
}
