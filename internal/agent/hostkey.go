package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// HostKeyFile is the per-host HMAC key's file name in the state dir.
const HostKeyFile = "hostkey"

// LoadHostKey reads the per-host HMAC key, creating it (32 random bytes,
// 0600) on first start. The key makes the dso.dev/secret-hash label useless
// for guessing values: it is an HMAC, not a plain digest of the secret.
func LoadHostKey(stateDir string) ([]byte, error) {
	p := filepath.Join(stateDir, HostKeyFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("host key %s is %d bytes, want 32: restore it from backup or remove it (every managed container then rotates once)", p, len(b))
		}
		st, err := os.Stat(p)
		if err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("host key %s is readable by group or others (mode %v): chmod 600 it", p, st.Mode().Perm())
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", stateDir, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create host key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, err
	}
	return key, nil
}

// AgentID is a stable, non-secret identifier of this agent's state: the
// first 8 bytes of an HMAC of a fixed string under the host key. It labels
// the candidates this agent creates (dso.dev/agent).
func AgentID(hostKey []byte) string {
	m := hmac.New(sha256.New, hostKey)
	m.Write([]byte("dso agent id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}
