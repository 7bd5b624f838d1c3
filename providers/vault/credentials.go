package vault

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// resolveValue reads a credential from the place a ValueSource names.
//
// It lives here for now because providers/credentials.go belongs to another
// change; it is meant to move there so every provider resolves fromEnv /
// fromFile the same way. field is the config path used in error messages
// (e.g. "spec.vault.auth.token"); errors name the variable or file, never
// the value.
func resolveValue(store, field string, src v1alpha1.ValueSource) (string, error) {
	switch {
	case src.FromEnv != "" && src.FromFile != "":
		return "", providers.Errorf(providers.KindInvalidConfig, store, "", "%s sets both fromEnv and fromFile: set exactly one", field)
	case src.FromEnv != "":
		v, ok := os.LookupEnv(src.FromEnv)
		if !ok {
			return "", providers.Errorf(providers.KindInvalidConfig, store, "", "%s.fromEnv: environment variable %s is not set in the agent's environment", field, src.FromEnv)
		}
		if v == "" {
			return "", providers.Errorf(providers.KindInvalidConfig, store, "", "%s.fromEnv: environment variable %s is empty", field, src.FromEnv)
		}
		return v, nil
	case src.FromFile != "":
		if !filepath.IsAbs(src.FromFile) {
			return "", providers.Errorf(providers.KindInvalidConfig, store, "", "%s.fromFile: %q is not an absolute path", field, src.FromFile)
		}
		b, err := os.ReadFile(src.FromFile)
		if err != nil {
			// The *PathError names the file and the reason (missing,
			// permission); it cannot contain the file's content.
			return "", providers.Wrap(providers.KindInvalidConfig, store, "", err, fmt.Sprintf("%s.fromFile: cannot read the credential file", field))
		}
		// One trailing newline is ignored (files written by `echo` or an
		// editor); anything else is kept exactly.
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", providers.Errorf(providers.KindInvalidConfig, store, "", "%s.fromFile: %s is empty", field, src.FromFile)
		}
		return v, nil
	default:
		return "", providers.Errorf(providers.KindInvalidConfig, store, "", "%s: set fromEnv or fromFile", field)
	}
}
