package v1alpha1

// LocalProvider is the embedded encrypted file store created by `dso init`.
type LocalProvider struct {
	// Path of the encrypted store file, e.g. /var/lib/dso/vault.enc.
	Path string `json:"path"`
	// KeyFile holds the store's private key (mode 0600). Defaults to a file
	// beside Path.
	KeyFile string `json:"keyFile,omitempty"`
}
