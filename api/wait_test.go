package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"
)

// waitServer is the API with its long polls fed by a tailer, as taskhub serve runs
// it, over real HTTP.
type waitServer struct {
	*server
	waits *broadcaster.Waits
	seen  chan int64 // the seq of each event once the waits have had it
}

func newWaitServer(t *testing.T, cfg broadcaster.WaitsConfig) *waitServer {
	t.Helper()
	db := openDB(t)
	tailer, err := tasks.NewTailer(context.Background(), db, tasks.TailerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ws := &waitServer{waits: broadcaster.NewWaits(cfg), seen: make(chan int64, 1000)}
	tailer.Listen(tasklog.Wake(ws.waits))
	tailer.Listen(func(r *tasks.Record) { ws.seen <- r.Seq })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { tailer.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	ts := httptest.NewServer(api.New(api.Config{Service: tasks.NewService(db), Logger: slog.New(slog.DiscardHandler), Waits: ws.waits}))
	t.Cleanup(ts.Close)
	ws.server = &server{ts}
	return ws
}

// handedOn returns once the waits have had every event up to seq.
func (ws *waitServer) handedOn(seq int64) {
	for s := range ws.seen {
		if s >= seq {
			return
		}
	}
}

// waiting returns once n calls are waiting.
func (ws *waitServer) waiting(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ws.waits.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls waiting, want %d", ws.waits.Waiting(), n)
		}
		runtime.Gosched()
	}
}

type pollAnswer struct {
	status int
	page   eventPage
	took   time.Duration
	err    error
}

// poll sends GET /api/events?query on its own goroutine.
func (ws *waitServer) poll(ctx context.Context, query string) <-chan pollAnswer {
	done := make(chan pollAnswer, 1)
	go func() {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ws.URL+"/api/events?"+query, nil)
		if err != nil {
			done <- pollAnswer{err: err}
			return
		}
		resp, err := ws.Client().Do(req)
		if err != nil {
			done <- pollAnswer{err: err, took: time.Since(start)}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		a := pollAnswer{status: resp.StatusCode, took: time.Since(start), err: err}
		if resp.StatusCode == http.StatusOK {
			a.err = json.Unmarshal(b, &a.page)
		}
		done <- a
	}()
	return done
}

// TestLongPoll: GET /api/events?wait= waits through commits its filters do not
// match and answers on the first one they do, with that event.
func TestLongPoll(t *testing.T) {
	ws := newWaitServer(t, broadcaster.WaitsConfig{})
	a := ws.create(t, `{"title": "a", "project": "site"}`)
	b := ws.create(t, `{"title": "b", "project": "site"}`)
	after := ws.lastSeq(t)

	answer := ws.poll(context.Background(), fmt.Sprintf("after=%d&task_id=%d&status=done&wait=30s", after, a.ID))
	ws.waiting(t, 1)
	ws.patch(t, b.ID, `{"status": "done"}`)
	ws.patch(t, a.ID, `{"status": "review"}`)
	ws.handedOn(after + 2)
	select {
	case got := <-answer:
		t.Fatalf("answered on events it does not match: %+v", got)
	default:
	}
	start := time.Now()
	ws.patch(t, a.ID, `{"status": "done"}`)
	got := <-answer
	if got.err != nil || got.status != http.StatusOK {
		t.Fatalf("long poll: %d, %v", got.status, got.err)
	}
	if len(got.page.Events) != 1 || got.page.Events[0].Seq != after+3 || got.page.Events[0].Task.Status != "done" || got.page.LastSeq != after+3 {
		t.Errorf("long poll: %+v, want the event of task %d done", got.page, a.ID)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered %s after the commit", took)
	}
	ws.waiting(t, 0)

	// The same filters without a wait, on the whole log: the stream's filters,
	// values before the change included.
	page := ws.events(t, "project=site&types=task_updated&status=review")
	if len(page.Events) != 2 || page.Events[0].Seq != after+2 || page.Events[1].Seq != after+3 {
		t.Errorf("filtered log: %+v, want the events %d and %d", page.Events, after+2, after+3)
	}
}

