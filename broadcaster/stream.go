package broadcaster

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// subscriber is one open stream.
type subscriber struct {
	id          string
	owner       string // who opened it (a token's name), "" without auth
	remoteAddr  string
	userAgent   string
	connectedAt time.Time
	req         StreamRequest
	queueCap    int
	conn        net.Conn // the client's connection, taken over from net/http
	hangupToken int32    // its registration with the Hub's hangups, 0 for none
	hangupFD    int
	untrack     func() // ends Config.Track's tracking

	mu       sync.Mutex
	queue    []*frame
	overflow bool
	// timed says the writer has a flush scheduled, which takes what is queued by
	// then: push wakes it only when the queue is half full.
	timed bool

	wake         chan struct{} // capacity 1: "look at the queue"
	keepaliveDue atomic.Bool
	peerGone     atomic.Bool  // the client closed the connection
	closed       atomic.Bool  // ended: its owner may no longer read
	lastWrite    atomic.Int64 // unix nanoseconds
	lastID       atomic.Int64
	sent         atomic.Int64
}

// push queues f. When the queue is full it marks the subscriber as overflowed instead,
// and kicks its writer out of any write it is stuck in. It never blocks.
func (s *subscriber) push(f *frame) {
	s.mu.Lock()
	kick, wake := false, false
	if !s.overflow {
		if len(s.queue) < s.queueCap {
			s.queue = append(s.queue, f)
			wake = !s.timed || len(s.queue) >= s.queueCap/2
		} else {
			s.overflow, kick, wake = true, true, true
			s.queue = nil
		}
	}
	s.mu.Unlock()
	if kick {
		s.kick()
	}
	if wake {
		s.signal()
	}
}

// kick fails the write in progress, and every later one, with a deadline in the past.
func (s *subscriber) kick() { _ = s.conn.SetWriteDeadline(time.Unix(1, 0)) }

func (s *subscriber) overflowed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflow
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// setTimed records whether the writer has a flush scheduled.
func (s *subscriber) setTimed(timed bool) {
	s.mu.Lock()
	s.timed = timed
	s.mu.Unlock()
}

// take appends everything queued to into, and reports whether the queue overflowed.
// With due, the writer's scheduled flush has come: pushes wake it again.
func (s *subscriber) take(into []*frame, due bool) ([]*frame, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if due {
		s.timed = false
	}
	into = append(into, s.queue...)
	clear(s.queue)
	s.queue = s.queue[:0]
	if cap(s.queue) > 64 { // a burst is over: an idle subscriber holds no big array
		s.queue = nil
	}
	return into, s.overflow
}

func (s *subscriber) queueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

var (
	errOverflow = errors.New("queue overflowed")
	errPeerGone = errors.New("the client closed the connection")
	errClosed   = errors.New("closed by the hub: its owner may no longer read")
)

// buffers holds write buffers between writes, so an idle subscriber holds none. One
// grown past maxPooledBuffer by a burst is left to the collector.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBuffer = 1 << 20

// stream is the writer of one subscriber: a goroutine of the Hub's.
type stream struct {
	h         *Hub
	s         *subscriber
	refreshAt time.Time // when the write deadline is next pushed forward
	replayed  int64     // events up to this seq were sent by replay
	pending   []*frame
	// lastFlushed is how many events the last flush sent.
	lastFlushed int
}

// ServeHTTP serves GET /events/stream. It takes the connection over from net/http:
// a stream then costs one small goroutine and no buffers while idle, instead of
// net/http's two goroutines and buffers of about 10 KiB, and each flush is exactly
// one write. The price: a client that goes away is noticed at the next write, which
// the keepalive bounds.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := ParseStreamRequest(r.URL.RawQuery, r.Header.Get("Last-Event-ID"), h.cfg.Vocabulary, "access_token")
	if err != nil {
		var re *RequestError
		errors.As(err, &re)
		writeError(w, http.StatusBadRequest, "invalid_argument", re.Message, re.Field)
		return
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// Left unread, it would make closing the connection a reset, which can cost
		// the client the end of the stream.
		writeError(w, http.StatusBadRequest, "invalid_argument", "GET /events/stream takes no request body", "")
		return
	}
	owner := Owner(r.Context())
	if !h.reserve(owner) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("%q already has %d open event streams, the most one token may have; close one first", owner, h.cfg.MaxStreamsPerOwner), "")
		return
	}
	// The head is written by hand after the hijack; it keeps what middleware set.
	hdr := w.Header().Clone()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.release(owner)
		writeError(w, http.StatusInternalServerError, "internal", "this connection cannot carry an event stream (HTTP/1.1 is needed)", "")
		return
	}
	s := &subscriber{
		id: newID(), owner: owner, remoteAddr: r.RemoteAddr, userAgent: r.UserAgent(), connectedAt: time.Now(),
		req: req, queueCap: h.cfg.QueueCap, conn: conn, wake: make(chan struct{}, 1), untrack: func() {},
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hdr.Write(&head) // a bytes.Buffer does not fail
	head.WriteString("\r\nretry: 3000\n: connected " + s.id + "\n\n")
	// Register before anything is sent: every event published once the client can see
	// the stream is open reaches it, and so does what is published during replay. What
	// replay already sent is skipped when the queue is drained: no gap, no duplicate.
	if !h.add(s) {
		h.release(owner)
		_, _ = conn.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		conn.Close()
		return
	}
	if h.cfg.Track != nil {
		untrack, ok := h.cfg.Track(r.Context(), s.end)
		if !ok {
			h.remove(s)
			h.streams.Done()
			conn.Close()
			return
		}
		s.untrack = untrack
	}
	go h.serveStream(s, head.Bytes())
}

