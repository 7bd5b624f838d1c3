package containerswap

import (
	"context"
	"sync"
	"time"
)

// Locks gives one swap per target at a time and measures the wait.
type Locks struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

// NewLocks returns an empty lock table.
func NewLocks() *Locks { return &Locks{locks: map[string]chan struct{}{}} }

// Lock blocks until target is free or ctx ends; it returns the unlock func
// and how long it waited.
func (l *Locks) Lock(ctx context.Context, target string) (func(), time.Duration, error) {
	start := time.Now()
	l.mu.Lock()
	ch, ok := l.locks[target]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[target] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, time.Since(start), nil
	case <-ctx.Done():
		return nil, time.Since(start), ctx.Err()
	}
}
