package tasks

import (
	"context"
	"time"
)

// Step runs one step of the Expirer's loop: what the benchmark of expiry measures.
func (e *Expirer) Step(ctx context.Context) time.Duration { return e.step(ctx) }
