package v1alpha1

// AzureProvider reads Azure Key Vault secrets.
type AzureProvider struct {
	// VaultURL, e.g. https://myvault.vault.azure.net/.
	VaultURL string `json:"vaultURL"`
	// Auth selects credentials; empty means DefaultAzureCredential.
	Auth AzureAuth `json:"auth,omitempty"`
}

// AzureAuth holds at most one Azure credential kind.
type AzureAuth struct {
	ClientSecret    *AzureClientSecretAuth    `json:"clientSecret,omitempty"`
	ManagedIdentity *AzureManagedIdentityAuth `json:"managedIdentity,omitempty"`
}

// AzureClientSecretAuth is a service principal with a client secret.
type AzureClientSecretAuth struct {
	TenantID     string      `json:"tenantID"`
	ClientID     string      `json:"clientID"`
	ClientSecret ValueSource `json:"clientSecret"`
}

// AzureManagedIdentityAuth uses the host's managed identity.
type AzureManagedIdentityAuth struct {
	// ClientID selects a user-assigned identity; empty means system-assigned.
	ClientID string `json:"clientID,omitempty"`
}
