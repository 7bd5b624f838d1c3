package containerswap

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/delivery"
)

// Plan is the desired state of one target.
type Plan struct {
	// Bindings that select the target, sorted.
	Bindings []string
	// Env is the env var name -> value dso delivers.
	Env map[string]string
	// Files to deliver.
	Files []delivery.File
	// Strategy is resolved: never auto.
	Strategy v1alpha1.RotationStrategy
	// Signal for the signal strategy.
	Signal string
	// HealthTimeout bounds the health gate.
	HealthTimeout time.Duration
	// Hash is the desired dso.dev/secret-hash label. For in-place
	// strategies it covers env values and the file layout only: file content
	// changes are applied under the same mounts without a new container.
	Hash string
	// ContentHash covers file contents too (equal to Hash for swap strategies).
	ContentHash string
}

// InPlace reports whether file changes are applied without a new container.
func (p Plan) InPlace() bool {
	switch p.Strategy {
	case v1alpha1.RotationRestart, v1alpha1.RotationSignal, v1alpha1.RotationNone:
		return true
	}
	return false
}

// Planner computes a target's plan from its bindings and the secret cache.
type Planner interface {
	// Plan returns the plan for container c; selected is false when no
	// binding selects it. Errors are provider errors (values not yet
	// available) and are retried with backoff.
	Plan(ctx context.Context, c container.InspectResponse) (plan Plan, selected bool, err error)
}

// FileWriter is the delivery writer (internal/delivery.Writer).
type FileWriter interface {
	Write(target, set string, files []delivery.File) ([]delivery.Mount, bool, error)
	// Mounts returns the mounts Write would return, without writing.
	Mounts(target, set string, files []delivery.File) []delivery.Mount
	RemoveSets(target string, keep ...string) error
}
