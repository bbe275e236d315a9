package mcptools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/mcptools"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// waitHub is an MCP server over real HTTP whose waits a tailer feeds.
type waitHub struct {
	svc   *tasks.Service
	waits *broadcaster.Waits
	seen  chan int64 // the seq of each event once the waits have had it
	url   string
}

func newWaitHub(t *testing.T, cfg broadcaster.WaitsConfig) *waitHub {
	t.Helper()
	db := openDB(t)
	h := &waitHub{svc: tasks.NewService(db), waits: broadcaster.NewWaits(cfg), seen: make(chan int64, 1000)}
	follow(t, db, tasklog.Wake(h.waits), func(r *tasks.Record) { h.seen <- r.Seq })
	s := mcptools.New(mcptools.Config{Service: h.svc, Waits: h.waits})
	srv := httptest.NewServer(s.Handler(mcptools.HTTPConfig{}))
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	h.url = srv.URL + mcptools.PathStreamable
	return h
}

// connect returns a client of a session of its own over Streamable HTTP.
func (h *waitHub) connect(t *testing.T, name string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(h.url)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	t.Cleanup(func() { c.Close() })
	initialize(t, c, name)
	return c
}

func (h *waitHub) handedOn(seq int64) {
	for s := range h.seen {
		if s >= seq {
			return
		}
	}
}

func (h *waitHub) waiting(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.waits.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls waiting, want %d", h.waits.Waiting(), n)
		}
		runtime.Gosched()
	}
}

// must returns v once t has checked that err is nil.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

type waitOut struct {
	Events  []tasks.Event `json:"events"`
	LastSeq int64         `json:"last_seq"`
}

type callAnswer struct {
	res  *mcp.CallToolResult
	err  error
	took time.Duration
}

// call calls wait_for_events with args on its own goroutine.
func call(ctx context.Context, c *client.Client, args string) <-chan callAnswer {
	done := make(chan callAnswer, 1)
	go func() {
		start := time.Now()
		req := mcp.CallToolRequest{}
		req.Params.Name = "wait_for_events"
		req.Params.Arguments = json.RawMessage(args)
		res, err := c.CallTool(ctx, req)
		done <- callAnswer{res, err, time.Since(start)}
	}()
	return done
}

func (a callAnswer) out(t *testing.T) waitOut {
	t.Helper()
	if a.err != nil {
		t.Fatalf("wait_for_events: %v", a.err)
	}
	return ok[waitOut](t, a.res)
}

// TestWaitForEvents: over a real session, wait_for_events waits through commits its
// filters do not match, returns on the first one they do, and at its timeout returns
// none with last_seq where the log ends; without after it waits from now on.
func TestWaitForEvents(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	c := h.connect(t, "waiter")
	ctx := context.Background()
	a := must(h.svc.Create(ctx, tasks.Update{Title: tasks.Value("a"), Project: tasks.Value("site")}))(t)
	b := must(h.svc.Create(ctx, tasks.Update{Title: tasks.Value("b"), Project: tasks.Value("site")}))(t)

	answer := call(ctx, c, fmt.Sprintf(`{"task_id":%d,"status":["done"]}`, a.ID))
	h.waiting(t, 1)
	must(h.svc.Update(ctx, b.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}))(t)
	must(h.svc.Update(ctx, a.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusReview)}))(t)
	h.handedOn(4)
	select {
	case got := <-answer:
		t.Fatalf("returned on events it does not match: %+v", got.res)
	default:
	}
	start := time.Now()
	must(h.svc.Update(ctx, a.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}))(t)
	out := (<-answer).out(t)
	if len(out.Events) != 1 || out.Events[0].Seq != 5 || out.Events[0].Task.Status != tasks.StatusDone || out.LastSeq != 5 {
		t.Errorf("woken: %+v, want event 5 of task %d done", out, a.ID)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("returned %s after the commit", took)
	}

	// With the event in the log already: at once; and with no after, from now on.
	if out := (<-call(ctx, c, `{"after":0,"project":"site","status":["done"],"limit":1}`)).out(t); len(out.Events) != 1 || out.Events[0].Seq != 3 {
		t.Errorf("from seq 0: %+v, want event 3", out)
	}
	got := <-call(ctx, c, `{"project":"site","timeout_seconds":1}`)
	if out := got.out(t); len(out.Events) != 0 || out.LastSeq != 5 {
		t.Errorf("timed out: %+v, want no events and last_seq 5", out)
	}
	if got.took < time.Second {
		t.Errorf("returned after %s, before its timeout of 1s", got.took)
	}
	h.waiting(t, 0)
}

// TestWaitForEventsRefuses: bad arguments are isError results naming the argument;
// a caller past its bound of waiting calls gets rate_limited; a call whose client
// cancels it ends, leaving nothing waiting.
func TestWaitForEventsRefuses(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{MaxPerOwner: 1})
	c := h.connect(t, "waiter")
	for _, tc := range []struct{ args, want string }{
		{`{"timeout_seconds":61}`, "timeout_seconds"},
		{`{"timeout_seconds":0}`, "timeout_seconds"},
		{`{"status":["doing"]}`, "status"},
		{`{"after":-1}`, "after"},
		{`{"task_id":"7"}`, "task_id"},
		{`{"when":"soon"}`, "when"},
	} {
		failed(t, (<-call(context.Background(), c, tc.args)).res, tc.want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	first := call(ctx, c, `{"timeout_seconds":60}`)
	h.waiting(t, 1)
	other := h.connect(t, "waiter") // the same name: the same caller
	failed(t, (<-call(context.Background(), other, `{"timeout_seconds":60}`)).res, "rate_limited")
	start := time.Now()
	cancel()
	if got := <-first; got.err == nil {
		t.Errorf("a cancelled call returned %+v", got.res)
	}
	h.waiting(t, 0)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the call ended %s after it was cancelled", took)
	}
}
