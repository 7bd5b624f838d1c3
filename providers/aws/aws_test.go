package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

const (
	testKeyID  = "AKIDTESTFROMENV"
	testSecret = "wJalrXUtnFEMI-not-a-real-secret-key"
	storeName  = "prod-aws"
)

// Values the fake holds. Every error produced in these tests is checked not
// to contain any of them.
var secretValues = []string{
	"hunter2-plain-string-value",
	`{"username":"app","password":"pa55-json-field-value","port":5432}`,
	"pa55-json-field-value",
	"old-previous-value",
	"pinned-by-id-value",
	testSecret,
}

var binaryValue = []byte{0x00, 0xff, 0x10, 'b', 'i', 'n', 0x80}

// isolateEnv keeps the developer's ~/.aws and AWS_* variables out of tests.
func isolateEnv(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	// Never ask an instance metadata service (it is not loopback).
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("DSO_TEST_AWS_KEY_ID", testKeyID)
	t.Setenv("DSO_TEST_AWS_SECRET", testSecret)
}

func staticStore(endpoint string) *v1alpha1.SecretStore {
	return &v1alpha1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: storeName},
		Spec: v1alpha1.SecretStoreSpec{AWS: &v1alpha1.AWSProvider{
			Region:   "eu-west-1",
			Endpoint: endpoint,
			Auth: v1alpha1.AWSAuth{Static: &v1alpha1.AWSStaticAuth{
				AccessKeyID:     v1alpha1.ValueSource{FromEnv: "DSO_TEST_AWS_KEY_ID"},
				SecretAccessKey: v1alpha1.ValueSource{FromEnv: "DSO_TEST_AWS_SECRET"},
			}},
		}},
	}
}

// fastRetries keeps the SDK's attempt count but not its 1 s throttle delay.
var fastRetries = options{backoff: retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
	return time.Millisecond, nil
})}

func newTestClient(t testing.TB, store *v1alpha1.SecretStore) *Client {
	t.Helper()
	c, err := newClient(context.Background(), store, fastRetries)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	return c
}

func seeded(t testing.TB) *fakeSM {
	f := newFakeSM(t)
	f.putString("shop/plain", "11111111-1111-4111-8111-111111111111", secretValues[0], "AWSCURRENT")
	f.putString("shop/db", "22222222-2222-4222-8222-222222222222", secretValues[1], "AWSCURRENT")
	f.putBinary("shop/blob", "33333333-3333-4333-8333-333333333333", binaryValue, "AWSCURRENT")
	f.putString("shop/rotated", "44444444-4444-4444-8444-444444444444", "current-value", "AWSCURRENT")
	f.putString("shop/rotated", "55555555-5555-4555-8555-555555555555", secretValues[3], "AWSPREVIOUS")
	f.putString("shop/rotated", "client-token-not-a-uuid", secretValues[4], "blue")
	return f
}

// assertNoValue fails when err's text contains a secret value.
func assertNoValue(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, v := range secretValues {
		if strings.Contains(msg, v) {
			t.Errorf("error text leaks a secret value: %q", msg)
		}
	}
	if strings.Contains(msg, string(binaryValue)) {
		t.Errorf("error text leaks the binary value: %q", msg)
	}
}

