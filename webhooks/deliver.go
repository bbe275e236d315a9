package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"taskhub/tasks"
)

// retryDelays are the waits before each retry of a failed attempt; after the last
// retry fails, the endpoint is disabled.
var retryDelays = [...]time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// jitter spreads d by up to a tenth either way, so that endpoints failing together do
// not all come back at once.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// retryAfter reads a Retry-After header, seconds or an HTTP date, into a wait from
// now of at least a second and at most the longest retry delay; 0 when there is none.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		d = time.Duration(min(s, int64(retryDelays[len(retryDelays)-1]/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return min(max(d, time.Second), retryDelays[len(retryDelays)-1])
}

// skipSaveEvery is how often, at most, a worker stores a cursor that moved only over
// events its endpoint's filters do not match, while more keep coming: losing such a
// move to a crash makes the worker look at those events again, and send none of them.
const skipSaveEvery = time.Second

// readPage is how many events a worker reads at a time.
const readPage = 100

// worker delivers one endpoint. Its fields below the line are its goroutine's own.
type worker struct {
	e         *Engine
	id        int64
	wake      chan struct{}                 // capacity 1: new events
	changed   chan struct{}                 // capacity 1: next holds a new revision
	next      atomic.Pointer[tasks.Webhook] // the endpoint as the engine last read it
	heldUntil atomic.Int64                  // unix nanoseconds: until then the lease is sure
	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once

	h       *tasks.Webhook // the endpoint, with the state as the worker keeps it
	filter  Filter
	saved   int64 // the cursor as stored
	savedAt time.Time
}

func (w *worker) stop() { w.stopOnce.Do(w.cancel) }

// update hands the worker endpoint h as read by the engine; a new revision (a change
// made through the Service) replaces what the worker holds.
func (w *worker) update(h *tasks.Webhook) {
	if cur := w.next.Load(); cur == nil || cur.Revision != h.Revision {
		w.next.Store(h)
		signal(w.changed)
	}
}

// use makes h the endpoint the worker delivers, with h's state.
func (w *worker) use(h *tasks.Webhook) {
	c := *h
	w.h, w.saved, w.savedAt = &c, h.State.Cursor, time.Now()
	w.filter = Filter{}
	if err := json.Unmarshal(h.Filters, &w.filter); err != nil {
		// Nothing would match a filter the worker cannot read: deliver nothing until
		// the endpoint is changed, rather than everything.
		w.e.logger.Error("read a webhook endpoint's filters", "webhook", h.ID, "err", err)
		w.h.Enabled = false
	}
}

// reload reads the endpoint from the store: after a change raced with a delivery.
func (w *worker) reload(ctx context.Context) {
	h, err := w.e.store.Webhook(ctx, w.id)
	if err != nil {
		if ctx.Err() == nil {
			w.e.logger.Warn("read a webhook endpoint again", "webhook", w.id, "err", err)
		}
		w.h.Enabled = false // until the engine hands a new revision, or drops the worker
		return
	}
	w.use(h)
}

// changedSince reads the endpoint from the store, and takes it up if a change made
// it another revision since the worker read it. The engine hands the worker every
// change soon, but the change's event may come first.
func (w *worker) changedSince(ctx context.Context) bool {
	h, err := w.e.store.Webhook(ctx, w.id)
	if err != nil || h.Revision == w.h.Revision {
		return false
	}
	w.use(h)
	return true
}

func (w *worker) run(ctx context.Context) {
	w.use(w.next.Load())
	for ctx.Err() == nil {
		select {
		case <-w.changed:
			if h := w.next.Load(); h.Revision != w.h.Revision {
				w.use(h)
			}
		default:
		}
		switch {
		case !w.h.Enabled:
			w.sleep(ctx, time.Hour, false)
			continue
		case w.h.State.NextAttemptAt != nil && time.Until(w.h.State.NextAttemptAt.Time) > 0:
			w.sleep(ctx, time.Until(w.h.State.NextAttemptAt.Time), false)
			continue
		case time.Now().UnixNano() >= w.heldUntil.Load():
			w.sleep(ctx, w.e.leaseTTL/3, false)
			continue
		}
		batch, err := w.read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.e.logger.Error("read the event log for a webhook endpoint", "webhook", w.id, "after_seq", w.h.State.Cursor, "err", err)
			}
			w.sleep(ctx, w.e.poll, false)
			continue
		}
		if len(batch) == 0 {
			if w.h.State.Cursor > w.saved {
				w.saveState(ctx, nil)
			}
			w.sleep(ctx, w.e.poll, true)
			continue
		}
		w.deliverAll(ctx, batch)
	}
}

