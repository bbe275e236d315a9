package tasks

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Leases is what an Expirer works on; a Service is one.
type Leases interface {
	// NextLeaseExpiry returns when the earliest lease runs out, false for none.
	NextLeaseExpiry(ctx context.Context) (time.Time, bool, error)
	// ExpireLeases expires every lease that ran out at or before now, and returns
	// how many.
	ExpireLeases(ctx context.Context, now time.Time) (int, error)
}

// Expirer expires leases when they run out. It is one loop over the next lease due,
// whatever the number of leases held: no timer per task. It reads when the earliest
// lease runs out (an index read), sleeps until then, and expires every lease due;
// then it reads again. It hears of the leases that claims grant in this process or
// in any other (another `taskhub mcp` on the file, another node on the database)
// from the event log, and reads again after such commits, once for many; it also
// reads every Poll, a net under anything it did not hear of. A lease that ran out
// while no Expirer ran, the server being down, is expired as soon as Run starts.
//
// Several Expirers on one database are safe: each lease is expired once (see
// Service.ExpireLeases), and none needs a lock of its own.
type Expirer struct {
	leases Leases
	listen func(fn func(*Record)) (stop func())
	poll   time.Duration
	logger *slog.Logger
	wake   chan struct{} // capacity 1: a commit may have granted an earlier lease
}

// ExpirerConfig is what an Expirer is built from; zero fields take the defaults.
type ExpirerConfig struct {
	// Listen, if set, registers fn for every committed event, as Tailer.Listen
	// does, until stop. Without it, a lease granted after the Expirer's last read
	// is found by the next Poll.
	Listen func(fn func(*Record)) (stop func())
	// Poll is the longest the Expirer goes without reading the earliest lease.
	// Default DefaultExpiryPoll.
	Poll   time.Duration
	Logger *slog.Logger
}

// DefaultExpiryPoll is the default ExpirerConfig.Poll.
const DefaultExpiryPoll = 30 * time.Second

const (
	// expirySettle is how long the Expirer waits, after hearing of a claim, for more
	// before it reads the earliest lease again: one read for a burst of claims.
	expirySettle = 100 * time.Millisecond
	// expiryHeld is how long it waits to look again at a lease that is due but that
	// it could not expire: another writer held the task (another node expiring it,
	// its holder renewing it).
	expiryHeld = 250 * time.Millisecond
	// expiryRetry is how long it waits after a failed read or expiry.
	expiryRetry = time.Second
)

// NewExpirer returns an Expirer of leases; Run runs it.
func NewExpirer(leases Leases, cfg ExpirerConfig) *Expirer {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultExpiryPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Expirer{leases: leases, listen: cfg.Listen, poll: cfg.Poll, logger: cfg.Logger, wake: make(chan struct{}, 1)}
}

// Run expires leases as they run out, until ctx ends.
func (e *Expirer) Run(ctx context.Context) {
	if e.listen != nil {
		stop := e.listen(e.heard)
		defer stop()
	}
	// Registered first, read next: a claim committed before the first read is seen
	// by it, one committed after is heard of.
	timer := time.NewTimer(0)
	defer timer.Stop()
	at := time.Now() // when timer fires
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
			if soon := time.Now().Add(expirySettle); soon.Before(at) {
				timer.Reset(expirySettle)
				at = soon
			}
			continue
		case <-timer.C:
		}
		wait := e.step(ctx)
		timer.Reset(wait)
		at = time.Now().Add(wait)
	}
}

// heard is told of every committed event. Only a claim can bring the earliest lease
// forward (a renewal, a release, an expiry only put it off), and a claim is an update
// that leaves the task in_progress.
func (e *Expirer) heard(r *Record) {
	if r.Type != EventTaskUpdated || !slices.Contains(r.Match.Statuses, string(StatusInProgress)) {
		return
	}
	select {
	case e.wake <- struct{}{}:
	default: // a wake-up is already waiting: it covers this commit too
	}
}

// step expires the leases that are due and returns how long to wait before the next
// step: until the earliest lease runs out, at most Poll.
func (e *Expirer) step(ctx context.Context) time.Duration {
	for {
		next, ok, err := e.leases.NextLeaseExpiry(ctx)
		if err != nil {
			e.failed(ctx, "read the next lease expiry", err)
			return expiryRetry
		}
		if !ok {
			return e.poll
		}
		now := time.Now()
		if wait := next.Sub(now); wait > 0 {
			return min(wait, e.poll)
		}
		n, err := e.leases.ExpireLeases(ctx, now)
		if err != nil {
			e.failed(ctx, "expire leases", err)
			return expiryRetry
		}
		if n == 0 {
			return expiryHeld
		}
		e.logger.Info("expired leases", "count", n)
	}
}

func (e *Expirer) failed(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		e.logger.Error(what, "err", err)
	}
}
