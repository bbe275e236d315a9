package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"taskhub/tasks"
)

// checkClaimLease refuses a --claim-lease the store cannot keep: the store keeps
// times to the microsecond.
func checkClaimLease(d time.Duration) error {
	if d < time.Microsecond {
		return fmt.Errorf("%w: --claim-lease must be positive (a microsecond at least), got %s", errUsage, d)
	}
	return nil
}

// expireLeases starts the expiry of claim leases on background, until bgCtx ends: one
// Expirer, which hears of the claims of this process and of every other through
// tailer.
func expireLeases(bgCtx context.Context, background *sync.WaitGroup, service *tasks.Service, tailer *tasks.Tailer, logger *slog.Logger) {
	expirer := tasks.NewExpirer(service, tasks.ExpirerConfig{Listen: tailer.Listen, Logger: logger})
	background.Go(func() { expirer.Run(bgCtx) })
}
