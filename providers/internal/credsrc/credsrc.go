// Package credsrc resolves the ValueSource fields of SecretStore specs
// (fromEnv / fromFile) into credential bytes for the providers that need
// them. It exists so that every provider reads credentials the same way and
// reports a missing or unreadable one with the same kind of error: one that
// names the store and the field to fix, and never contains the value.
package credsrc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// maxCredentialSize bounds what we read from a credential file; a key or a
// token is a few KiB at most, and a huge file is a misconfiguration (for
// example fromFile pointing at a log).
const maxCredentialSize = 64 << 10

// Resolve returns the bytes vs points at. store names the SecretStore and
// field is the spec path of vs (e.g. "spec.aws.auth.static.accessKeyID");
// both appear in errors so the operator knows what to fix.
//
// Rules: exactly one of FromEnv or FromFile is set; FromFile is an absolute
// path and one trailing newline ("\n" or "\r\n") is trimmed, because editors
// and `echo` add one; an empty value is refused (an empty key is never what
// was meant, and it would otherwise surface later as a confusing auth error).
// All errors are *providers.Error of KindInvalidConfig.
func Resolve(store, field string, vs v1alpha1.ValueSource) ([]byte, error) {
	switch {
	case vs.FromEnv != "" && vs.FromFile != "":
		return nil, invalid(store, "%s sets both fromEnv and fromFile: set exactly one", field)
	case vs.FromEnv != "":
		v, ok := os.LookupEnv(vs.FromEnv)
		if !ok {
			return nil, invalid(store, "%s.fromEnv: environment variable %s is not set in the agent's environment", field, vs.FromEnv)
		}
		if v == "" {
			return nil, invalid(store, "%s.fromEnv: environment variable %s is empty", field, vs.FromEnv)
		}
		return []byte(v), nil
	case vs.FromFile != "":
		return readFile(store, field, vs.FromFile)
	default:
		return nil, invalid(store, "%s sets neither fromEnv nor fromFile: set one of them", field)
	}
}

// ResolveString is Resolve for SDKs that take credentials as strings.
func ResolveString(store, field string, vs v1alpha1.ValueSource) (string, error) {
	b, err := Resolve(store, field, vs)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func readFile(store, field, path string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, invalid(store, "%s.fromFile: %q is not an absolute path: write the full path", field, path)
	}
	f, err := os.Open(path)
	if err != nil {
		// The *PathError names the path and the reason (not found, permission),
		// never the content.
		return nil, &providers.Error{Kind: providers.KindInvalidConfig, Store: store,
			Msg: fmt.Sprintf("%s.fromFile: cannot read the credential file", field), Err: err}
	}
	defer func() { _ = f.Close() }() // read-only: a close error cannot lose data
	buf, err := io.ReadAll(io.LimitReader(f, maxCredentialSize+1))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInvalidConfig, Store: store,
			Msg: fmt.Sprintf("%s.fromFile: cannot read the credential file %s", field, path), Err: err}
	}
	if len(buf) > maxCredentialSize {
		clear(buf)
		return nil, invalid(store, "%s.fromFile: %s is larger than %d bytes: point it at the file holding only the credential", field, path, maxCredentialSize)
	}
	v := buf
	switch {
	case bytes.HasSuffix(v, []byte("\r\n")):
		v = v[:len(v)-2]
	case bytes.HasSuffix(v, []byte("\n")):
		v = v[:len(v)-1]
	}
	if len(v) == 0 {
		return nil, invalid(store, "%s.fromFile: %s is empty", field, path)
	}
	return v, nil
}

func invalid(store, format string, args ...any) error {
	return providers.Errorf(providers.KindInvalidConfig, store, "", format, args...)
}
