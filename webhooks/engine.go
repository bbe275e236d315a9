package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"taskhub/internal/seqring"
	"taskhub/tasks"
)

// Defaults of EngineConfig.
const (
	// DefaultLeaseTTL is how long a node's lease of an endpoint lasts unless renewed:
	// about how long another node waits to take over from one that died.
	DefaultLeaseTTL = 6 * time.Second
	// DefaultPoll is how often a worker reads the log without a wake-up.
	DefaultPoll = 5 * time.Second
)

// EngineConfig is what an Engine is built from; zero fields take the defaults.
type EngineConfig struct {
	Store tasks.WebhookStore
	// Client sends the requests. Default NewClient(false): the guard on.
	Client *http.Client
	// Node names this process among those that share the database: the owner of the
	// leases it takes. Required.
	Node   string
	Logger *slog.Logger
	// LeaseTTL is the length of a lease; the engine renews its leases, and looks for
	// endpoints nobody delivers, every third of it. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Poll is the net under the tailer's wake-ups. Default DefaultPoll.
	Poll time.Duration
	// Observe, if set, is told the time from each event's time to its 2xx answer.
	Observe func(time.Duration)
}

// Engine delivers the event log to every enabled endpoint whose lease this node holds:
// per endpoint one worker, which sends its matching events one at a time in seq
// order, from the cursor stored in the database, and stores the cursor after each
// 2xx before it sends the next. So a crash re-sends at most the request in flight.
// Events reach the workers from the tailer (Listen), and from the database when
// they are older than what the engine keeps in memory.
type Engine struct {
	store    tasks.WebhookStore
	client   *http.Client
	node     string
	logger   *slog.Logger
	leaseTTL time.Duration
	poll     time.Duration
	observe  func(time.Duration) // nil: none
	jitter   func(time.Duration) time.Duration

	tail   *seqring.Ring[*tasks.Record] // the newest events of the log
	read   pages                        // read from the store by workers behind tail
	resync chan struct{}                // capacity 1: an endpoint changed; read them again

	mu      sync.Mutex
	workers map[int64]*worker
	logID   string

	delivered, failed, disabled atomic.Uint64
}

// NewEngine returns an Engine for cfg; Run runs it.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil || cfg.Node == "" {
		return nil, fmt.Errorf("webhooks engine: a store and a node name are required")
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(false)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	return &Engine{
		store: cfg.Store, client: cfg.Client, node: cfg.Node, logger: cfg.Logger, leaseTTL: cfg.LeaseTTL,
		poll: cfg.Poll, observe: cfg.Observe, jitter: jitter, tail: newTail(), resync: make(chan struct{}, 1),
		workers: map[int64]*worker{},
	}, nil
}

// Stats are the engine's counters since it started.
type Stats struct {
	// Endpoints is how many endpoints this node delivers now.
	Endpoints int
	// Delivered counts the events answered 2xx, Failed the attempts that were not.
	Delivered, Failed uint64
	// Disabled counts the endpoints this node disabled: answered 410, or failing after
	// the last retry.
	Disabled uint64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n := len(e.workers)
	e.mu.Unlock()
	return Stats{Endpoints: n, Delivered: e.delivered.Load(), Failed: e.failed.Load(), Disabled: e.disabled.Load()}
}

// Listen is the tailer's listener: it keeps each record for the workers, if there
// are any, and wakes them, and has the endpoints read again after a change to one of
// them. It returns at once.
func (e *Engine) Listen(r *tasks.Record) {
	e.mu.Lock()
	idle := len(e.workers) == 0
	e.mu.Unlock()
	if idle {
		e.tail.Reset()
		e.read.clear()
	} else {
		e.tail.Push(r)
	}
	switch r.Type {
	case tasks.EventWebhookCreated, tasks.EventWebhookUpdated, tasks.EventWebhookDeleted:
		signal(e.resync)
	}
	e.mu.Lock()
	for _, w := range e.workers {
		signal(w.wake)
	}
	e.mu.Unlock()
}

// signal sends on c, a channel of capacity 1, unless a signal is waiting already.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then stops every worker, waits for them and gives up
// its leases, so that another node takes over at once.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	renew := time.NewTicker(e.leaseTTL / 3)
	defer renew.Stop()
	for {
		if err := e.sync(ctx, &wg); err != nil && ctx.Err() == nil {
			e.logger.Error("read the webhook endpoints", "err", err)
		}
		select {
		case <-ctx.Done():
			e.mu.Lock()
			for _, w := range e.workers {
				w.stop()
			}
			e.mu.Unlock()
			wg.Wait()
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for id := range e.workers {
				if err := e.store.ReleaseWebhookLease(release, id, e.node); err != nil {
					e.logger.Warn("give up a webhook lease", "webhook", id, "err", err)
				}
			}
			return
		case <-renew.C:
		case <-e.resync:
		}
	}
}

// sync reads the endpoints, renews the leases this node holds, takes those of enabled
// endpoints nobody holds, and starts and stops workers to match.
func (e *Engine) sync(ctx context.Context, wg *sync.WaitGroup) error {
	if e.logID == "" {
		id, err := e.store.LogID(ctx)
		if err != nil {
			return err
		}
		e.logID = id
	}
	list, err := e.store.Webhooks(ctx)
	if err != nil {
		return err
	}
	seen := map[int64]bool{}
	for _, h := range list {
		seen[h.ID] = true
		e.mu.Lock()
		w := e.workers[h.ID]
		e.mu.Unlock()
		if !h.Enabled {
			if w != nil {
				e.drop(ctx, w)
			}
			continue
		}
		asked := time.Now()
		held, err := e.store.AcquireWebhookLease(ctx, h.ID, e.node, e.leaseTTL)
		switch {
		case err != nil:
			e.logger.Warn("renew a webhook lease", "webhook", h.ID, "err", err)
			continue // the worker, if any, stops by itself when the lease it had runs out
		case !held && w != nil:
			e.logger.Warn("lost the lease of a webhook endpoint to another node", "webhook", h.ID)
			e.drop(ctx, w)
			continue
		case !held:
			continue
		}
		if w == nil {
			w = e.start(ctx, wg, h)
		}
		// The lease is sure until its TTL from when it was asked for, less a margin for
		// the clocks' drift.
		w.heldUntil.Store(asked.Add(e.leaseTTL * 4 / 5).UnixNano())
		w.update(h)
	}
	e.mu.Lock()
	var gone []*worker
	for id, w := range e.workers {
		if !seen[id] {
			gone = append(gone, w)
		}
	}
	e.mu.Unlock()
	for _, w := range gone {
		e.drop(ctx, w)
	}
	return nil
}

// start starts a worker for endpoint h.
func (e *Engine) start(ctx context.Context, wg *sync.WaitGroup, h *tasks.Webhook) *worker {
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{e: e, id: h.ID, wake: make(chan struct{}, 1), changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	w.next.Store(h)
	e.mu.Lock()
	e.workers[h.ID] = w
	e.mu.Unlock()
	e.logger.Info("delivering a webhook endpoint", "webhook", h.ID, "cursor", h.State.Cursor)
	wg.Go(func() {
		defer close(w.done)
		w.run(wctx)
	})
	return w
}

// drop stops worker w, waits for it and gives up its lease.
func (e *Engine) drop(ctx context.Context, w *worker) {
	w.stop()
	<-w.done
	e.mu.Lock()
	delete(e.workers, w.id)
	e.mu.Unlock()
	if err := e.store.ReleaseWebhookLease(ctx, w.id, e.node); err != nil && ctx.Err() == nil {
		e.logger.Warn("give up a webhook lease", "webhook", w.id, "err", err)
	}
}
