package credsrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

func TestResolve(t *testing.T) {
	const secret = "s3cr3t-VALUE-xyz"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain", secret)
	nl := write("nl", secret+"\n")
	crlf := write("crlf", secret+"\r\n")
	twoNL := write("twonl", secret+"\n\n")
	empty := write("empty", "\n")
	big := write("big", strings.Repeat("a", maxCredentialSize+1))
	t.Setenv("CREDSRC_TEST_SET", secret)
	t.Setenv("CREDSRC_TEST_EMPTY", "")

	tests := []struct {
		name    string
		vs      v1alpha1.ValueSource
		want    string
		wantErr string // substring; empty means success
	}{
		{name: "env", vs: v1alpha1.ValueSource{FromEnv: "CREDSRC_TEST_SET"}, want: secret},
		{name: "env unset", vs: v1alpha1.ValueSource{FromEnv: "CREDSRC_TEST_UNSET_XYZ"}, wantErr: "CREDSRC_TEST_UNSET_XYZ is not set"},
		{name: "env empty", vs: v1alpha1.ValueSource{FromEnv: "CREDSRC_TEST_EMPTY"}, wantErr: "CREDSRC_TEST_EMPTY is empty"},
		{name: "file", vs: v1alpha1.ValueSource{FromFile: plain}, want: secret},
		{name: "file trailing newline trimmed", vs: v1alpha1.ValueSource{FromFile: nl}, want: secret},
		{name: "file trailing crlf trimmed", vs: v1alpha1.ValueSource{FromFile: crlf}, want: secret},
		{name: "file only one newline trimmed", vs: v1alpha1.ValueSource{FromFile: twoNL}, want: secret + "\n"},
		{name: "file empty", vs: v1alpha1.ValueSource{FromFile: empty}, wantErr: "is empty"},
		{name: "file relative", vs: v1alpha1.ValueSource{FromFile: "creds/key"}, wantErr: "not an absolute path"},
		{name: "file missing", vs: v1alpha1.ValueSource{FromFile: filepath.Join(dir, "nope")}, wantErr: "cannot read the credential file"},
		{name: "file too big", vs: v1alpha1.ValueSource{FromFile: big}, wantErr: "larger than"},
		{name: "both", vs: v1alpha1.ValueSource{FromEnv: "X", FromFile: plain}, wantErr: "both fromEnv and fromFile"},
		{name: "neither", vs: v1alpha1.ValueSource{}, wantErr: "neither fromEnv nor fromFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve("prod-aws", "spec.aws.auth.static.accessKeyID", tt.vs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if string(got) != tt.want {
					t.Fatalf("Resolve = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve succeeded, want error containing %q", tt.wantErr)
			}
			msg := err.Error()
			for _, want := range []string{tt.wantErr, `store "prod-aws"`, "spec.aws.auth.static.accessKeyID"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q leaks the credential value", msg)
			}
			if providers.KindOf(err) != providers.KindInvalidConfig {
				t.Errorf("kind = %v, want invalid configuration", providers.KindOf(err))
			}
		})
	}
}
