// Package broadcaster fans the committed events of the log out to Server-Sent-Events
// subscribers. Events reach it only through Publish, called in seq order by whoever
// follows the log (the tasks.Tailer, in this server), and replay reads the same log,
// so the ordering, the replay of a reconnecting client and the delivery of another
// process's changes are one path.
//
// Each subscriber has a filter, a bounded queue of pre-encoded events and one writer
// (the goroutine serving its request), which drains the whole queue into one write and
// one flush. Publishing never waits for a subscriber: one whose queue is full is
// disconnected, and loses nothing, since its reconnect replays from its last id. The
// most recent events stay encoded in a ring shared by every replaying subscriber, so
// a reconnect costs about what the live events it missed would have; only older ones
// are read from the log.
package broadcaster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"taskhub/internal/seqring"
)

// Config is what a Hub is built from. Zero durations and sizes take the defaults.
type Config struct {
	Log          Log
	Vocabulary   Vocabulary
	Logger       *slog.Logger
	Keepalive    time.Duration // a comment after this much silence; default 15s
	QueueCap     int           // events queued for one subscriber; default 1024
	WriteTimeout time.Duration // for one write to a subscriber; default 10s
	// RingEvents and RingBytes bound the ring of recent events that replay is served
	// from (both must hold); defaults 8192 and 32 MiB.
	RingEvents int
	RingBytes  int
	// Track, if set, is told of every stream once it is registered, with its
	// request's context and a func that ends it, until the returned untrack; a stream
	// it refuses (its credentials no longer hold) is closed at once. It lets whoever
	// checks credentials end a stream when they are revoked.
	Track func(ctx context.Context, end func()) (untrack func(), ok bool)
	// MaxStreamsPerOwner bounds the open streams of one owner (see WithOwner); 0 means
	// no bound. Streams without an owner are never bounded.
	MaxStreamsPerOwner int
	// Node, if set, says which server this is, for the debug snapshot.
	Node func() Node
	// Observe, if set, is told how long each live event took from its publishing
	// to the flush that sent it, once per subscriber that got it.
	Observe func(time.Duration)
}

// Defaults of Config.
const (
	DefaultKeepalive    = 15 * time.Second
	DefaultQueueCap     = 1024
	DefaultWriteTimeout = 10 * time.Second
	DefaultRingEvents   = 8192
	DefaultRingBytes    = 32 << 20
)

// replayPage is how many events replay reads from the log at once: a bound on memory
// too, since an event can be some 200 KiB (a task of 64 KiB description, with the old
// and new description among its changes).
const replayPage = 100

// Hub holds the subscribers and publishes the log's events to them.
type Hub struct {
	cfg     Config
	started time.Time
	ctx     context.Context // cancelled when Run ends: every stream ends
	cancel  context.CancelFunc
	streams sync.WaitGroup // the stream writers, which Run waits for

	mu      sync.RWMutex
	subs    map[*subscriber]struct{}
	owned   map[string]int // open or opening streams per owner
	stopped bool

	ring *seqring.Ring[*frame] // the recent frames, for replay
	// hangups watches the streams' sockets, from the first one on, where the system
	// can tell of a hang-up (hangupsDone is closed when its goroutine has returned);
	// noHangups says it cannot.
	hangups     *hangups
	hangupsDone chan struct{}
	noHangups   bool

	published atomic.Int64
	sent      atomic.Int64
	batches   atomic.Int64
	dropped   atomic.Int64
	lastSeq   atomic.Int64
	lastTime  atomic.Int64 // unix nanoseconds of the last publish
}

// New returns a Hub; Run starts it.
func New(cfg Config) *Hub {
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = DefaultKeepalive
	}
	if cfg.QueueCap <= 0 {
		cfg.QueueCap = DefaultQueueCap
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.RingEvents <= 0 {
		cfg.RingEvents = DefaultRingEvents
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = DefaultRingBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observe == nil {
		cfg.Observe = func(time.Duration) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{cfg: cfg, started: time.Now(), ctx: ctx, cancel: cancel, subs: map[*subscriber]struct{}{},
		owned: map[string]int{}, ring: newRing(cfg.RingEvents, cfg.RingBytes)}
}

// Prime sets where the log ends before the first Publish, and fills the replay ring
// with the events up to there that it holds, read from the log: a restarted server
// serves the reconnects of its old clients from memory too. Call it once, before
// Publish and before any stream opens.
func (h *Hub) Prime(ctx context.Context, last int64) error {
	h.lastSeq.Store(last)
	after := max(0, last-int64(h.cfg.RingEvents))
	for after < last {
		events, err := h.cfg.Log.After(ctx, after, replayPage)
		if err != nil {
			return fmt.Errorf("fill the replay ring: %w", err)
		}
		for i := range events {
			if events[i].Seq <= last {
				h.ring.Push(newFrame(&events[i]))
			}
		}
		if len(events) < replayPage {
			return nil
		}
		after = events[len(events)-1].Seq
	}
	return nil
}

// Run sends keepalives until ctx ends; then it ends every stream and returns.
func (h *Hub) Run(ctx context.Context) {
	defer h.stop()
	keepalive := time.NewTicker(max(h.cfg.Keepalive/4, time.Millisecond))
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-keepalive.C:
			h.keepalive(now)
		}
	}
}

