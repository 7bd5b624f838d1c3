package v1alpha1

// ValueSource says where a credential comes from. Credentials are never
// written inline in a config file: exactly one of FromEnv or FromFile is set.
type ValueSource struct {
	// FromEnv names an environment variable of the agent (or CLI) process.
	FromEnv string `json:"fromEnv,omitempty"`
	// FromFile is an absolute path to a file holding the value; one trailing
	// newline is ignored.
	FromFile string `json:"fromFile,omitempty"`
}

// RateLimit is a token bucket applied to every call dso makes to one store.
type RateLimit struct {
	// QPS is the sustained number of provider calls per second.
	QPS float64 `json:"qps,omitempty"`
	// Burst is the number of calls allowed at once above QPS.
	Burst int32 `json:"burst,omitempty"`
}
