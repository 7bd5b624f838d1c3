package v1alpha1

// Notification event types. They are the "type" of a notification's JSON
// body and its X-DSO-Event header, and what a sink's events list filters on.
const (
	EventRotationSucceeded = "rotation_succeeded"
	EventRotationFailed    = "rotation_failed"
	EventRecoverySucceeded = "recovery_succeeded"
	EventRecoveryFailed    = "recovery_failed"
)

// NotificationEvents lists every event type a sink can subscribe to.
var NotificationEvents = []string{EventRotationSucceeded, EventRotationFailed, EventRecoverySucceeded, EventRecoveryFailed}

// NotificationSink is an outbound webhook that is told about finished
// rotations and recovery actions (spec.notifications of the AgentConfig).
// Deliveries are signed, retried with backoff, and never hold up a rotation;
// a body names bindings, targets and results, never a secret value.
type NotificationSink struct {
	// Name identifies the sink in logs and metrics; unique, a DNS label.
	// The URL is never logged (webhook URLs often embed a token).
	Name string `json:"name"`
	// URL receives a POST of the event's JSON body; http:// or https://.
	URL string `json:"url"`
	// Events the sink receives: rotation_succeeded, rotation_failed,
	// recovery_succeeded, recovery_failed. Empty means all of them.
	Events []string `json:"events,omitempty"`
	// Secret is the HMAC-SHA256 key that signs each body (header
	// X-DSO-Signature: sha256=<hex>), so the receiver can tell dso's
	// deliveries from forged ones. Required.
	Secret *ValueSource `json:"secret,omitempty"`
	// Timeout of one delivery attempt; default 10s.
	Timeout *Duration `json:"timeout,omitempty"`
}