// deliverAll delivers the events of batch that the endpoint's filters match, in
// order, until one fails or the endpoint changes.
func (w *worker) deliverAll(ctx context.Context, batch []*tasks.Record) {
	for _, r := range batch {
		if ctx.Err() != nil || len(w.changed) > 0 {
			return
		}
		if r.Type == tasks.EventWebhookUpdated && w.changedSince(ctx) {
			return // it may be this endpoint's change: deliver what follows as changed
		}
		if !matches(&w.filter, r) {
			w.h.State.Cursor = r.Seq
			continue
		}
		if !w.deliver(ctx, r) {
			return
		}
	}
	if w.h.State.Cursor > w.saved && time.Since(w.savedAt) >= skipSaveEvery {
		w.saveState(ctx, nil)
	}
}

// read returns the next events after the cursor: from what the engine keeps of the
// tail of the log, else from the pages other workers read, else from the store.
func (w *worker) read(ctx context.Context) ([]*tasks.Record, error) {
	cursor := w.h.State.Cursor
	if batch, ok := w.e.tail.After(cursor, nil, readPage); ok {
		return batch, nil
	}
	if batch, ok := w.e.read.after(cursor, readPage); ok {
		return batch, nil
	}
	records, err := w.e.store.Events(ctx, tasks.EventQuery{After: cursor, Limit: readPage})
	if err != nil {
		return nil, err
	}
	batch := make([]*tasks.Record, len(records))
	for i := range records {
		batch[i] = &records[i]
	}
	w.e.read.add(cursor, batch)
	return batch, nil
}

// sleep waits for d, a change of the endpoint, new events when onEvents, or the end
// of ctx.
func (w *worker) sleep(ctx context.Context, d time.Duration, onEvents bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	wake := w.wake
	if !onEvents {
		wake = nil
	}
	select {
	case <-ctx.Done():
	case <-timer.C:
	case <-w.changed:
		signal(w.changed) // for run to take up
	case <-wake:
	}
}

// deliver makes one attempt at r and stores its outcome. It reports whether the
// worker may go on to the next event.
func (w *worker) deliver(ctx context.Context, r *tasks.Record) bool {
	start := time.Now()
	attempt := w.h.State.Failures + 1
	status, wait, errText := w.send(ctx, r, start)
	if ctx.Err() != nil {
		return false // stopped: the attempt's outcome is unknown, and it is made again
	}
	d := &tasks.WebhookDelivery{WebhookID: w.id, Seq: r.Seq, Attempt: attempt, Status: status, Error: errText,
		Time: tasks.NewTime(start), Duration: time.Since(start)}
	if status >= 200 && status < 300 {
		w.h.State = tasks.WebhookState{Cursor: r.Seq, LastStatus: status}
		if !w.saveState(ctx, d) {
			return false
		}
		w.e.delivered.Add(1)
		if w.e.observe != nil {
			if at, ok := eventTime(r.Data); ok {
				w.e.observe(time.Since(at))
			}
		}
		return true
	}
	w.e.failed.Add(1)
	w.h.State = tasks.WebhookState{Cursor: r.Seq - 1, LastStatus: status, Failures: attempt}
	switch {
	case status == http.StatusGone:
		w.disable(ctx, d, "the endpoint answered 410 Gone")
	case attempt > len(retryDelays):
		w.disable(ctx, d, fmt.Sprintf("event %d failed %d times, the last: %s", r.Seq, attempt, describe(status, errText)))
	default:
		if wait == 0 {
			wait = w.e.jitter(retryDelays[attempt-1])
		}
		next := tasks.NewTime(time.Now().Add(wait))
		w.h.State.NextAttemptAt = &next
		w.saveState(ctx, d)
	}
	return false
}

func describe(status int, errText string) string {
	if errText != "" {
		return errText
	}
	return strconv.Itoa(status)
}

