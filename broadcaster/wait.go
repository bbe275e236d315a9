package broadcaster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// MaxWait is the longest one call may wait for an event.
const MaxWait = 60 * time.Second

// ErrTooManyWaits is what Wait's error wraps when a call would be over a bound of
// Waits: its owner's, or the whole server's.
var ErrTooManyWaits = errors.New("too many waiting calls")

// WaitsConfig bounds the calls waiting at once; 0 means no bound.
type WaitsConfig struct {
	MaxPerOwner int // of one owner (a token's or an actor's name)
	Max         int // of everyone together
}

// Waits is where calls wait for the first event of the log that matches a filter: the
// long polls of the REST API and MCP's wait_for_events. It is fed as the Hub is, by
// whoever follows the log (Publish), and holds no goroutine, timer or connection of
// its own: a waiting call is its caller's goroutine blocked on a channel, between two
// reads of the log, and nothing of it is left once it returns.
type Waits struct {
	cfg WaitsConfig

	mu      sync.RWMutex
	waiters map[*waiter]struct{}
	owned   map[string]int // waiting calls per owner

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
}

type waiter struct {
	filter Filter
	wake   chan struct{} // one wake-up, not yet taken, stands for any number
}

// NewWaits returns an empty Waits.
func NewWaits(cfg WaitsConfig) *Waits {
	return &Waits{cfg: cfg, waiters: map[*waiter]struct{}{}, owned: map[string]int{}, closed: make(chan struct{})}
}

// Publish wakes every waiting call whose filter matches e. It never blocks.
func (w *Waits) Publish(e *Event) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for x := range w.waiters {
		if x.filter.Match(e) {
			select {
			case x.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Waiting returns how many calls are waiting now.
func (w *Waits) Waiting() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.waiters)
}

// Close ends every wait, now and from now on, as its timeout would: a server that
// shuts down answers its long polls instead of holding them until they time out.
func (w *Waits) Close() { w.closeOnce.Do(func() { close(w.closed) }) }

// Wait waits until read finds what its caller waits for. read reads the log and
// reports whether it found that (such as an event after a seq that matches f). Wait
// registers the call for the events that match f before it calls read the first time,
// so that an event committed after that read wakes it: it calls read again after each
// matching event Published, until read finds something. At the timeout, or once Close
// is called, it calls read a last time. Either way read's last results are the answer.
//
// Wait returns read's error; ctx's when ctx ends first (the client went away); or,
// without calling read, an error wrapping ErrTooManyWaits when owner has MaxPerOwner
// calls waiting already, or everyone together has Max.
func (w *Waits) Wait(ctx context.Context, owner string, f Filter, timeout time.Duration, read func(context.Context) (bool, error)) error {
	x := &waiter{filter: f, wake: make(chan struct{}, 1)}
	if err := w.add(owner, x); err != nil {
		return err
	}
	defer w.remove(owner, x)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		found, err := read(ctx)
		if found || err != nil {
			return err
		}
		select {
		case <-x.wake:
		case <-timer.C:
			_, err := read(ctx)
			return err
		case <-w.closed:
			_, err := read(ctx)
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// add registers x for owner, unless that would be over a bound.
func (w *Waits) add(owner string, x *waiter) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.owned[owner]; w.cfg.MaxPerOwner > 0 && n >= w.cfg.MaxPerOwner {
		return fmt.Errorf("%w: %q has %d calls waiting for events, the most one caller may have; let one end first", ErrTooManyWaits, owner, n)
	}
	if n := len(w.waiters); w.cfg.Max > 0 && n >= w.cfg.Max {
		return fmt.Errorf("%w: the server has %d calls waiting for events, its most; try again shortly", ErrTooManyWaits, n)
	}
	w.waiters[x] = struct{}{}
	w.owned[owner]++
	return nil
}

// remove undoes add.
func (w *Waits) remove(owner string, x *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiters, x)
	if w.owned[owner]--; w.owned[owner] <= 0 {
		delete(w.owned, owner)
	}
}
