//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// api is the small part of the REST API the bench uses.
type api struct {
	url    string
	client *http.Client
}

func newAPI(url string, conns int) *api {
	return &api{url: url, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true},
	}}
}

// do sends a JSON request and decodes a JSON answer into out, if not nil.
func (a *api) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// debugCounters is the part of GET /events/debug the bench reads.
type debugCounters struct {
	ConnectedClients   int   `json:"connected_clients"`
	EventsPublished    int64 `json:"events_published"`
	EventsSent         int64 `json:"events_sent"`
	LastSeq            int64 `json:"last_seq"`
	SubscribersDropped int64 `json:"subscribers_dropped"`
}

func (a *api) debug(ctx context.Context) (debugCounters, error) {
	var d debugCounters
	err := a.do(ctx, http.MethodGet, "/events/debug", nil, http.StatusOK, &d)
	return d, err
}

// lastSeq returns where the event log ends: the last_seq of a page past its end.
func (a *api) lastSeq(ctx context.Context) (int64, error) {
	var page struct {
		LastSeq int64 `json:"last_seq"`
	}
	err := a.do(ctx, http.MethodGet, fmt.Sprintf("/api/events?after=%d&limit=1", int64(math.MaxInt64)), nil, http.StatusOK, &page)
	return page.LastSeq, err
}

// goroutines returns the server's go_goroutines from GET /metrics.
func (a *api) goroutines(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("GET /metrics: go_goroutines %q: %w", strings.TrimSpace(v), err)
			}
			return int64(n), nil
		}
	}
	return 0, errors.New("GET /metrics: no go_goroutines")
}

// eventInfo is what the recorder keeps of one event.
type eventInfo struct {
	taskID, version int64
	time            time.Time // the event's "time" field
	size            int       // bytes of its data line's JSON
}

// recorder is one ordinary subscriber that decodes each event's JSON, once per event
// rather than once per delivery, to learn which PATCH made each seq (by task id and
// version) and how big each event is.
type recorder struct {
	mu     sync.Mutex
	events map[int64]eventInfo
	last   atomic.Int64 // highest seq seen
	err    atomic.Pointer[error]
	body   io.Closer
}

// startRecorder subscribes and returns once the stream is open.
func startRecorder(ctx context.Context, a *api) (*recorder, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/events/stream", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "taskhub-bench recorder")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /events/stream: %s", resp.Status)
	}
	rec := &recorder{events: map[int64]eventInfo{}, body: resp.Body}
	go rec.run(resp.Body)
	return rec, nil
}

func (rec *recorder) run(body io.Reader) {
	r := bufio.NewReaderSize(body, 1<<20)
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		line = append(line, part...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			rec.err.Store(&err)
			return
		}
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			data = bytes.TrimRight(data, "\r\n")
			var e struct {
				Seq    int64     `json:"seq"`
				TaskID int64     `json:"task_id"`
				Time   time.Time `json:"time"`
				Task   *struct {
					Version int64 `json:"version"`
				} `json:"task"`
			}
			if err := json.Unmarshal(data, &e); err != nil {
				err = fmt.Errorf("recorder: event JSON: %w", err)
				rec.err.Store(&err)
				return
			}
			info := eventInfo{taskID: e.TaskID, time: e.Time, size: len(data)}
			if e.Task != nil {
				info.version = e.Task.Version
			}
			rec.mu.Lock()
			rec.events[e.Seq] = info
			rec.mu.Unlock()
			rec.last.Store(e.Seq)
		}
		line = line[:0]
	}
}

// waitFor waits until the recorder has seen seq, or ctx ends.
func (rec *recorder) waitFor(ctx context.Context, seq int64) error {
	for rec.last.Load() < seq {
		if p := rec.err.Load(); p != nil {
			return *p
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recorder saw seq %d, waited for %d: %w", rec.last.Load(), seq, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

func (rec *recorder) get(seq int64) (eventInfo, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	e, ok := rec.events[seq]
	return e, ok
}

func (rec *recorder) close() { rec.body.Close() }

// task is the part of a task the bench reads.
type task struct {
	ID      int64 `json:"id"`
	Version int64 `json:"version"`
}

// sendKey names the event one PATCH made.
type sendKey struct{ taskID, version int64 }

// publisher changes tasks at a rate, one worker per task, and records when each
// PATCH was sent.
type publisher struct {
	api   *api
	tasks []int64

	mu    sync.Mutex
	sent  map[sendKey]time.Time
	acked map[sendKey]time.Time // when its answer was read; nil: not kept
	first time.Time
	last  time.Time
	errs  []error
	late  time.Duration // the most a PATCH was sent after its scheduled time
}

// publishOutcome is what a publisher did: the PATCHes it sent, those that failed, the
// time from the first to the last, and the most one was sent behind its schedule.
type publishOutcome struct {
	published   int
	publishErrs []error
	publishSpan time.Duration
	publishLate time.Duration
}

// outcome returns what p did, once its run has returned.
func (p *publisher) outcome() publishOutcome {
	o := publishOutcome{published: len(p.sent), publishErrs: p.errs, publishLate: p.late}
	if o.published > 1 {
		o.publishSpan = p.last.Sub(p.first)
	}
	return o
}

// title is the title of the k-th change: fixed width, so that every event is the
// same size give or take its seq and timestamps.
func title(k int) string { return fmt.Sprintf("bench %09d", k) }

// run sends events PATCHes: the k-th is due at start + k/rate (all at once when rate
// is 0) and goes to the first idle worker; if none is idle, it waits, and is counted
// late. The send time recorded is taken just before the request is written.
func (p *publisher) run(ctx context.Context, events int, rate float64) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for _, id := range p.tasks {
		wg.Go(func() {
			for k := range jobs {
				p.patch(ctx, id, k)
			}
		})
	}
	start := time.Now()
	for k := range events {
		due := start
		if rate > 0 {
			due = start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- k:
		case <-ctx.Done():
		}
		if late := time.Since(due); rate > 0 && late > p.late {
			p.late = late // written only here, read after run
		}
	}
	close(jobs)
	wg.Wait()
}

func (p *publisher) patch(ctx context.Context, id int64, k int) {
	body := fmt.Sprintf(`{"title":%q}`, title(k))
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, fmt.Sprintf("%s/api/tasks/%d", p.api.url, id), strings.NewReader(body))
	if err != nil {
		p.fail(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	var t task
	resp, err := p.api.client.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
		case resp.StatusCode != http.StatusOK:
			err = fmt.Errorf("PATCH task %d: %s: %s", id, resp.Status, bytes.TrimSpace(b))
		default:
			err = json.Unmarshal(b, &t)
		}
	}
	if err != nil {
		p.fail(err)
		return
	}
	acked := time.Now()
	p.mu.Lock()
	p.sent[sendKey{id, t.Version}] = sent
	if p.acked != nil {
		p.acked[sendKey{id, t.Version}] = acked
	}
	if p.first.IsZero() || sent.Before(p.first) {
		p.first = sent
	}
	if sent.After(p.last) {
		p.last = sent
	}
	p.mu.Unlock()
}

func (p *publisher) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// sentCount is how many PATCHes succeeded so far.
func (p *publisher) sentCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent)
}
