// Package api is the contract between the agent and the CLI: HTTP over the
// agent's unix socket (agent.api.socket), JSON bodies of the types below.
// The CLI reaches the agent only through it. No endpoint returns a secret
// value: the types carry names, HMAC hashes, timings and diagnostics.
//
// Endpoints (all under /v1):
//
//	GET    /v1/status                       Status
//	GET    /v1/stores                       []StoreView
//	GET    /v1/stores/{name}                StoreView
//	GET    /v1/bindings                     []BindingView
//	GET    /v1/bindings/{name}              BindingView (with events and rotations)
//	POST   /v1/apply                        ApplyRequest -> ApplyResult (DryRun: the diff)
//	DELETE /v1/{stores|bindings}/{name}     DeleteResult
//	POST   /v1/rotate/{binding}             RotateRequest -> newline-delimited RotateProgress until done
//	GET    /v1/history?binding=&limit=      []Rotation
//	GET    /v1/doctor                       []Check (agent-side checks: stores, tmpfs, state dir)
//	GET    /v1/backup                       the state store, a consistent bbolt copy
package api

import (
	"encoding/json"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// Rotation is one rotation record (trace id, targets, strategy, steps with
// timings, result, health diagnostics).
type Rotation = containerswap.Rotation

// RecoveryAction is one automatic recovery action.
type RecoveryAction = containerswap.RecoveryAction

// Status is `docker dso status --json`. Every section is always present.
type Status struct {
	Runtime       Runtime          `json:"runtime"`
	Providers     []ProviderStatus `json:"providers"`
	Cache         CacheStatus      `json:"cache"`
	Queues        []QueueStatus    `json:"queues"`
	Rotations     RotationTotals   `json:"rotations"`
	Containers    ContainerCounts  `json:"containers"`
	Recovery      RecoveryStatus   `json:"recovery"`
	Observability Observability    `json:"observability"`
}

// Runtime describes the agent process.
type Runtime struct {
	Version       string    `json:"version"`
	Commit        string    `json:"commit"`
	GoVersion     string    `json:"goVersion"`
	StartedAt     time.Time `json:"startedAt"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
	PID           int       `json:"pid"`
	ConfigFile    string    `json:"configFile"`
	DockerAPI     string    `json:"dockerAPI"`
	DockerEngine  string    `json:"dockerEngine"`
	Ready         bool      `json:"ready"`
}

// Latency is in milliseconds.
type Latency struct {
	Min float64 `json:"min"`
	Avg float64 `json:"avg"`
	Max float64 `json:"max"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// ProviderStatus is one store's health as the cache sees it.
type ProviderStatus struct {
	Store    string `json:"store"`
	Provider string `json:"provider"`
	// Health: healthy, unhealthy (errors but answering), unavailable
	// (circuit open or unreachable), unknown (no call yet).
	Health    string  `json:"health"`
	Circuit   string  `json:"circuit"` // closed, half-open, open
	LatencyMs Latency `json:"latencyMs"`
	Calls     int64   `json:"calls"`
	Errors    int64   `json:"errors"`
	LastError string  `json:"lastError,omitempty"`
}

// CacheStatus is the secret cache.
type CacheStatus struct {
	Entries  int     `json:"entries"`
	Bytes    int64   `json:"bytes"`
	MaxBytes int64   `json:"maxBytes"`
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	HitRate  float64 `json:"hitRate"` // percent, 0..100
	// Utilization is Bytes/MaxBytes in percent (the guide's cache exhaustion alert).
	Utilization float64 `json:"utilization"`
}

// QueueStatus is one controller's workqueue.
type QueueStatus struct {
	Name  string `json:"name"`
	Depth int    `json:"depth"`
}

// RotationTotals count rotations since the agent started.
type RotationTotals struct {
	Total       int     `json:"total"`
	Succeeded   int     `json:"succeeded"`
	Failed      int     `json:"failed"`
	InProgress  int     `json:"inProgress"`
	SuccessRate float64 `json:"successRate"` // percent; 100 when none ran
}

// ContainerCounts are the containers dso manages.
type ContainerCounts struct {
	Managed   int `json:"managed"`
	Healthy   int `json:"healthy"`
	Unhealthy int `json:"unhealthy"`
	Starting  int `json:"starting"`
	NoHealth  int `json:"noHealthcheck"`
}

// RecoveryStatus is `.recovery`: the automatic recovery of interrupted rotations.
type RecoveryStatus struct {
	LastRun *time.Time `json:"lastRun"`
	Passes  int        `json:"passes"`
	// IncompleteFound lists the targets the last pass found mid-rotation.
	IncompleteFound []string         `json:"incompleteFound"`
	Actions         []RecoveryAction `json:"actions"`
	Errors          []string         `json:"errors"`
}

// Observability is `.observability`.
type Observability struct {
	RecentRotations   []Rotation         `json:"recentRotations"`
	ProviderLatency   []ProviderLatency  `json:"providerLatency"`
	LockContention    LockContention     `json:"lockContention"`
	HealthDiagnostics []HealthDiagnostic `json:"healthDiagnostics"`
	CircuitBreakers   []CircuitBreaker   `json:"circuitBreakers"`
}

// ProviderLatency is one store's latency in milliseconds.
type ProviderLatency struct {
	Store string  `json:"store"`
	Min   float64 `json:"minMs"`
	Avg   float64 `json:"avgMs"`
	Max   float64 `json:"maxMs"`
}

// LockContention summarises waits for per-target swap locks.
type LockContention struct {
	MaxWaitMs float64 `json:"maxWaitMs"`
	// Over1s counts waits longer than one second (the guide's scaling signal).
	Over1s int `json:"over1s"`
}

// HealthDiagnostic is the health output of a failed gate.
type HealthDiagnostic struct {
	TraceID string                      `json:"traceId"`
	Target  string                      `json:"target"`
	Time    time.Time                   `json:"time"`
	Reason  string                      `json:"reason"`
	Probes  []containerswap.HealthProbe `json:"probes"`
}

// CircuitBreaker is one store's breaker.
type CircuitBreaker struct {
	Store               string     `json:"store"`
	State               string     `json:"state"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	NextProbe           *time.Time `json:"nextProbe,omitempty"`
}

// StoreView is a store as `get stores` shows it.
type StoreView struct {
	Name     string                     `json:"name"`
	Provider string                     `json:"provider"`
	Source   string                     `json:"source"` // "file:line" of its declaration, or "applied"
	Created  time.Time                  `json:"created"`
	Health   string                     `json:"health"`
	Circuit  string                     `json:"circuit"`
	Spec     v1alpha1.SecretStoreSpec   `json:"spec"`
	Status   v1alpha1.SecretStoreStatus `json:"status"`
}

// BindingView is a binding as `get`/`describe` show it.
type BindingView struct {
	Name      string                       `json:"name"`
	Source    string                       `json:"source"`
	Created   time.Time                    `json:"created"`
	Spec      v1alpha1.SecretBindingSpec   `json:"spec"`
	Status    v1alpha1.SecretBindingStatus `json:"status"`
	Events    []Event                      `json:"events,omitempty"`
	Rotations []Rotation                   `json:"rotations,omitempty"`
}

// Event is something that happened to a binding.
type Event struct {
	Time    time.Time `json:"time"`
	Binding string    `json:"binding"`
	Target  string    `json:"target,omitempty"`
	Type    string    `json:"type"` // Normal, Warning
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// ApplyRequest carries objects (JSON of SecretStore / SecretBinding).
type ApplyRequest struct {
	Objects []json.RawMessage `json:"objects"`
	// DryRun computes what would change (diff) without storing anything.
	DryRun bool `json:"dryRun,omitempty"`
}

// ApplyItem is the outcome for one object.
type ApplyItem struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"` // created, configured, unchanged
	// Diff is a unified-style diff of the spec (dry run / configured).
	Diff string `json:"diff,omitempty"`
	// Rotates lists the containers whose secret hash would change.
	Rotates []string `json:"rotates,omitempty"`
}

// ApplyResult is the outcome of an apply.
type ApplyResult struct {
	Items []ApplyItem `json:"items"`
}

// DeleteResult is the outcome of a delete.
type DeleteResult struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

// RotateRequest forces a fetch and a rollout of one binding.
type RotateRequest struct {
	Wait bool `json:"wait"`
}

// RotateProgress is one line of the rotate stream.
type RotateProgress struct {
	Time    time.Time `json:"time"`
	Target  string    `json:"target,omitempty"`
	Phase   string    `json:"phase"` // queued, rotating, succeeded, failed, unchanged, done
	TraceID string    `json:"traceId,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Check is one doctor check.
type Check struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Status      string `json:"status"` // ok, warn, fail, skip
	Detail      string `json:"detail"`
	Remediation string `json:"remediation,omitempty"`
	// Extra is shown by --level full (connection details, resource usage...).
	Extra map[string]string `json:"extra,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
