// Package aws is the dso provider for AWS Secrets Manager ("spec.aws" of a
// SecretStore). It exists to turn the SDK's many error shapes into the four
// kinds dso's cache and reconcilers act on, to keep the SDK's own retries
// short (a throttled store must fail fast into KindUnavailable so that the
// cache's circuit breaker, not a hidden retry loop, decides what happens
// next), and to use BatchGetSecretValue when several keys of one store are
// due together.
//
// Versions: Secrets Manager addresses a version either by VersionId or by a
// staging label. A ref.Version is read as follows:
//
//   - ""                  -> no selector; AWS returns the AWSCURRENT version
//   - "id:<x>"            -> VersionId <x> (for ids that are not UUIDs)
//   - "stage:<x>"         -> VersionStage <x>
//   - a UUID (8-4-4-4-12 hex, as AWS and its SDKs generate) -> VersionId
//   - anything else (AWSCURRENT, AWSPREVIOUS, "blue", ...)   -> VersionStage
//
// Secret.Version is always the VersionId AWS returned.
package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/internal/credsrc"
)

// Name is the provider name, the SecretStore spec field "aws".
const Name = "aws"

const (
	// maxBatch is BatchGetSecretValue's limit of secret ids per call.
	maxBatch = 20
	// maxAttempts bounds the SDK's retries (first try included). With the
	// SDK's 1 s throttle base delay this keeps a throttled Get under ~3 s.
	maxAttempts = 3
	// maxBackoff caps the delay between two attempts.
	maxBackoff = 2 * time.Second
	// maxBatchPages guards against a server that keeps returning NextToken.
	maxBatchPages = 10
)

// Provider builds Secrets Manager clients. Register it with
// registry.MustRegister(aws.Provider{}).
type Provider struct{}

// Name returns "aws".
func (Provider) Name() string { return Name }

// NewClient builds a client for store.Spec.AWS.
func (Provider) NewClient(ctx context.Context, store *v1alpha1.SecretStore) (providers.Client, error) {
	return newClient(ctx, store, options{})
}

// options are test seams; they are not part of the YAML schema.
type options struct {
	// backoff replaces the SDK's retry delay (tests use ~0 to stay fast).
	backoff retry.BackoffDelayer
}

// Client reads one Secrets Manager store. It implements providers.BatchClient.
type Client struct {
	store string
	sm    *secretsmanager.Client
}

var (
	_ providers.Client      = (*Client)(nil)
	_ providers.BatchClient = (*Client)(nil)
)

func newClient(ctx context.Context, store *v1alpha1.SecretStore, o options) (*Client, error) {
	name := store.Name
	spec := store.Spec.AWS
	if spec == nil {
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.aws is not set")
	}
	if spec.Region == "" {
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.aws.region is empty: set the region of the secrets, e.g. eu-west-1")
	}
	if err := checkEndpoint(name, spec.Endpoint); err != nil {
		return nil, err
	}

	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(spec.Region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = maxAttempts
				so.MaxBackoff = maxBackoff
				// The SDK's retry quota would turn a long throttling episode
				// into "retry quota exceeded" errors that hide the throttle;
				// our circuit breaker already limits load on a sick store.
				so.RateLimiter = ratelimit.None
				if o.backoff != nil {
					so.Backoff = o.backoff
				}
			})
		}),
	}
	auth := spec.Auth
	switch {
	case auth.Static != nil && auth.Profile != "":
		return nil, providers.Errorf(providers.KindInvalidConfig, name, "", "spec.aws.auth sets both static and profile: set at most one")
	case auth.Static != nil:
		cp, err := staticCredentials(name, auth.Static)
		if err != nil {
			return nil, err
		}
		loadOpts = append(loadOpts, config.WithCredentialsProvider(cp))
	case auth.Profile != "":
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(auth.Profile))
	}

	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		var nep config.SharedConfigProfileNotExistError
		if errors.As(err, &nep) {
			return nil, providers.Errorf(providers.KindInvalidConfig, name, "",
				"spec.aws.auth.profile: profile %q is not in the shared config files (~/.aws/config, ~/.aws/credentials or AWS_CONFIG_FILE)", nep.Profile)
		}
		return nil, providers.Wrap(providers.KindInvalidConfig, name, "", err, "cannot load the AWS configuration: check spec.aws.auth and the AWS_* environment")
	}
	if cfg.Credentials != nil {
		cfg.Credentials = taggedCredentials{cfg.Credentials}
	}
	sm := secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) {
		if spec.Endpoint != "" {
			so.BaseEndpoint = aws.String(spec.Endpoint)
		}
	})
	return &Client{store: name, sm: sm}, nil
}

func staticCredentials(store string, s *v1alpha1.AWSStaticAuth) (aws.CredentialsProvider, error) {
	const f = "spec.aws.auth.static."
	ak, err := credsrc.ResolveString(store, f+"accessKeyID", s.AccessKeyID)
	if err != nil {
		return nil, err
	}
	sk, err := credsrc.ResolveString(store, f+"secretAccessKey", s.SecretAccessKey)
	if err != nil {
		return nil, err
	}
	var st string
	if s.SessionToken != nil {
		if st, err = credsrc.ResolveString(store, f+"sessionToken", *s.SessionToken); err != nil {
			return nil, err
		}
	}
	return credentials.NewStaticCredentialsProvider(ak, sk, st), nil
}

