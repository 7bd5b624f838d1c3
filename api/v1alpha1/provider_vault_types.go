package v1alpha1

// VaultProvider reads a HashiCorp Vault KV secrets engine.
type VaultProvider struct {
	// Address of the Vault server, e.g. https://vault.example:8200.
	Address string `json:"address"`
	// Mount is the KV engine's mount path; default "secret".
	Mount string `json:"mount,omitempty"`
	// KVVersion is 1 or 2; default 2.
	KVVersion int32 `json:"kvVersion,omitempty"`
	// Namespace is the Vault Enterprise namespace, if any.
	Namespace string `json:"namespace,omitempty"`
	// Auth says how dso logs in.
	Auth VaultAuth `json:"auth"`
	// CAFile is a PEM bundle used to verify the server.
	CAFile string `json:"caFile,omitempty"`
	// InsecureSkipVerify disables TLS verification (explicit opt-in, testing only).
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// AllowInsecureHTTP allows http:// to a non-loopback address.
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// VaultAuth holds exactly one Vault auth method.
type VaultAuth struct {
	Token   *ValueSource  `json:"token,omitempty"`
	AppRole *VaultAppRole `json:"appRole,omitempty"`
}

// VaultAppRole logs in with the AppRole auth method.
type VaultAppRole struct {
	// Path is the auth mount; default "approle".
	Path     string      `json:"path,omitempty"`
	RoleID   ValueSource `json:"roleID"`
	SecretID ValueSource `json:"secretID"`
}
