package vault

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// settings is a SecretStore's vault section after defaulting and checks.
type settings struct {
	store     string
	address   string
	mount     string
	kvVersion int
	namespace string

	caFile             string
	insecureSkipVerify bool

	// Exactly one of tokenSrc / appRole is set.
	tokenSrc *v1alpha1.ValueSource
	appRole  *appRoleSettings
}

type appRoleSettings struct {
	path     string
	roleID   v1alpha1.ValueSource
	secretID v1alpha1.ValueSource
}

// parseSettings checks everything that can be checked without talking to
// Vault, so a bad store fails at load time with the field to fix.
func parseSettings(store *v1alpha1.SecretStore) (*settings, error) {
	name := store.Name
	v := store.Spec.Vault
	if v == nil {
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.vault is not set")
	}
	s := &settings{
		store:              name,
		mount:              strings.Trim(v.Mount, "/"),
		kvVersion:          int(v.KVVersion),
		namespace:          strings.Trim(v.Namespace, "/"),
		caFile:             v.CAFile,
		insecureSkipVerify: v.InsecureSkipVerify,
	}
	if s.mount == "" {
		s.mount = "secret"
	}
	if strings.Contains("/"+s.mount+"/", "/../") {
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", `spec.vault.mount %q must not contain ".."`, v.Mount)
	}
	switch s.kvVersion {
	case 0:
		s.kvVersion = 2
	case 1, 2:
	default:
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.vault.kvVersion is %d: use 1 or 2", v.KVVersion)
	}

	addr, err := checkAddress(name, v.Address, v.AllowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	s.address = addr

	if s.caFile != "" {
		if _, err := os.Stat(s.caFile); err != nil {
			return nil, providers.Wrap(providers.KindInvalidConfig, name, "", err, "spec.vault.caFile cannot be read")
		}
	}

	switch a := v.Auth; {
	case a.Token != nil && a.AppRole != nil:
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.vault.auth sets both token and appRole: set exactly one")
	case a.Token != nil:
		src := *a.Token
		s.tokenSrc = &src
	case a.AppRole != nil:
		p := strings.Trim(a.AppRole.Path, "/")
		if p == "" {
			p = "approle"
		}
		s.appRole = &appRoleSettings{path: p, roleID: a.AppRole.RoleID, secretID: a.AppRole.SecretID}
	default:
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.vault.auth sets no method: set token or appRole")
	}
	return s, nil
}

// checkAddress refuses addresses that would send a token in clear text over
// a network: http:// is allowed to loopback only, unless the operator opts
// in with allowInsecureHTTP.
func checkAddress(store, raw string, allowHTTP bool) (string, error) {
	if raw == "" {
		return "", providers.Errorf(providers.KindInvalidConfig, store, "", "spec.vault.address is empty: set it, e.g. https://vault.example:8200")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", providers.Errorf(providers.KindInvalidConfig, store, "", "spec.vault.address %q is not a URL like https://vault.example:8200", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP && !v1alpha1.IsLoopbackHost(u.Hostname()) {
			return "", providers.Errorf(providers.KindInvalidConfig, store, "",
				"spec.vault.address %q uses plain http to a non-loopback host, which would send the Vault token unencrypted: use https, or set allowInsecureHTTP: true if the network is trusted", raw)
		}
	default:
		return "", providers.Errorf(providers.KindInvalidConfig, store, "", "spec.vault.address %q: scheme must be https or http", raw)
	}
	if u.User != nil {
		return "", providers.Errorf(providers.KindInvalidConfig, store, "", "spec.vault.address must not contain user info: configure spec.vault.auth instead")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// kvPath is the HTTP API path of key for a read.
func (s *settings) kvPath(key string) string {
	if s.kvVersion == 2 {
		return fmt.Sprintf("%s/data/%s", s.mount, key)
	}
	return fmt.Sprintf("%s/%s", s.mount, key)
}