// serveStream writes the response to s until the client goes, the hub stops or s
// overflows. The Hub counts it in streams and waits for it when it stops.
func (h *Hub) serveStream(s *subscriber, head []byte) {
	defer h.streams.Done()
	defer s.conn.Close()
	defer h.remove(s)
	defer s.untrack()
	log := h.cfg.Logger.With("subscriber", s.id, "remote_addr", s.remoteAddr)
	defer func() {
		// No HTTP middleware recovers on this goroutine: one stream's bug must not
		// take the server down.
		if r := recover(); r != nil {
			log.Error("stream panicked", "err", r, "stack", string(debug.Stack()))
		}
	}()
	st := &stream{h: h, s: s}
	// The body runs to the end of the connection: no chunked framing to pay for.
	if err := st.write(head); err != nil {
		log.Debug("subscriber gone before the first write", "err", err)
		return
	}
	log.Debug("subscriber connected", "filter", s.req.Filter, "last_event_id", s.req.LastEventID, "replay", s.req.Replay)
	err := st.run()
	switch {
	case s.overflowed():
		h.dropped.Add(1)
		log.Warn("subscriber dropped", "reason", fmt.Sprintf("its queue of %d events filled up: it reads too slowly", s.queueCap),
			"last_event_id", s.lastID.Load())
	case s.closed.Load():
		log.Info("stream closed", "owner", s.owner, "reason", "its token was revoked or lost the read scope")
	case err != nil:
		log.Debug("subscriber gone", "err", err)
	default:
		log.Debug("stream ended")
	}
}

// run sends the replay, if asked for, then live events until the client goes, the
// hub stops or the subscriber overflows.
func (st *stream) run() error {
	s, h := st.s, st.h
	if s.req.Replay {
		if err := st.replay(); err != nil {
			return err
		}
	}
	var window <-chan time.Time // a flush is scheduled for when it fires
	var timer *time.Timer
	schedule := func(d time.Duration) {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		window = timer.C
		s.setTimed(true)
	}
	for {
		select {
		case <-h.ctx.Done():
			return nil
		case <-window:
			window = nil
			var overflow bool
			if st.pending, overflow = s.take(st.pending, true); overflow {
				return nil
			}
			if err := st.flush(); err != nil {
				return err
			}
		case <-s.wake:
			if s.peerGone.Load() {
				return errPeerGone
			}
			if s.closed.Load() {
				return errClosed
			}
			var overflow bool
			st.pending, overflow = s.take(st.pending, false)
			switch {
			case overflow:
				return nil
			case len(st.pending) >= s.queueCap:
				// As many as a queue holds: a window never holds more.
				if err := st.flush(); err != nil {
					return err
				}
			case window != nil && len(st.pending) > 0:
				// The scheduled flush takes these too.
			case s.req.Batch > 0 && len(st.pending) > 0:
				schedule(s.req.Batch)
			case len(st.pending) > 0 && st.lastFlushed > 0 && time.Since(time.Unix(0, s.lastWrite.Load())) < st.gap():
				// Events were written a moment ago: let what comes in the rest of the gap
				// share the next write.
				schedule(st.gap() - time.Since(time.Unix(0, s.lastWrite.Load())))
			default:
				if err := st.flush(); err != nil {
					return err
				}
			}
		}
	}
}

// The least time between two writes of events to one subscriber is minFlushGap for
// each event the last write carried, up to maxFlushGap (none after a write without
// events: the stream's head, a keepalive). A quiet stream is written to
// at once; a busy one gathers what comes within the gap into one write, which costs
// the kernel far less than a write per event. So a stream of up to one event
// per minFlushGap is written each event as it comes, and a busier one gets bigger
// writes, at most 1/maxFlushGap a second, each at most maxFlushGap late.
const (
	minFlushGap = 5 * time.Millisecond
	maxFlushGap = 20 * time.Millisecond
)

// gap is the least time from the last write to the next one of events.
func (st *stream) gap() time.Duration {
	return min(maxFlushGap, minFlushGap*time.Duration(max(1, st.lastFlushed)))
}

// reset tells the client that its last id cannot be replayed from, and why: it must
// start again from the current state. Live events follow. The reset carries, as its
// id, a seq that every queued live event is above, so a client that reconnects before
// the next event resumes from there instead of being reset again.
func (st *stream) reset(reason string, live int64) error {
	st.replayed = live // what is queued up to there is in the state the client reloads
	return st.write(fmt.Appendf(nil, "id: %d\nevent: reset\ndata: {\"reason\":%q}\n\n", live, reason))
}