// taggedCredentials marks errors of credential resolution, so that mapErr
// can tell "no credentials could be found" (fix the config) from a network
// failure; the SDK reports both as plain wrapped errors.
type taggedCredentials struct{ aws.CredentialsProvider }

func (t taggedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := t.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "cannot obtain AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// checkEndpoint allows https anywhere and plain http only to loopback: over
// http the secret values themselves would cross the network unencrypted.
func checkEndpoint(store, ep string) error {
	if ep == "" {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return providers.Errorf(providers.KindInvalidConfig, store, "", "spec.aws.endpoint %q is not a URL: write it as https://host[:port]", ep)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return providers.Errorf(providers.KindInvalidConfig, store, "", "spec.aws.endpoint %q uses plain http to a non-loopback host: use https", ep)
	default:
		return providers.Errorf(providers.KindInvalidConfig, store, "", "spec.aws.endpoint %q must start with https://", ep)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// versionSelector applies the rule in the package comment.
func versionSelector(v string) (id, stage string) {
	switch {
	case v == "":
		return "", ""
	case strings.HasPrefix(v, "id:"):
		return strings.TrimPrefix(v, "id:"), ""
	case strings.HasPrefix(v, "stage:"):
		return "", strings.TrimPrefix(v, "stage:")
	case uuidRE.MatchString(v):
		return v, ""
	default:
		return "", v
	}
}

// Get fetches one secret with GetSecretValue.
func (c *Client) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	if err := providers.ValidateRef(c.store, ref); err != nil {
		return providers.Secret{}, err
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref.Key)}
	id, stage := versionSelector(ref.Version)
	if id != "" {
		in.VersionId = aws.String(id)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := c.sm.GetSecretValue(ctx, in)
	if err != nil {
		return providers.Secret{}, c.mapErr(ref.Key, err)
	}
	return c.finish(ref, out.SecretString, out.SecretBinary, aws.ToString(out.VersionId))
}

func (c *Client) finish(ref providers.Ref, str *string, bin []byte, version string) (providers.Secret, error) {
	var raw []byte
	switch {
	case str != nil:
		raw = []byte(*str)
	case bin != nil:
		// Copy: in a batch several refs share one entry, and the cache may
		// zero a value it evicts; one ref's eviction must not wipe another's.
		raw = append([]byte(nil), bin...)
	default:
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, c.store, ref.Key, "the secret version has neither SecretString nor SecretBinary")
	}
	return providers.Finish(c.store, ref, raw, version)
}

// MaxBatch is BatchGetSecretValue's per-call limit (20). GetBatch accepts
// more refs and splits them into calls of at most this many ids.
func (c *Client) MaxBatch() int { return maxBatch }

// GetBatch fetches refs with as few BatchGetSecretValue calls as possible.
// BatchGetSecretValue cannot select a version, so refs with a Version are
// fetched one by one with Get. Several refs for one key (different
// properties) share one id in the call. A failure of a whole call is
// reported for every ref of that call; the response's Errors list is
// reported for its own ref only.
func (c *Client) GetBatch(ctx context.Context, refs []providers.Ref) ([]providers.Secret, []error) {
	secrets := make([]providers.Secret, len(refs))
	errs := make([]error, len(refs))

	byKey := map[string][]int{} // key -> indexes into refs
	var keys []string
	for i, ref := range refs {
		if err := providers.ValidateRef(c.store, ref); err != nil {
			errs[i] = err
			continue
		}
		if ref.Version != "" {
			secrets[i], errs[i] = c.Get(ctx, ref)
			continue
		}
		if _, seen := byKey[ref.Key]; !seen {
			keys = append(keys, ref.Key)
		}
		byKey[ref.Key] = append(byKey[ref.Key], i)
	}

	for start := 0; start < len(keys); start += maxBatch {
		chunk := keys[start:min(start+maxBatch, len(keys))]
		found, failed, err := c.batchCall(ctx, chunk)
		for _, key := range chunk {
			for _, i := range byKey[key] {
				switch {
				case err != nil:
					errs[i] = c.mapErr(key, err)
				case failed[key] != nil:
					errs[i] = failed[key]
				case found[key] != nil:
					e := found[key]
					secrets[i], errs[i] = c.finish(refs[i], e.SecretString, e.SecretBinary, aws.ToString(e.VersionId))
				default:
					errs[i] = providers.Errorf(providers.KindNotFound, c.store, key, "BatchGetSecretValue returned neither a value nor an error for this secret")
				}
			}
		}
	}
	return secrets, errs
}

// batchCall runs one BatchGetSecretValue (following NextToken) for ids and
// indexes the answers by the id that was asked for: AWS reports an entry by
// Name and ARN, and the id may have been either.
func (c *Client) batchCall(ctx context.Context, ids []string) (map[string]*types.SecretValueEntry, map[string]error, error) {
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	found := map[string]*types.SecretValueEntry{}
	failed := map[string]error{}
	in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}
	for page := 0; page < maxBatchPages; page++ {
		out, err := c.sm.BatchGetSecretValue(ctx, in)
		if err != nil {
			return nil, nil, err
		}
		for i := range out.SecretValues {
			e := &out.SecretValues[i]
			for _, id := range []string{aws.ToString(e.Name), aws.ToString(e.ARN)} {
				if asked[id] {
					found[id] = e
				}
			}
		}
		for _, ae := range out.Errors {
			id := aws.ToString(ae.SecretId)
			if !asked[id] {
				continue
			}
			code := aws.ToString(ae.ErrorCode)
			kind := kindOfCode(code, 0)
			failed[id] = &providers.Error{Kind: kind, Store: c.store, Key: id,
				Msg: advice(kind), Err: fmt.Errorf("BatchGetSecretValue: %s: %s", code, aws.ToString(ae.Message))}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in = &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids, NextToken: out.NextToken}
	}
	return found, failed, nil
}

