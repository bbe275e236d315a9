package broadcaster

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// subscriber is one open stream.
type subscriber struct {
	id          string
	remoteAddr  string
	userAgent   string
	connectedAt time.Time
	req         StreamRequest
	queueCap    int

	mu       sync.Mutex
	queue    []*frame
	overflow bool
	kick     func() // unblocks the writer: set before the subscriber is added

	wake         chan struct{} // capacity 1: "look at the queue"
	keepaliveDue atomic.Bool
	lastWrite    atomic.Int64 // unix nanoseconds
	lastID       atomic.Int64
	sent         atomic.Int64
}

// push queues f. When the queue is full it marks the subscriber as overflowed instead,
// and kicks its writer out of any write it is stuck in. It never blocks.
func (s *subscriber) push(f *frame) {
	s.mu.Lock()
	kick := false
	if !s.overflow {
		if len(s.queue) < s.queueCap {
			s.queue = append(s.queue, f)
		} else {
			s.overflow, kick = true, true
			s.queue = nil
		}
	}
	s.mu.Unlock()
	if kick {
		s.kick()
	}
	s.signal()
}

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

// take returns everything queued, and whether the queue overflowed.
func (s *subscriber) take(into []*frame) ([]*frame, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	into = append(into, s.queue...)
	clear(s.queue)
	s.queue = s.queue[:0]
	return into, s.overflow
}

func (s *subscriber) queueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

var errOverflow = errors.New("queue overflowed")

// buffers holds write buffers between writes, so an idle subscriber holds none.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

// stream is the writer side of one subscriber: the goroutine serving its request.
type stream struct {
	h        *Hub
	s        *subscriber
	w        http.ResponseWriter
	rc       *http.ResponseController
	replayed int64 // events up to this seq were sent by replay
	pending  []*frame
}

// ServeHTTP serves GET /events/stream.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := ParseStreamRequest(r.URL.Query(), r.Header.Get("Last-Event-ID"), h.cfg.Vocabulary, "access_token")
	if err != nil {
		var re *RequestError
		errors.As(err, &re)
		writeError(w, http.StatusBadRequest, "invalid_argument", re.Message, re.Field)
		return
	}
	rc := http.NewResponseController(w)
	// A stream lives long: no deadline from the server's settings may cut it. Each
	// write sets its own.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	s := &subscriber{
		id: newID(), remoteAddr: r.RemoteAddr, userAgent: r.UserAgent(), connectedAt: time.Now(),
		req: req, queueCap: h.cfg.QueueCap, wake: make(chan struct{}, 1),
		// A deadline in the past fails the write in progress, and every later one.
		kick: func() { _ = rc.SetWriteDeadline(time.Unix(1, 0)) },
	}
	st := &stream{h: h, s: s, w: w, rc: rc}
	log := h.cfg.Logger.With("subscriber", s.id, "remote_addr", s.remoteAddr)

	// Register before anything is sent: every event published once the client can see
	// the stream is open reaches it, and so does what is published during replay. What
	// replay already sent is skipped when the queue is drained: no gap, no duplicate.
	h.add(s)
	defer h.remove(s)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := st.write([]byte("retry: 3000\n: connected " + s.id + "\n\n")); err != nil {
		log.Debug("subscriber gone before the first write", "err", err)
		return
	}
	log.Debug("subscriber connected", "filter", req.Filter, "last_event_id", req.LastEventID, "replay", req.Replay)
	err = st.run(r)
	switch {
	case s.overflowed():
		h.dropped.Add(1)
		log.Warn("subscriber dropped", "reason", fmt.Sprintf("its queue of %d events filled up: it reads too slowly", s.queueCap),
			"last_event_id", s.lastID.Load())
	case err != nil:
		log.Debug("subscriber gone", "err", err)
	default:
		log.Debug("stream ended")
	}
}

// run sends the replay, if asked for, then live events until the client goes, the
// hub stops or the subscriber overflows.
func (st *stream) run(r *http.Request) error {
	s, h := st.s, st.h
	if s.req.Replay {
		// Read after the subscriber was added: every event above live is queued for it.
		live := h.lastSeq.Load()
		first, err := h.cfg.Log.First(r.Context())
		if err != nil {
			return err
		}
		last, err := h.cfg.Log.Last(r.Context())
		if err != nil {
			return err
		}
		switch {
		case s.req.LastEventID+1 < first:
			err = st.reset("history_truncated", live) // what it missed was pruned
		case s.req.LastEventID > last:
			err = st.reset("unknown_event_id", live) // an id from another database
		default:
			err = st.replay(r)
		}
		if err != nil {
			return err
		}
	}
	var window <-chan time.Time
	for {
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-h.done:
			return nil
		case <-window:
			window = nil
			if err := st.flush(); err != nil {
				return err
			}
		case <-s.wake:
			var overflow bool
			st.pending, overflow = s.take(st.pending)
			if overflow {
				return nil
			}
			if s.req.Batch > 0 && len(st.pending) > 0 {
				if window == nil {
					window = time.After(s.req.Batch)
				}
				continue
			}
			if err := st.flush(); err != nil {
				return err
			}
		}
	}
}

// reset tells the client that its last id cannot be replayed from, and why: it must
// start again from the current state. Live events follow. The reset carries, as its
// id, a seq that every queued live event is above, so a client that reconnects before
// the next event resumes from there instead of being reset again.
func (st *stream) reset(reason string, live int64) error {
	return st.write(fmt.Appendf(nil, "id: %d\nevent: reset\ndata: {\"reason\":%q}\n\n", live, reason))
}

// replay sends the matching events of the log after the client's last id, page by
// page, each page in one write.
func (st *stream) replay(r *http.Request) error {
	after := st.s.req.LastEventID
	for {
		events, err := st.h.cfg.Log.After(r.Context(), after, replayPage)
		if err != nil {
			return err
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

// flush writes everything pending in one write and one flush, as single events or as
// one batch_update, or a keepalive comment when there is nothing and one is due.
func (st *stream) flush() error {
	frames := st.pending[:0]
	for _, f := range st.pending {
		if f.seq > st.replayed {
			frames = append(frames, f)
		}
	}
	st.pending = st.pending[:0]
	keepalive := st.s.keepaliveDue.Swap(false)
	if len(frames) == 0 && !keepalive {
		return nil
	}
	bp := buffers.Get().(*[]byte)
	defer func() { *bp = (*bp)[:0]; buffers.Put(bp) }()
	b := *bp
	switch {
	case len(frames) == 0:
		b = append(b, ": keepalive\n\n"...)
	case st.s.req.Batch > 0:
		b = appendBatch(b, frames)
		st.h.batches.Add(1)
	default:
		for _, f := range frames {
			b = append(b, f.sse...)
		}
	}
	*bp = b
	if err := st.write(b); err != nil {
		return err
	}
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
	clear(frames) // let the frames go: the queue's array outlives them
	return nil
}

// write sends b and flushes it, within the write timeout.
func (st *stream) write(b []byte) error {
	if err := st.rc.SetWriteDeadline(time.Now().Add(st.h.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if st.s.overflowed() { // kicked before the deadline above replaced the kick's
		return errOverflow
	}
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	if err := st.rc.Flush(); err != nil {
		return err
	}
	st.s.lastWrite.Store(time.Now().UnixNano())
	return nil
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails
	return fmt.Sprintf("%x", b)
}

// writeError writes the error shape of the API.
func writeError(w http.ResponseWriter, status int, code, message, field string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]body{"error": {code, message, field}})
}