func TestGet(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	f.denied["shop/forbidden"] = true
	c := newTestClient(t, staticStore(f.srv.URL))

	tests := []struct {
		name        string
		ref         providers.Ref
		wantValue   string
		wantVersion string
		wantKind    providers.Kind // KindUnknown means success
		wantMsg     string
		wantCalls   int
	}{
		{name: "string", ref: providers.Ref{Key: "shop/plain"}, wantValue: secretValues[0], wantVersion: "11111111-1111-4111-8111-111111111111", wantCalls: 1},
		{name: "binary", ref: providers.Ref{Key: "shop/blob"}, wantValue: string(binaryValue), wantVersion: "33333333-3333-4333-8333-333333333333", wantCalls: 1},
		{name: "property", ref: providers.Ref{Key: "shop/db", Property: "password"}, wantValue: "pa55-json-field-value", wantVersion: "22222222-2222-4222-8222-222222222222", wantCalls: 1},
		{name: "numeric property keeps JSON text", ref: providers.Ref{Key: "shop/db", Property: "port"}, wantValue: "5432", wantVersion: "22222222-2222-4222-8222-222222222222", wantCalls: 1},
		{name: "missing property", ref: providers.Ref{Key: "shop/db", Property: "apikey"}, wantKind: providers.KindNotFound, wantMsg: `field "apikey" not in secret`, wantCalls: 1},
		{name: "version id (uuid)", ref: providers.Ref{Key: "shop/rotated", Version: "55555555-5555-4555-8555-555555555555"}, wantValue: secretValues[3], wantVersion: "55555555-5555-4555-8555-555555555555", wantCalls: 1},
		{name: "version stage", ref: providers.Ref{Key: "shop/rotated", Version: "AWSPREVIOUS"}, wantValue: secretValues[3], wantVersion: "55555555-5555-4555-8555-555555555555", wantCalls: 1},
		{name: "custom stage", ref: providers.Ref{Key: "shop/rotated", Version: "blue"}, wantValue: secretValues[4], wantVersion: "client-token-not-a-uuid", wantCalls: 1},
		{name: "explicit id prefix", ref: providers.Ref{Key: "shop/rotated", Version: "id:client-token-not-a-uuid"}, wantValue: secretValues[4], wantVersion: "client-token-not-a-uuid", wantCalls: 1},
		{name: "explicit stage prefix", ref: providers.Ref{Key: "shop/rotated", Version: "stage:AWSPREVIOUS"}, wantValue: secretValues[3], wantVersion: "55555555-5555-4555-8555-555555555555", wantCalls: 1},
		{name: "current by default", ref: providers.Ref{Key: "shop/rotated"}, wantValue: "current-value", wantVersion: "44444444-4444-4444-8444-444444444444", wantCalls: 1},
		{name: "by arn", ref: providers.Ref{Key: arn("shop/plain")}, wantValue: secretValues[0], wantVersion: "11111111-1111-4111-8111-111111111111", wantCalls: 1},
		{name: "not found", ref: providers.Ref{Key: "shop/missing"}, wantKind: providers.KindNotFound, wantMsg: "has no such secret", wantCalls: 1},
		{name: "unknown version", ref: providers.Ref{Key: "shop/rotated", Version: "AWSPENDING"}, wantKind: providers.KindNotFound, wantCalls: 1},
		{name: "access denied", ref: providers.Ref{Key: "shop/forbidden"}, wantKind: providers.KindPermissionDenied, wantMsg: "AccessDeniedException", wantCalls: 1},
		{name: "traversal refused before any call", ref: providers.Ref{Key: "shop/../admin"}, wantKind: providers.KindInvalidRef, wantCalls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.count("GetSecretValue")
			s, err := c.Get(context.Background(), tt.ref)
			if got := f.count("GetSecretValue") - before; got != tt.wantCalls {
				t.Errorf("GetSecretValue calls = %d, want %d", got, tt.wantCalls)
			}
			assertNoValue(t, err)
			if tt.wantKind != providers.KindUnknown {
				if err == nil {
					t.Fatalf("Get succeeded, want %v", tt.wantKind)
				}
				if k := providers.KindOf(err); k != tt.wantKind {
					t.Fatalf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
				}
				for _, want := range []string{tt.wantMsg, `store "prod-aws"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(s.Value) != tt.wantValue {
				t.Errorf("value = %q, want %q", s.Value, tt.wantValue)
			}
			if s.Version != tt.wantVersion {
				t.Errorf("version = %q, want %q", s.Version, tt.wantVersion)
			}
		})
	}
	if !f.keyIDs[testKeyID] || len(f.keyIDs) != 1 {
		t.Errorf("requests were signed with %v, want only %s", f.keyIDs, testKeyID)
	}
}

func TestGetFieldsOfJSONSecret(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	c := newTestClient(t, staticStore(f.srv.URL))
	s, err := c.Get(context.Background(), providers.Ref{Key: "shop/db"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.Fields["username"]); got != "app" {
		t.Errorf("Fields[username] = %q, want app", got)
	}
}

func TestVersionSelector(t *testing.T) {
	tests := []struct{ in, id, stage string }{
		{"", "", ""},
		{"AWSCURRENT", "", "AWSCURRENT"},
		{"AWSPREVIOUS", "", "AWSPREVIOUS"},
		{"a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "", "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"}, // not hex: a stage
		{"a1b2c3d4-5678-90ab-cdef-abcdef111111", "a1b2c3d4-5678-90ab-cdef-abcdef111111", ""},
		{"id:anything", "anything", ""},
		{"stage:11111111-1111-4111-8111-111111111111", "", "11111111-1111-4111-8111-111111111111"},
	}
	for _, tt := range tests {
		id, stage := versionSelector(tt.in)
		if id != tt.id || stage != tt.stage {
			t.Errorf("versionSelector(%q) = (%q, %q), want (%q, %q)", tt.in, id, stage, tt.id, tt.stage)
		}
	}
}

func TestThrottlingIsBounded(t *testing.T) {
	isolateEnv(t)
	tests := []struct {
		name         string
		throttle     int
		wantAttempts int
		wantKind     providers.Kind
	}{
		{name: "persistent throttling gives up after max attempts", throttle: 50, wantAttempts: maxAttempts, wantKind: providers.KindUnavailable},
		{name: "one throttle is retried", throttle: 1, wantAttempts: 2},
		{name: "two throttles still fit in the budget", throttle: 2, wantAttempts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			f.throttle = tt.throttle
			c := newTestClient(t, staticStore(f.srv.URL))
			_, err := c.Get(context.Background(), providers.Ref{Key: "shop/plain"})
			if got := f.count("GetSecretValue"); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			assertNoValue(t, err)
			if tt.wantKind == providers.KindUnknown {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				return
			}
			if k := providers.KindOf(err); k != tt.wantKind {
				t.Fatalf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
			}
			if !providers.Retryable(err) || !strings.Contains(err.Error(), "ThrottlingException") {
				t.Errorf("error %q should be retryable and name ThrottlingException", err)
			}
		})
	}
}

func TestDefaultRetryerIsBounded(t *testing.T) {
	// Without the test backoff: the production retryer must still stop at
	// maxAttempts, and the whole throttled Get must stay within a few seconds.
	if testing.Short() {
		t.Skip("takes ~2 s of real SDK backoff")
	}
	isolateEnv(t)
	f := seeded(t)
	f.throttle = 50
	c, err := newClient(context.Background(), staticStore(f.srv.URL), options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Get(context.Background(), providers.Ref{Key: "shop/plain"})
	elapsed := time.Since(start)
	if providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("kind = %v, want unavailable (err: %v)", providers.KindOf(err), err)
	}
	if got := f.count("GetSecretValue"); got != maxAttempts {
		t.Errorf("attempts = %d, want %d", got, maxAttempts)
	}
	if elapsed > 2*maxBackoff+time.Second {
		t.Errorf("throttled Get took %v, want under %v", elapsed, 2*maxBackoff+time.Second)
	}
	t.Logf("throttled Get gave up after %d attempts in %v", maxAttempts, elapsed)
}

func TestDeadline(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	f.delay = 10 * time.Second
	c := newTestClient(t, staticStore(f.srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, providers.Ref{Key: "shop/plain"})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Get returned after %v, want soon after the 100ms deadline", el)
	}
	if k := providers.KindOf(err); k != providers.KindUnavailable {
		t.Fatalf("kind = %v, want unavailable (err: %v)", k, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not wrap context.DeadlineExceeded", err)
	}
}

func TestBatch45RefsMakeThreeCalls(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	var refs []providers.Ref
	for i := range 45 {
		key := fmt.Sprintf("bulk/%02d", i)
		f.putString(key, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf(`{"v":"value-%02d"}`, i), "AWSCURRENT")
		refs = append(refs, providers.Ref{Key: key})
	}
	// A second ref to a key already in the batch shares its id; a versioned
	// ref cannot be batched and goes through GetSecretValue.
	refs = append(refs, providers.Ref{Key: "bulk/07", Property: "v"},
		providers.Ref{Key: "shop/rotated", Version: "AWSPREVIOUS"})
	c := newTestClient(t, staticStore(f.srv.URL))

	secrets, errs := c.GetBatch(context.Background(), refs)

	if len(f.batches) != 3 {
		t.Fatalf("BatchGetSecretValue calls = %d, want 3", len(f.batches))
	}
	seen := map[string]bool{}
	for i, ids := range f.batches {
		if len(ids) > maxBatch {
			t.Errorf("call %d carried %d ids, want <= %d", i, len(ids), maxBatch)
		}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("id %s asked twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 45 {
		t.Errorf("batched %d distinct ids, want 45", len(seen))
	}
	if got := f.count("GetSecretValue"); got != 1 {
		t.Errorf("GetSecretValue calls = %d, want 1 (the versioned ref)", got)
	}
	for i := range 45 {
		if errs[i] != nil {
			t.Fatalf("ref %d: %v", i, errs[i])
		}
		if want := fmt.Sprintf(`{"v":"value-%02d"}`, i); string(secrets[i].Value) != want {
			t.Errorf("ref %d value = %q, want %q", i, secrets[i].Value, want)
		}
	}
	if errs[45] != nil || string(secrets[45].Value) != "value-07" {
		t.Errorf("property ref = (%q, %v), want value-07", secrets[45].Value, errs[45])
	}
	if errs[46] != nil || string(secrets[46].Value) != secretValues[3] {
		t.Errorf("versioned ref = (%q, %v), want the AWSPREVIOUS value", secrets[46].Value, errs[46])
	}
}

func TestBatchPartialErrors(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	f.denied["shop/forbidden"] = true
	f.batchErrors["shop/kms"] = "DecryptionFailure"
	f.batchErrors["shop/busy"] = "InternalServiceError"
	c := newTestClient(t, staticStore(f.srv.URL))
	refs := []providers.Ref{
		{Key: "shop/plain"},
		{Key: "shop/missing"},
		{Key: "shop/forbidden"},
		{Key: "shop/kms"},
		{Key: "shop/busy"},
		{Key: "shop/db", Property: "password"},
		{Key: "shop/db", Property: "nope"},
		{Key: "../etc/passwd"},
	}
	want := []struct {
		value string
		kind  providers.Kind
	}{
		{value: secretValues[0]},
		{kind: providers.KindNotFound},
		{kind: providers.KindPermissionDenied},
		{kind: providers.KindPermissionDenied},
		{kind: providers.KindUnavailable},
		{value: "pa55-json-field-value"},
		{kind: providers.KindNotFound},
		{kind: providers.KindInvalidRef},
	}
	secrets, errs := c.GetBatch(context.Background(), refs)
	if len(f.batches) != 1 {
		t.Errorf("BatchGetSecretValue calls = %d, want 1", len(f.batches))
	}
	for i, w := range want {
		assertNoValue(t, errs[i])
		if w.kind == providers.KindUnknown {
			if errs[i] != nil || string(secrets[i].Value) != w.value {
				t.Errorf("ref %d (%s) = (%q, %v), want %q", i, refs[i].Key, secrets[i].Value, errs[i], w.value)
			}
			continue
		}
		if k := providers.KindOf(errs[i]); k != w.kind {
			t.Errorf("ref %d (%s) kind = %v, want %v (err: %v)", i, refs[i].Key, k, w.kind, errs[i])
		}
		if errs[i] != nil && !strings.Contains(errs[i].Error(), `store "prod-aws"`) {
			t.Errorf("ref %d error %q does not name the store", i, errs[i])
		}
	}
}

func TestBatchWholeCallFailureReachesEveryRef(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	f.throttle = 50
	c := newTestClient(t, staticStore(f.srv.URL))
	refs := []providers.Ref{{Key: "shop/plain"}, {Key: "shop/db"}, {Key: "shop/blob"}}
	_, errs := c.GetBatch(context.Background(), refs)
	for i, err := range errs {
		if providers.KindOf(err) != providers.KindUnavailable {
			t.Errorf("ref %d kind = %v, want unavailable (err: %v)", i, providers.KindOf(err), err)
		}
	}
	if got := f.count("BatchGetSecretValue"); got != maxAttempts {
		t.Errorf("BatchGetSecretValue attempts = %d, want %d", got, maxAttempts)
	}
}

func TestValidate(t *testing.T) {
	isolateEnv(t)
	tests := []struct {
		name     string
		setup    func(f *fakeSM)
		wantKind providers.Kind // KindUnknown: nil error
	}{
		{name: "ok", setup: func(*fakeSM) {}},
		{name: "ListSecrets denied still proves the credentials", setup: func(f *fakeSM) { f.listDenied = true }},
		{name: "unknown keys", setup: func(f *fakeSM) { f.rejectKeys = true }, wantKind: providers.KindPermissionDenied},
		{name: "unreachable", setup: func(f *fakeSM) { f.srv.Close() }, wantKind: providers.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			c := newTestClient(t, staticStore(f.srv.URL))
			tt.setup(f)
			err := c.Validate(context.Background())
			assertNoValue(t, err)
			if tt.wantKind == providers.KindUnknown {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if k := providers.KindOf(err); k != tt.wantKind {
				t.Fatalf("kind = %v, want %v (err: %v)", k, tt.wantKind, err)
			}
		})
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(p *v1alpha1.AWSProvider)
		wantMsg string
	}{
		{name: "no region", mutate: func(p *v1alpha1.AWSProvider) { p.Region = "" }, wantMsg: "spec.aws.region is empty"},
		{name: "plain http to a remote host", mutate: func(p *v1alpha1.AWSProvider) { p.Endpoint = "http://sm.example.internal" }, wantMsg: "use https"},
		{name: "endpoint not a url", mutate: func(p *v1alpha1.AWSProvider) { p.Endpoint = "sm.example.internal" }, wantMsg: "spec.aws.endpoint"},
		{name: "static and profile", mutate: func(p *v1alpha1.AWSProvider) { p.Auth.Profile = "prod" }, wantMsg: "both static and profile"},
		{name: "access key env missing", mutate: func(p *v1alpha1.AWSProvider) {
			p.Auth.Static.AccessKeyID = v1alpha1.ValueSource{FromEnv: "DSO_TEST_NOT_SET"}
		}, wantMsg: "spec.aws.auth.static.accessKeyID.fromEnv: environment variable DSO_TEST_NOT_SET is not set"},
		{name: "secret key file relative", mutate: func(p *v1alpha1.AWSProvider) {
			p.Auth.Static.SecretAccessKey = v1alpha1.ValueSource{FromFile: "key"}
		}, wantMsg: "spec.aws.auth.static.secretAccessKey.fromFile"},
		{name: "session token file missing", mutate: func(p *v1alpha1.AWSProvider) {
			p.Auth.Static.SessionToken = &v1alpha1.ValueSource{FromFile: filepath.Join(dir, "nope")}
		}, wantMsg: "spec.aws.auth.static.sessionToken.fromFile"},
		{name: "unknown profile", mutate: func(p *v1alpha1.AWSProvider) {
			p.Auth = v1alpha1.AWSAuth{Profile: "does-not-exist"}
		}, wantMsg: `profile "does-not-exist" is not in the shared config`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := staticStore("https://127.0.0.1:1")
			tt.mutate(store.Spec.AWS)
			_, err := Provider{}.NewClient(context.Background(), store)
			if err == nil {
				t.Fatal("NewClient succeeded, want an error")
			}
			assertNoValue(t, err)
			if k := providers.KindOf(err); k != providers.KindInvalidConfig {
				t.Errorf("kind = %v, want invalid configuration", k)
			}
			for _, want := range []string{tt.wantMsg, `store "prod-aws"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCredentialSources(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	idFile := filepath.Join(dir, "access-key-id")
	keyFile := filepath.Join(dir, "secret-access-key")
	if err := os.WriteFile(idFile, []byte("AKIDFROMFILE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "[profile dso-test]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = " + testSecret + "\n"
	if err := os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		auth      func(endpoint string) v1alpha1.AWSAuth
		env       map[string]string
		wantKeyID string
	}{
		{name: "static from env", wantKeyID: testKeyID, auth: func(string) v1alpha1.AWSAuth {
			return staticStore("").Spec.AWS.Auth
		}},
		{name: "static from files", wantKeyID: "AKIDFROMFILE", auth: func(string) v1alpha1.AWSAuth {
			return v1alpha1.AWSAuth{Static: &v1alpha1.AWSStaticAuth{
				AccessKeyID:     v1alpha1.ValueSource{FromFile: idFile},
				SecretAccessKey: v1alpha1.ValueSource{FromFile: keyFile},
			}}
		}},
		{name: "shared config profile", wantKeyID: "AKIDFROMPROFILE", auth: func(string) v1alpha1.AWSAuth {
			return v1alpha1.AWSAuth{Profile: "dso-test"}
		}},
		{name: "default chain reads AWS_* env", wantKeyID: "AKIDDEFAULTCHAIN",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "AKIDDEFAULTCHAIN", "AWS_SECRET_ACCESS_KEY": testSecret},
			auth: func(string) v1alpha1.AWSAuth { return v1alpha1.AWSAuth{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			f := seeded(t)
			store := staticStore(f.srv.URL)
			store.Spec.AWS.Auth = tt.auth(f.srv.URL)
			c := newTestClient(t, store)
			if _, err := c.Get(context.Background(), providers.Ref{Key: "shop/plain"}); err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !f.keyIDs[tt.wantKeyID] || len(f.keyIDs) != 1 {
				t.Errorf("requests signed with %v, want %s", f.keyIDs, tt.wantKeyID)
			}
		})
	}
}

func TestNoCredentialsIsPermissionDenied(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	store := staticStore(f.srv.URL)
	store.Spec.AWS.Auth = v1alpha1.AWSAuth{}
	c := newTestClient(t, store)
	_, err := c.Get(context.Background(), providers.Ref{Key: "shop/plain"})
	if k := providers.KindOf(err); k != providers.KindPermissionDenied {
		t.Fatalf("kind = %v, want permission denied (err: %v)", k, err)
	}
	if !strings.Contains(err.Error(), "spec.aws.auth") {
		t.Errorf("error %q does not say what to set", err)
	}
	if got := f.count("GetSecretValue"); got != 0 {
		t.Errorf("an unsigned request reached the server (%d calls)", got)
	}
}

func BenchmarkGet(b *testing.B) {
	f := seeded(b)
	b.Setenv("DSO_TEST_AWS_KEY_ID", testKeyID)
	b.Setenv("DSO_TEST_AWS_SECRET", testSecret)
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c := newTestClient(b, staticStore(f.srv.URL))
	ctx := context.Background()
	ref := providers.Ref{Key: "shop/db", Property: "password"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBatchRefsOfOneKeyDoNotShareBytes(t *testing.T) {
	isolateEnv(t)
	f := seeded(t)
	c := newTestClient(t, staticStore(f.srv.URL))
	secrets, errs := c.GetBatch(context.Background(), []providers.Ref{{Key: "shop/blob"}, {Key: "shop/blob"}})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("GetBatch: %v, %v", errs[0], errs[1])
	}
	clear(secrets[0].Value) // what the cache does to an evicted value
	if string(secrets[1].Value) != string(binaryValue) {
		t.Errorf("zeroing one ref's value changed the other's to %q", secrets[1].Value)
	}
}