// saveState stores the worker's state of the endpoint with attempt d (nil: none),
// trying again while the store fails, and reports whether it was stored. When the
// endpoint changed meanwhile, it is not, and the worker takes the endpoint up again.
func (w *worker) saveState(ctx context.Context, d *tasks.WebhookDelivery) bool {
	for {
		var applied bool
		// Not cancelled by ctx: an answer received must be recorded.
		err := w.e.store.WriteWebhooks(context.WithoutCancel(ctx), func(tx tasks.WebhookTx) (err error) {
			applied, err = tx.SetWebhookState(w.id, w.h.Revision, w.h.State, d)
			return err
		})
		switch {
		case err == nil && applied:
			w.saved, w.savedAt = w.h.State.Cursor, time.Now()
			return true
		case err == nil:
			w.reload(ctx)
			return false
		}
		w.e.logger.Error("store a webhook endpoint's delivery state", "webhook", w.id, "err", err)
		w.sleep(ctx, time.Second, false)
		if ctx.Err() != nil {
			return false
		}
	}
}

// disable disables the endpoint for reason, with attempt d, and appends the change's
// event, unless the endpoint changed meanwhile.
func (w *worker) disable(ctx context.Context, d *tasks.WebhookDelivery, reason string) {
	var changed bool
	err := w.e.store.WriteWebhooks(context.WithoutCancel(ctx), func(tx tasks.WebhookTx) error {
		state := w.h.State
		state.DisabledReason, state.NextAttemptAt = reason, nil
		applied, err := tx.SetWebhookState(w.id, w.h.Revision, state, d)
		if changed = !applied; err != nil || changed {
			return err
		}
		h, err := tx.Webhook(w.id)
		if err != nil {
			return err
		}
		h.Enabled, h.Revision, h.UpdatedAt = false, h.Revision+1, tasks.NewTime(time.Now())
		if err := tx.UpdateWebhook(h); err != nil {
			return err
		}
		_, err = appendEvent(tx, tasks.EventWebhookUpdated, tasks.Actor{Source: tasks.SourceSystem, Name: "system"}, h.UpdatedAt, h,
			map[string][2]json.RawMessage{"enabled": {json.RawMessage("true"), json.RawMessage("false")}})
		return err
	})
	if err != nil || changed {
		if err != nil {
			w.e.logger.Error("disable a webhook endpoint", "webhook", w.id, "err", err)
		}
		w.reload(ctx)
		return
	}
	w.e.disabled.Add(1)
	w.e.logger.Warn("disabled a webhook endpoint", "webhook", w.id, "reason", reason)
	w.h.Enabled = false
}

// send makes one request of r's event to the endpoint, and returns the answer's
// status (0 for none), the wait its Retry-After asks for (429 and 503 only), and what
// went wrong, if anything.
func (w *worker) send(ctx context.Context, r *tasks.Record, at time.Time) (status int, wait time.Duration, errText string) {
	id := MessageID(w.e.logID, r.Seq)
	secrets := []string{w.h.Secret}
	if w.h.PreviousSecret != "" && w.h.PreviousSecretUntil != nil && at.Before(w.h.PreviousSecretUntil.Time) {
		secrets = append(secrets, w.h.PreviousSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.h.URL, bytes.NewReader(r.Data))
	if err != nil {
		return 0, 0, err.Error()
	}
	ts := at.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "TaskHub-Webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", signature(secrets, id, ts, r.Data))
	resp, err := w.e.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			if ue.Timeout() {
				return 0, 0, fmt.Sprintf("no answer within %s", w.e.client.Timeout)
			}
			return 0, 0, ue.Err.Error()
		}
		return 0, 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, ""
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	text := "answered " + resp.Status
	if s := strings.TrimSpace(strings.ToValidUTF8(string(body), "?")); s != "" {
		if utf8.RuneCountInString(s) > 200 {
			s = string([]rune(s)[:200]) + "…"
		}
		text += ": " + s
	}
	return resp.StatusCode, wait, text
}

// timeKey starts the value of an event's time in its JSON.
var timeKey = []byte(`"time":"`)

// eventTime reads the time of the event whose JSON is data, without decoding the rest
// of it: the first timeKey is the event's own, since tasks.Event puts its time before
// every object it nests, and a string cannot hold timeKey's quotes unescaped.
func eventTime(data []byte) (time.Time, bool) {
	i := bytes.Index(data, timeKey)
	if i < 0 {
		return time.Time{}, false
	}
	v := data[i+len(timeKey):]
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v[:end]))
	return t, err == nil
}
