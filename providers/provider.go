package providers

import (
	"context"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// MaxValueSize is the largest secret value dso accepts (1 MiB).
const MaxValueSize = 1 << 20

// Ref names one secret in a store.
type Ref struct {
	// Key is the secret's name in the store, e.g. "shop/db".
	Key string
	// Version pins a provider version; empty means latest.
	Version string
	// Property extracts one field of a JSON secret; empty means the whole value.
	Property string
}

// Secret is one fetched value. Value is never logged, never put in an error.
type Secret struct {
	// Value holds the bytes (after Property extraction, if any).
	Value []byte
	// Fields is set when the value is a JSON object of strings/numbers/bools:
	// field name -> bytes. Used by dataFrom.
	Fields map[string][]byte
	// Version is the provider's own version id of the value, if it has one.
	Version string
	// Expires is when the provider says the value stops being valid (zero: no expiry).
	Expires time.Time
}

// Client is a connection to one store.
type Client interface {
	// Get fetches one secret. Implementations validate ref (ValidateRef)
	// before any call, honour ctx, and return errors of this package's kinds.
	Get(ctx context.Context, ref Ref) (Secret, error)
	// Validate checks connectivity and authentication (used by doctor).
	Validate(ctx context.Context) error
	// Close releases connections and background work (token renewal, ...).
	Close() error
}

// BatchClient is implemented by clients that can fetch several keys of one
// store in one call (AWS BatchGetSecretValue). The result has one entry per
// ref, in the same order; a per-ref failure is returned in Errs.
type BatchClient interface {
	Client
	// MaxBatch is the largest number of refs GetBatch accepts.
	MaxBatch() int
	GetBatch(ctx context.Context, refs []Ref) (secrets []Secret, errs []error)
}

// WatchableClient is implemented by clients whose store can tell dso that it
// changed (the local file store). The channel receives a value after every
// change and is closed when ctx ends.
type WatchableClient interface {
	Client
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// Provider builds clients for one kind of store.
type Provider interface {
	// Name is the SecretStore spec field of this provider: "local", "vault", ...
	Name() string
	// NewClient connects to the store described by store. It fails with a
	// clear error (naming the store and the field to fix) on bad settings or
	// missing credentials.
	NewClient(ctx context.Context, store *v1alpha1.SecretStore) (Client, error)
}