// Validate checks that the endpoint answers and the credentials are genuine
// with ListSecrets (MaxResults 1), the cheapest signed call there is. An
// AccessDeniedException counts as success: AWS only gets to the IAM policy
// after it accepted the signature, and many least-privilege policies allow
// GetSecretValue on a few secrets but not ListSecrets. Permission on a
// particular secret is reported by Get. Invalid, expired or unknown keys
// (UnrecognizedClient, InvalidSignature, ExpiredToken) fail.
func (c *Client) Validate(ctx context.Context) error {
	_, err := c.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)})
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException" {
		return nil
	}
	return c.mapErr("", err)
}

// Close releases nothing: the SDK client holds only idle connections.
func (c *Client) Close() error { return nil }

// kindOfCode maps a Secrets Manager / AWS common error code (and, when the
// code is unknown, the HTTP status) onto a providers.Kind.
func kindOfCode(code string, status int) providers.Kind {
	switch code {
	case "ResourceNotFoundException":
		return providers.KindNotFound
	case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
		"InvalidSignatureException", "ExpiredTokenException", "ExpiredToken",
		"InvalidClientTokenId", "IncompleteSignature", "MissingAuthenticationToken",
		"SignatureDoesNotMatch", "DecryptionFailure", "KMSAccessDeniedException":
		// DecryptionFailure: Secrets Manager could not decrypt with the
		// secret's KMS key, almost always missing kms:Decrypt permission.
		return providers.KindPermissionDenied
	case "ThrottlingException", "Throttling", "TooManyRequestsException",
		"RequestLimitExceeded", "InternalServiceError",
		"InternalFailure", "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout":
		return providers.KindUnavailable
	case "InvalidParameterException", "InvalidRequestException", "ValidationException",
		"InvalidNextTokenException":
		return providers.KindInvalidRef
	}
	switch {
	case status == 401 || status == 403:
		return providers.KindPermissionDenied
	case status == 404:
		return providers.KindNotFound
	case status == 429 || status >= 500:
		return providers.KindUnavailable
	case status >= 400:
		return providers.KindInvalidRef
	}
	return providers.KindUnavailable
}

func advice(k providers.Kind) string {
	switch k {
	case providers.KindNotFound:
		return "Secrets Manager has no such secret (or no such version or stage)"
	case providers.KindPermissionDenied:
		return "AWS rejected the credentials, or IAM/KMS does not allow secretsmanager:GetSecretValue (and kms:Decrypt) on this secret"
	case providers.KindUnavailable:
		return "Secrets Manager is throttling, failing or unreachable; dso will retry"
	case providers.KindInvalidRef:
		return "Secrets Manager refused the request (a malformed id or version, or a secret scheduled for deletion)"
	}
	return ""
}

// mapErr classifies an SDK error. The SDK's error text names the operation,
// HTTP status, request id and AWS's message; it never contains a secret
// value (those only ever appear in successful responses), so it is kept as
// the wrapped cause for whoever debugs the store.
func (c *Client) mapErr(key string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return providers.Wrap(providers.KindUnavailable, c.store, key, err, "the request to Secrets Manager did not finish before the deadline")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		status := 0
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		kind := kindOfCode(ae.ErrorCode(), status)
		return providers.Wrap(kind, c.store, key, err, advice(kind))
	}
	var ce *credentialsError
	var se *v4.SigningError
	if errors.As(err, &ce) || errors.As(err, &se) {
		return providers.Wrap(providers.KindPermissionDenied, c.store, key, err,
			"no AWS credentials could be obtained: set spec.aws.auth (static or profile) or give the agent credentials through its environment or instance role")
	}
	return providers.Wrap(providers.KindUnavailable, c.store, key, err, "cannot reach Secrets Manager: check spec.aws.endpoint, spec.aws.region and the network")
}
