// Package notify tells outbound webhooks (spec.notifications of the
// AgentConfig) about finished rotations and recovery actions.
//
// It exists because an operator wants to hear about a failed rotation without
// watching logs, and because the thing that finishes a rotation must never
// wait for a slow or dead receiver: Notify only appends to a bounded queue per
// sink (dropping the oldest entry, with a logged count, when it is full), and
// one worker per sink delivers in the background with retries, exponential
// backoff and Retry-After. Each body is signed with HMAC-SHA256 under the
// sink's secret (X-DSO-Signature) so receivers can reject forgeries, and
// carries names, results and timings only: never a secret value. The sink's
// URL is never logged either, since webhook URLs often embed a token.
package notify