// replay sends the matching events after the client's last id: from the ring when it
// holds them all, else from the log, page by page, each page in one write, until the
// ring takes over or the log ends. It runs after the subscriber was added, so every
// event published from then on is queued for it as well, and what replay sent is
// skipped when the queue is drained: no gap, no duplicate.
func (st *stream) replay() error {
	h, id := st.h, st.s.req.LastEventID
	// Every event above live is queued for the subscriber.
	live := h.lastSeq.Load()
	if id > live {
		// Committed but not published yet, or an id from another database?
		last, err := h.cfg.Log.Last(h.ctx)
		if err != nil {
			return err
		}
		if id > last {
			return st.reset("unknown_event_id", live)
		}
	} else if id < live {
		// Pruned from the log, the events it missed are gone for every server that
		// shares the log, whatever the ring of this one still holds.
		first, err := h.cfg.Log.First(h.ctx)
		if err != nil {
			return err
		}
		if id < first-1 {
			return st.reset("history_truncated", live)
		}
	}
	after := id
	for {
		frames, ok := h.ring.After(after, st.pending[:0], math.MaxInt)
		if ok {
			// Filtered in place: the matching frames move down the same array.
			st.pending = frames[:0]
			for _, f := range frames {
				if st.s.req.Filter.Match(&f.ev) {
					st.pending = append(st.pending, f)
				}
				after = f.seq
			}
			if err := st.flush(); err != nil {
				return err
			}
			st.replayed = after
			return nil
		}
		events, err := h.cfg.Log.After(h.ctx, after, replayPage)
		if err != nil {
			return err
		}
		// Seqs in the log have no gap but where events were pruned: a first event past
		// the one asked for means pruning raced the check above, and the client is
		// reset, as if it had come a moment later.
		if after == id && len(events) > 0 && events[0].Seq != after+1 {
			return st.reset("history_truncated", live)
		}
		for i := range events {
			if st.s.req.Filter.Match(&events[i]) {
				st.pending = append(st.pending, newFrame(&events[i]))
			}
			after = events[i].Seq
		}
		if err := st.flush(); err != nil {
			return err
		}
		st.replayed = after
		if len(events) < replayPage {
			return nil
		}
	}
}

// flush writes everything pending in one write, as single events or as one
// batch_update, or a keepalive comment when there is nothing and one is due.
func (st *stream) flush() error {
	all := st.pending
	frames := all[:0]
	for _, f := range all {
		if f.seq > st.replayed {
			frames = append(frames, f)
		}
	}
	defer clear(all) // let the frames go: the array outlives them
	st.pending = all[:0]
	keepalive := st.s.keepaliveDue.Swap(false)
	if len(frames) == 0 && !keepalive {
		return nil
	}
	bp := buffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuffer {
			*bp = (*bp)[:0]
			buffers.Put(bp)
		}
	}()
	b := *bp
	switch {
	case len(frames) == 0:
		b = append(b, ": keepalive\n\n"...)
	case st.s.req.Batch > 0:
		b = appendBatch(b, frames)
	default:
		for _, f := range frames {
			b = append(b, f.sse...)
		}
	}
	*bp = b
	if err := st.write(b); err != nil {
		return err
	}
	if st.s.req.Batch > 0 && len(frames) > 0 {
		st.h.batches.Add(1)
	}
	st.lastFlushed = len(frames)
	if n := len(frames); n > 0 {
		st.s.sent.Add(int64(n))
		st.h.sent.Add(int64(n))
		st.s.lastID.Store(frames[n-1].seq)
		now := time.Now()
		for _, f := range frames {
			if !f.published.IsZero() {
				st.h.cfg.Observe(now.Sub(f.published))
			}
		}
	}
	return nil
}

// write sends b in one write. A write may take up to the write timeout; the deadline
// is pushed forward only every half timeout, since setting it costs more than the
// write of a small event.
func (st *stream) write(b []byte) error {
	now := time.Now()
	if now.After(st.refreshAt) {
		if err := st.s.conn.SetWriteDeadline(now.Add(st.h.cfg.WriteTimeout)); err != nil {
			return err
		}
		st.refreshAt = now.Add(st.h.cfg.WriteTimeout / 2)
		// Kicked before the deadline above replaced the kick's?
		if st.s.overflowed() {
			return errOverflow
		}
		if st.s.closed.Load() {
			return errClosed
		}
		if err := st.h.ctx.Err(); err != nil {
			return err
		}
	}
	if _, err := st.s.conn.Write(b); err != nil {
		return err
	}
	st.s.lastWrite.Store(now.UnixNano())
	return nil
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails
	return fmt.Sprintf("%x", b)
}

// writeError writes the error shape of the API.
func writeError(w http.ResponseWriter, status int, code, message, field string) {
	WriteError(w, status, code, message, field)
}