// Publish hands e to every subscriber whose filter matches, encoded once for all of
// them, and keeps it in the replay ring. It never waits for a subscriber. It must be
// called in seq order, with every event of the log after the seq given to Prime.
func (h *Hub) Publish(e *Event) {
	f := newFrame(e)
	f.published = time.Now()
	h.ring.Push(f)
	h.mu.RLock()
	for s := range h.subs {
		if s.req.Filter.Match(&f.ev) {
			s.push(f)
		}
	}
	h.mu.RUnlock()
	h.published.Add(1)
	h.lastSeq.Store(e.Seq)
	h.lastTime.Store(f.published.UnixNano())
}

// keepalive wakes every subscriber that has been silent for a keepalive interval,
// and, where nothing tells of hang-ups, every one whose client has gone, so that its
// stream ends now.
func (h *Hub) keepalive(now time.Time) {
	due := now.Add(-h.cfg.Keepalive).UnixNano()
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		switch {
		case h.hangups == nil && peerGone(s.conn):
			s.peerGone.Store(true)
			s.signal()
		case s.lastWrite.Load() <= due:
			s.keepaliveDue.Store(true)
			s.signal()
		}
	}
}

// Stats is the Hub's counters, as /events/debug and /metrics show them.
type Stats struct {
	ConnectedClients   int
	EventsPublished    int64
	EventsSent         int64
	BatchesSent        int64
	SubscribersDropped int64
	LastSeq            int64
}

// Stats returns the Hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	n := len(h.subs)
	h.mu.RUnlock()
	return Stats{
		ConnectedClients: n, EventsPublished: h.published.Load(), EventsSent: h.sent.Load(),
		BatchesSent: h.batches.Load(), SubscribersDropped: h.dropped.Load(), LastSeq: h.lastSeq.Load(),
	}
}

// stop ends every stream, unblocking writes in progress, and waits for their writers.
func (h *Hub) stop() {
	h.cancel() // first: a writer checks it after pushing its deadline past a kick
	h.mu.Lock()
	h.stopped = true
	for s := range h.subs {
		s.kick()
	}
	h.mu.Unlock()
	h.streams.Wait()
	if h.hangups != nil { // no stream is left to add or remove itself
		h.hangups.stop(h.hangupsDone)
	}
}

// add registers s and counts its writer in streams, unless the hub has stopped.
func (h *Hub) add(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	h.subs[s] = struct{}{}
	h.streams.Add(1)
	if _, ok := s.conn.(syscall.Conn); ok && h.hangups == nil && !h.noHangups {
		h.startHangups()
	}
	if h.hangups != nil {
		h.hangups.add(s)
	}
	return true
}

// startHangups starts watching for hang-ups; stop ends it. h.mu is held.
func (h *Hub) startHangups() {
	w, err := newHangups()
	if err != nil {
		h.noHangups = true
		h.cfg.Logger.Debug("a client that leaves is noticed by the keepalive's check", "reason", err)
		return
	}
	h.hangups, h.hangupsDone = w, make(chan struct{})
	go func() { defer close(h.hangupsDone); w.run() }()
}

// remove unregisters s; it comes before s's connection closes.
func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	if h.hangups != nil {
		h.hangups.remove(s)
	}
	h.mu.Unlock()
	h.release(s.owner)
}

// reserve counts one more stream of owner, unless owner has as many as it may.
func (h *Hub) reserve(owner string) bool {
	if owner == "" {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg.MaxStreamsPerOwner > 0 && h.owned[owner] >= h.cfg.MaxStreamsPerOwner {
		return false
	}
	h.owned[owner]++
	return true
}

// release undoes one reserve of owner.
func (h *Hub) release(owner string) {
	if owner == "" {
		return
	}
	h.mu.Lock()
	if h.owned[owner]--; h.owned[owner] <= 0 {
		delete(h.owned, owner)
	}
	h.mu.Unlock()
}

// end ends s's stream, its credentials revoked. It never waits for the writer.
func (s *subscriber) end() {
	if !s.closed.Swap(true) {
		s.kick()
		s.signal()
	}
}

// ownerKey is the context key of WithOwner.
type ownerKey struct{}

// WithOwner returns ctx saying that a stream opened with it belongs to owner (the
// name of the token that authenticated the request), for MaxStreamsPerOwner.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// Owner returns the owner WithOwner put in ctx, or "".
func Owner(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}