// TestLongPollTimesOut: with nothing matching, the long poll answers at its wait with
// no events and last_seq where the log ends then, past the events it did not match.
func TestLongPollTimesOut(t *testing.T) {
	ws := newWaitServer(t, broadcaster.WaitsConfig{})
	a := ws.createTitled(t, "a")
	answer := ws.poll(context.Background(), "after=1&project=elsewhere&wait=500ms")
	ws.waiting(t, 1)
	ws.patch(t, a.ID, `{"status": "done"}`)
	got := <-answer
	if got.err != nil || got.status != http.StatusOK || len(got.page.Events) != 0 || got.page.LastSeq != 2 {
		t.Fatalf("timed out: %d %+v %v; want 200, no events, last_seq 2", got.status, got.page, got.err)
	}
	if got.took < 500*time.Millisecond {
		t.Errorf("answered after %s, before its wait of 500ms", got.took)
	}
	// wait=0 is no wait.
	if page := ws.events(t, "after=2&wait=0"); len(page.Events) != 0 || page.LastSeq != 2 {
		t.Errorf("wait=0: %+v", page)
	}
}

// TestLongPollRefuses: a wait over a minute, or one that is no duration, and the
// stream's checks of the filters, are 400s naming the parameter; a server without
// waits refuses a wait.
func TestLongPollRefuses(t *testing.T) {
	ws := newWaitServer(t, broadcaster.WaitsConfig{})
	for _, tc := range []struct{ query, field string }{
		{"wait=61s", "wait"}, {"wait=10m", "wait"}, {"wait=-1s", "wait"}, {"wait=30", "wait"}, {"wait=soon", "wait"},
		{"wait=1s&wait=2s", "wait"}, {"types=task_moved", "types"}, {"status=doing", "status"}, {"source=email", "source"},
		{"task_id=x", "task_id"}, {"task_id=0", "task_id"}, {"colour=red", "colour"},
	} {
		status, h, b := ws.do(t, "GET", "/api/events?"+tc.query, nil, nil)
		wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", tc.field)
	}
	ws.createTitled(t, "a")
	if page := ws.events(t, "after=0&wait=60s"); len(page.Events) != 1 || page.LastSeq != 1 {
		t.Errorf("wait=60s, the most, with an event to answer at once: %+v", page)
	}
	plain := newServer(t)
	status, h, b := plain.do(t, "GET", "/api/events?wait=1s", nil, nil)
	wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "wait")
}

// TestLongPollBound: one caller may hold --max-waits-per-token long polls; one more
// is 429 rate_limited with Retry-After, until one ends. A poll that need not wait is
// answered at the bound too.
func TestLongPollBound(t *testing.T) {
	ws := newWaitServer(t, broadcaster.WaitsConfig{MaxPerOwner: 2})
	task := ws.createTitled(t, "a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := ws.poll(ctx, "after=1&wait=30s")
	ws.poll(ctx, "after=1&wait=30s")
	ws.waiting(t, 2)
	status, h, b := ws.do(t, "GET", "/api/events?after=1&wait=30s", nil, nil)
	wantError(t, status, h, b, http.StatusTooManyRequests, "rate_limited", "")
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if page := ws.events(t, "after=0&wait=30s"); len(page.Events) != 1 {
		t.Errorf("a poll with events to answer at once: %+v", page)
	}
	ws.patch(t, task.ID, `{"title": "b"}`)
	if got := <-first; got.status != http.StatusOK || len(got.page.Events) != 1 {
		t.Fatalf("first poll: %+v", got)
	}
	ws.waiting(t, 0) // both answered by the change
	answer := ws.poll(ctx, "after=2&wait=30s")
	ws.waiting(t, 1)
	cancel()
	<-answer
}

// TestLongPollClientGone: a long poll whose client goes away ends at once, and leaves
// nothing behind: no waiting call, no goroutine.
func TestLongPollClientGone(t *testing.T) {
	ws := newWaitServer(t, broadcaster.WaitsConfig{})
	ws.createTitled(t, "a")
	ws.lastSeq(t) // the client's connection is open already
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 50
	answers := make([]<-chan pollAnswer, n)
	for i := range answers {
		answers[i] = ws.poll(ctx, "after=1&wait=60s")
	}
	ws.waiting(t, n)
	start := time.Now()
	cancel()
	for _, a := range answers {
		<-a
	}
	ws.waiting(t, 0)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the calls ended %s after their clients went", took)
	}
	ws.Client().Transport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the polls", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond) // nothing signals a goroutine's end
	}
}
