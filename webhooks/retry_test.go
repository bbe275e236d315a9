package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"taskhub/tasks"
)

// memStore is the part of a WebhookStore the Engine uses, in memory, so that the
// engine can run in a synctest bubble: one endpoint and a log of one event.
type memStore struct {
	tasks.WebhookStore // not called
	mu                 sync.Mutex
	hook               tasks.Webhook
	events             []tasks.Record
	deliveries         []tasks.WebhookDelivery
}

func (s *memStore) LogID(context.Context) (string, error) { return "mem", nil }
func (s *memStore) Webhooks(ctx context.Context) ([]*tasks.Webhook, error) {
	h, err := s.Webhook(ctx, 1)
	return []*tasks.Webhook{h}, err
}
func (s *memStore) Webhook(context.Context, int64) (*tasks.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hook
	return &h, nil
}
func (s *memStore) AcquireWebhookLease(context.Context, int64, string, time.Duration) (bool, error) {
	return true, nil
}
func (s *memStore) ReleaseWebhookLease(context.Context, int64, string) error { return nil }
func (s *memStore) Events(_ context.Context, q tasks.EventQuery) ([]tasks.Record, error) {
	var out []tasks.Record
	for _, r := range s.events {
		if r.Seq > q.After {
			out = append(out, r)
		}
	}
	return out, nil
}
func (s *memStore) WriteWebhooks(_ context.Context, fn func(tasks.WebhookTx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(memTx{s: s})
}

type memTx struct {
	tasks.WebhookTx // not called
	s               *memStore
}

func (tx memTx) Webhook(int64) (*tasks.Webhook, error) { h := tx.s.hook; return &h, nil }
func (tx memTx) UpdateWebhook(h *tasks.Webhook) error  { tx.s.hook = *h; return nil }
func (tx memTx) AppendEvent(*tasks.Event) error        { return nil }
func (tx memTx) SetWebhookState(_, revision int64, st tasks.WebhookState, d *tasks.WebhookDelivery) (bool, error) {
	if revision != tx.s.hook.Revision {
		return false, nil
	}
	tx.s.hook.State = st
	if d != nil {
		tx.s.deliveries = append(tx.s.deliveries, *d)
	}
	return true, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// retryRun runs an engine with no jitter on a store of one event whose every attempt
// answer answers, until the endpoint is disabled or limit of fake time has passed,
// and returns the times of the attempts and the endpoint.
func retryRun(t *testing.T, limit time.Duration, answer func(n int) *http.Response) ([]time.Time, tasks.Webhook) {
	var attempts []time.Time
	var hook tasks.Webhook
	synctest.Test(t, func(t *testing.T) {
		now := tasks.NewTime(time.Now())
		store := &memStore{
			hook: tasks.Webhook{ID: 1, URL: "http://receiver.test/hook", Filters: json.RawMessage(`{}`), Enabled: true,
				Secret: newSecret(), Revision: 1, CreatedAt: now, UpdatedAt: now},
			events: []tasks.Record{{Seq: 1, Type: tasks.EventTaskCreated, TaskID: 1, Source: tasks.SourceREST, Data: json.RawMessage(`{"seq":1}`)}},
		}
		var mu sync.Mutex
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			attempts = append(attempts, time.Now())
			n := len(attempts)
			mu.Unlock()
			resp := answer(n)
			resp.Request, resp.Body = r, io.NopCloser(strings.NewReader(""))
			return resp, nil
		})}
		e, err := NewEngine(EngineConfig{Store: store, Client: client, Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		e.jitter = func(d time.Duration) time.Duration { return d }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		for start := time.Now(); time.Since(start) < limit; {
			time.Sleep(time.Minute)
			if h, _ := store.Webhook(ctx, 1); !h.Enabled {
				break
			}
		}
		cancel()
		<-done
		hook = store.hook
	})
	return attempts, hook
}

func TestRetrySchedule(t *testing.T) {
	attempts, hook := retryRun(t, 48*time.Hour, func(int) *http.Response { return &http.Response{StatusCode: 500} })
	if len(attempts) != len(retryDelays)+1 {
		t.Fatalf("%d attempts, want %d: the first and one per retry", len(attempts), len(retryDelays)+1)
	}
	for i, want := range retryDelays {
		// The retry is due want after the failed attempt, which took no time here;
		// the worker also waits out its lease's first renewal at the start.
		if got := attempts[i+1].Sub(attempts[i]); got != want {
			t.Errorf("retry %d came %s after the attempt before, want %s", i+1, got, want)
		}
	}
	if hook.Enabled || !strings.Contains(hook.State.DisabledReason, "failed 8 times") || hook.State.Failures != 8 {
		t.Errorf("after the last retry: enabled %v, state %+v", hook.Enabled, hook.State)
	}
}

func TestRetryAfter(t *testing.T) {
	attempts, hook := retryRun(t, time.Hour, func(n int) *http.Response {
		switch n {
		case 1:
			return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"120"}}}
		case 2:
			return &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {time.Now().Add(42 * time.Second).UTC().Format(http.TimeFormat)}}}
		case 3:
			return &http.Response{StatusCode: 500, Header: http.Header{"Retry-After": {"1"}}} // only for 429 and 503
		}
		return &http.Response{StatusCode: 200}
	})
	if len(attempts) != 4 {
		t.Fatalf("%d attempts, want 4", len(attempts))
	}
	for i, want := range []time.Duration{120 * time.Second, 42 * time.Second, retryDelays[2]} {
		if got := attempts[i+1].Sub(attempts[i]); got < want-time.Second || got > want {
			t.Errorf("attempt %d came %s after the one before, want %s", i+2, got, want)
		}
	}
	if !hook.Enabled || hook.State.Cursor != 1 || hook.State.Failures != 0 || hook.State.LastStatus != 200 {
		t.Errorf("after the 2xx: %+v", hook)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Hour); d < 54*time.Minute || d > 66*time.Minute {
			t.Fatalf("jitter of an hour: %s, want within a tenth", d)
		}
	}
}
