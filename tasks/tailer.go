package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Tailer follows the event log. It reads the events that commit, whoever wrote them
// (this process, another process on the same SQLite file, another node on a shared
// database), in seq order, and hands each to its listeners: the SSE hub, MCP resource
// subscriptions, waiting calls. It is the only way events reach them, so ordering,
// cross-process delivery and replay are one path.
type Tailer struct {
	store  Store
	poll   time.Duration
	logger *slog.Logger

	mu        sync.RWMutex
	listeners map[*tailListener]struct{}
	seq       atomic.Int64 // the last seq handed on
}

// TailerConfig is what a Tailer is built from; zero fields take the defaults.
type TailerConfig struct {
	// Poll is how often the log is read without a wake-up: the net under a missed
	// or late one. Default DefaultPoll.
	Poll   time.Duration
	Logger *slog.Logger
}

// DefaultPoll is the default TailerConfig.Poll.
const DefaultPoll = time.Second

// tailPage is how many events one read of the log takes: a bound on memory, since an
// event can be some 200 KiB (a task of 64 KiB description, with the old and new
// description among its changes).
const tailPage = 100

type tailListener struct{ fn func(*Record) }

// NewTailer returns a Tailer that will hand on every event committed after now. It
// reads where the log ends, so it must be made before anything can change the log
// that its listeners must hear of: before the server takes requests.
func NewTailer(ctx context.Context, store Store, cfg TailerConfig) (*Tailer, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	last, err := store.LastSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("start the event log's tailer: %w", err)
	}
	t := &Tailer{store: store, poll: cfg.Poll, logger: cfg.Logger, listeners: map[*tailListener]struct{}{}}
	t.seq.Store(last)
	return t, nil
}

// Seq returns the seq of the last event handed on: every listener has been called
// with every event up to it.
func (t *Tailer) Seq() int64 { return t.seq.Load() }

// Listen calls fn with every event the Tailer hands on from now on, in seq order,
// until the returned stop is called. fn runs on the tailer's goroutine and must
// return at once, handing the event off without waiting for anyone.
func (t *Tailer) Listen(fn func(*Record)) (stop func()) {
	l := &tailListener{fn: fn}
	t.mu.Lock()
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.listeners, l)
		t.mu.Unlock()
	}
}

// Run reads the log whenever the store's Committed signals and at least every Poll,
// until ctx ends. A failed read is logged and tried again at the next signal or poll:
// the tailer never skips an event.
func (t *Tailer) Run(ctx context.Context) {
	poll := time.NewTicker(t.poll)
	defer poll.Stop()
	wake := t.store.Committed()
	for {
		if err := t.catchUp(ctx); err != nil && ctx.Err() == nil {
			t.logger.Error("read the event log", "after_seq", t.seq.Load(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

// catchUp hands on every event after the last one handed on.
func (t *Tailer) catchUp(ctx context.Context) error {
	for {
		records, err := t.store.Events(ctx, EventQuery{After: t.seq.Load(), Limit: tailPage})
		if err != nil {
			return err
		}
		for i := range records {
			t.handOn(&records[i])
		}
		if len(records) < tailPage {
			return nil
		}
	}
}

func (t *Tailer) handOn(r *Record) {
	t.mu.RLock()
	for l := range t.listeners {
		l.fn(r)
	}
	t.mu.RUnlock()
	t.seq.Store(r.Seq)
}
