package env

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

const secretValue = "s3cr3t-env-value-do-not-leak"

func TestVarName(t *testing.T) {
	tests := []struct{ prefix, key, want string }{
		{"", "db", "DB"},
		{"DSO_", "shop/db-password", "DSO_SHOP_DB_PASSWORD"},
		{"APP_", "a.b/c-d", "APP_A_B_C_D"},
		{"x_", "Already_Upper", "x_ALREADY_UPPER"},
	}
	for _, tt := range tests {
		if got := New("dev", tt.prefix).VarName(tt.key); got != tt.want {
			t.Errorf("VarName(%q, %q) = %q, want %q", tt.prefix, tt.key, got, tt.want)
		}
	}
}

func TestGet(t *testing.T) {
	vars := map[string]string{
		"DSO_SHOP_DB":  secretValue,
		"DSO_EMPTY":    "",
		"DSO_APP_JSON": `{"user":"admin","password":"` + secretValue + `"}`,
		"DSO_TOO_BIG":  strings.Repeat("x", providers.MaxValueSize+1),
		"SHOP_DB":      "unprefixed must not be read",
	}
	c := New("dev", "DSO_")
	c.lookup = func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	sum := sha256.Sum256([]byte(secretValue))
	current := hex.EncodeToString(sum[:8])

	tests := []struct {
		name     string
		ref      providers.Ref
		want     string
		wantKind providers.Kind
		wantErr  bool
		substr   string
	}{
		{name: "mapped key", ref: providers.Ref{Key: "shop/db"}, want: secretValue},
		{name: "mapped key with dash", ref: providers.Ref{Key: "shop-db"}, want: secretValue},
		{name: "empty but set", ref: providers.Ref{Key: "empty"}, want: ""},
		{name: "json property", ref: providers.Ref{Key: "app.json", Property: "user"}, want: "admin"},
		{name: "missing property", ref: providers.Ref{Key: "app.json", Property: "nope"}, wantErr: true, wantKind: providers.KindNotFound, substr: `field "nope"`},
		{name: "unset", ref: providers.Ref{Key: "shop/other"}, wantErr: true, wantKind: providers.KindNotFound, substr: "DSO_SHOP_OTHER is not set"},
		{name: "pinned current", ref: providers.Ref{Key: "shop/db", Version: current}, want: secretValue},
		{name: "pinned other", ref: providers.Ref{Key: "shop/db", Version: "1"}, wantErr: true, wantKind: providers.KindNotFound},
		{name: "oversized", ref: providers.Ref{Key: "too/big"}, wantErr: true, wantKind: providers.KindInvalidRef, substr: "1 MiB"},
		{name: "traversal", ref: providers.Ref{Key: "../x"}, wantErr: true, wantKind: providers.KindInvalidRef},
		{name: "equals sign", ref: providers.Ref{Key: "a=b"}, wantErr: true, wantKind: providers.KindInvalidRef, substr: "'='"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.Get(context.Background(), tt.ref)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Get(%+v) succeeded", tt.ref)
				}
				if providers.KindOf(err) != tt.wantKind {
					t.Errorf("kind = %v, want %v (%v)", providers.KindOf(err), tt.wantKind, err)
				}
				if !strings.Contains(err.Error(), tt.substr) || !strings.Contains(err.Error(), `store "dev"`) {
					t.Errorf("error %q should name the store and contain %q", err, tt.substr)
				}
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("error leaks the value: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Value) != tt.want {
				t.Errorf("value = %q, want %q", s.Value, tt.want)
			}
		})
	}
}

func TestRealEnvironmentAndRegistry(t *testing.T) {
	t.Setenv("DSOTEST_SHOP_DB", secretValue)
	r := providers.NewRegistry()
	r.MustRegister(Provider{})
	store := &v1alpha1.SecretStore{Spec: v1alpha1.SecretStoreSpec{Env: &v1alpha1.EnvProvider{Prefix: "DSOTEST_"}}}
	store.Name = "dev"
	c, err := r.NewClient(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Get(context.Background(), providers.Ref{Key: "shop/db"})
	if err != nil || string(s.Value) != secretValue {
		t.Fatalf("Get = %q, %v", s.Value, err)
	}
	if err := c.Validate(context.Background()); err != nil {
		t.Error(err)
	}
}
