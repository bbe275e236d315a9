package broadcaster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The time-driven rules of the hub, under testing/synctest: the clock moves only when
// every goroutine of the test waits, so each test can say exactly when a write comes.
// Streams run over net.Pipe, whose reads and writes block like a slow client's.

// memLog is an event log in memory: events 1..n, of which those below first were
// pruned.
type memLog struct {
	mu     sync.Mutex
	events []Event
	first  int64
	reads  int // calls of After
}

func (l *memLog) append(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *memLog) After(_ context.Context, after int64, limit int) ([]Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	var out []Event
	for _, e := range l.events {
		if e.Seq > after && e.Seq >= l.first && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) Last(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.events)), nil
}

func (l *memLog) First(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.first, 1), nil
}

func event(seq int64, project string) Event {
	return Event{Seq: seq, Type: "task_updated", TaskID: seq, Source: "rest_api", Projects: []string{project},
		Data: fmt.Appendf(nil, `{"seq":%d}`, seq)}
}

// testHub is a running Hub over a memLog, and a way to publish to both.
type testHub struct {
	*Hub
	log    *memLog
	cancel context.CancelFunc
	done   chan struct{}
}

func newTestHub(t *testing.T, cfg Config, prior int) *testHub {
	t.Helper()
	log := &memLog{}
	for i := 1; i <= prior; i++ {
		log.append(event(int64(i), "p"))
	}
	cfg.Log, cfg.Vocabulary = log, vocabulary
	h := &testHub{Hub: New(cfg), log: log, done: make(chan struct{})}
	if err := h.Prime(context.Background(), int64(prior)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.Run(ctx); close(h.done) }()
	t.Cleanup(h.stop)
	return h
}

func (h *testHub) stop() {
	h.cancel()
	<-h.done
}

// publish appends the next event to the log and publishes it.
func (h *testHub) publish(project string) int64 {
	seq, _ := h.log.Last(context.Background())
	e := event(seq+1, project)
	h.log.append(e)
	h.Publish(&e)
	return e.Seq
}

// hijacker is the ResponseWriter of a stream request: it hands over one end of a pipe.
type hijacker struct {
	header http.Header
	conn   net.Conn
	status int
}

func (w *hijacker) Header() http.Header         { return w.header }
func (w *hijacker) Write(b []byte) (int, error) { return len(b), nil }
func (w *hijacker) WriteHeader(status int)      { w.status = status }
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// client is the reading end of a stream.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

// open starts a stream with query and Last-Event-ID lastID ("" for none), and reads
// its response head and the connected comment.
func open(t *testing.T, h *testHub, query, lastID string) *client {
	t.Helper()
	server, conn := net.Pipe()
	req := httptest.NewRequest(http.MethodGet, "/events/stream?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	w := &hijacker{header: http.Header{}, conn: server}
	h.ServeHTTP(w, req)
	if w.status != 0 {
		t.Fatalf("stream refused with %d", w.status)
	}
	c := &client{conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	for { // the head, up to "retry:" and the connected comment
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v", err)
		}
		if strings.HasPrefix(line, ": connected") {
			break
		}
	}
	if _, err := c.r.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}
	return c
}

// message is one SSE message (or comment) as the client read it.
type message struct {
	id, event, data, comment string
	at                       time.Time
}

// next reads the next message.
func (c *client) next(t *testing.T) message {
	t.Helper()
	var m message
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			m.at = time.Now()
			return m
		case strings.HasPrefix(line, ": "):
			m.comment = line[2:]
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
}

// seqs reads n messages and returns their ids.
func (c *client) seqs(t *testing.T, n int) []int64 {
	t.Helper()
	var out []int64
	for range n {
		m := c.next(t)
		id, err := strconv.ParseInt(m.id, 10, 64)
		if err != nil {
			t.Fatalf("message %+v has no id", m)
		}
		out = append(out, id)
	}
	return out
}

func TestFlushGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{}, 0)
		c := open(t, h, "", "")
		start := time.Now()
		h.publish("p")
		if m := c.next(t); m.id != "1" || m.at != start {
			t.Fatalf("first event %+v at +%s, want id 1 at once", m, m.at.Sub(start))
		}
		// Written to a moment ago: the next events wait out the gap and share a write.
		h.publish("p")
		h.publish("p")
		h.publish("p")
		for _, want := range []string{"2", "3", "4"} {
			if m := c.next(t); m.id != want || m.at.Sub(start) != minFlushGap {
				t.Fatalf("got %+v at +%s, want %s at +%s", m, m.at.Sub(start), want, minFlushGap)
			}
		}
		// That write carried 3 events: the next one waits 3 gaps from it.
		time.Sleep(time.Millisecond)
		synctest.Wait()
		h.publish("p")
		if m := c.next(t); m.id != "5" || m.at.Sub(start) != 4*minFlushGap {
			t.Fatalf("got %+v at +%s, want 5 at +%s", m, m.at.Sub(start), 4*minFlushGap)
		}
		// A quiet stream is written to at once again.
		time.Sleep(time.Second)
		at := time.Now()
		h.publish("p")
		if m := c.next(t); m.id != "6" || m.at != at {
			t.Fatalf("after a quiet second: %+v at +%s, want at once", m, m.at.Sub(at))
		}
	})
}

func TestBatchWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{}, 0)
		c := open(t, h, "batch=250ms", "")
		start := time.Now()
		h.publish("p")
		time.Sleep(100 * time.Millisecond)
		h.publish("p")
		m := c.next(t)
		if m.event != "batch_update" || m.id != "2" || m.data != `{"events":[{"seq":1},{"seq":2}]}` || m.at.Sub(start) != 250*time.Millisecond {
			t.Fatalf("got %+v at +%s, want one batch of 1 and 2 at +250ms", m, m.at.Sub(start))
		}
		synctest.Wait() // the writer counts the batch once its write returns
		if s := h.Stats(); s.BatchesSent != 1 || s.EventsSent != 2 {
			t.Errorf("stats %+v, want 1 batch of 2 events", s)
		}
	})
}

func TestKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{Keepalive: 20 * time.Second}, 0)
		c := open(t, h, "", "")
		start := time.Now()
		m := c.next(t)
		if m.comment != "keepalive" {
			t.Fatalf("got %+v, want a keepalive", m)
		}
		// Checked every quarter of the interval: due at 20s, sent at the check after.
		if d := m.at.Sub(start); d < 20*time.Second || d > 25*time.Second {
			t.Errorf("keepalive after %s of silence, want 20s to 25s", d)
		}
		// An event resets the silence.
		h.publish("p")
		c.next(t)
		evAt := time.Now()
		if m := c.next(t); m.comment != "keepalive" || m.at.Sub(evAt) < 20*time.Second {
			t.Errorf("keepalive %s after an event, want at least 20s", m.at.Sub(evAt))
		}
	})
}

// TestOverflow stops reading: the queue fills, the subscriber is dropped, and
// publishing never waits for it.
func TestOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{QueueCap: 4}, 0)
		open(t, h, "", "") // never read again: its writer blocks on the pipe
		start := time.Now()
		for range 50 {
			h.publish("p")
		}
		if time.Since(start) != 0 {
			t.Errorf("publishing took %s of the clock, want none", time.Since(start))
		}
		synctest.Wait() // the writer, kicked out of its write, ends the stream
		if s := h.Stats(); s.SubscribersDropped != 1 || s.ConnectedClients != 0 {
			t.Errorf("stats %+v, want the subscriber dropped", s)
		}
	})
}

// TestReplayFromRing reconnects from an id the ring holds, while events keep coming:
// each event after the id comes exactly once, in order, and the log is not read.
func TestReplayFromRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{}, 10)
		reads := h.log.reads
		go func() {
			for range 5 {
				h.publish("p")
			}
		}()
		c := open(t, h, "", "4")
		if got, want := c.seqs(t, 11), []int64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; !slices.Equal(got, want) {
			t.Errorf("replay and live: %v, want %v", got, want)
		}
		if next, got := h.publish("p"), c.seqs(t, 1); got[0] != next {
			t.Errorf("after the replay came %d, want %d", got[0], next)
		}
		if h.log.reads != reads {
			t.Errorf("replay read the log %d times: the ring holds all it needs", h.log.reads-reads)
		}
	})
}

// TestReplayPastRing reconnects from an id older than the ring holds: the log gives
// what the ring lacks, the ring the rest, the filter applies to both.
func TestReplayPastRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{RingEvents: 3}, 0)
		for i := range 250 {
			h.publish([]string{"p", "q"}[i%2])
		}
		c := open(t, h, "project=p", "10")
		h.publish("p") // 251
		var want []int64
		for seq := int64(11); seq <= 251; seq += 2 {
			want = append(want, seq)
		}
		if got := c.seqs(t, len(want)); !slices.Equal(got, want) {
			t.Errorf("replay of project p after 10: %v, want %v", got, want)
		}
		// 251 came by replay while it was queued live too: it is not sent again.
		next := h.publish("p")
		if got := c.seqs(t, 1); got[0] != next {
			t.Errorf("after the replay came %d, want %d", got[0], next)
		}
	})
}

func TestReplayReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, Config{}, 5)
		h.log.first = 4 // 1 to 3 pruned; the ring still holds them
		for _, tc := range []struct{ id, reason string }{{"2", "history_truncated"}, {"9", "unknown_event_id"}} {
			c := open(t, h, "", tc.id)
			if m := c.next(t); m.event != "reset" || m.id != "5" || m.data != `{"reason":"`+tc.reason+`"}` {
				t.Errorf("Last-Event-ID %s: %+v, want reset %s with id 5", tc.id, m, tc.reason)
			}
		}
		c := open(t, h, "", "3") // missed nothing that was pruned
		h.publish("p")
		if got := c.seqs(t, 3); !slices.Equal(got, []int64{4, 5, 6}) {
			t.Errorf("replay after 3: %v, want [4 5 6]", got)
		}
	})
}

func TestRingBounds(t *testing.T) {
	r := newRing(4, 1000)
	for seq := int64(1); seq <= 5; seq++ {
		r.Push(newFrame(&Event{Seq: seq, Type: "t", Data: []byte("{}")}))
	}
	if _, ok := r.After(0, nil, 10); ok {
		t.Error("after 0: the ring kept more than 4 frames")
	}
	if got, ok := r.After(1, nil, 10); !ok || len(got) != 4 {
		t.Errorf("after 1: %d frames, %v; want 2 to 5", len(got), ok)
	}
	// The data fits in the 1000 bytes, the frame with its id and event lines does not.
	r.Push(newFrame(&Event{Seq: 6, Type: "t", Data: make([]byte, 990)}))
	if _, ok := r.After(5, nil, 10); ok {
		t.Error("a frame larger than the byte bound was kept")
	}
}
