package broadcaster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// reader is the read of a waiting call: it counts its calls and finds what it looks
// for once found is set; the first read runs hook after it has looked.
type reader struct {
	calls atomic.Int64
	found atomic.Bool
	hook  func() // run inside the first read, if set
}

func (r *reader) read(context.Context) (bool, error) {
	found := r.found.Load()
	if r.calls.Add(1) == 1 && r.hook != nil {
		r.hook()
	}
	return found, nil
}

// waitResult is what a Wait run on its own goroutine returned, and when.
type waitResult struct {
	err  error
	took time.Duration
}

func startWait(w *Waits, ctx context.Context, owner string, f Filter, timeout time.Duration, r *reader) <-chan waitResult {
	done := make(chan waitResult, 1)
	go func() {
		start := time.Now()
		err := w.Wait(ctx, owner, f, timeout, r.read)
		done <- waitResult{err, time.Since(start)}
	}()
	return done
}

// TestWaitWakesOnMatch: a waiting call reads the log again on an event that matches
// its filter, and on no other, and returns once the read finds something.
func TestWaitWakesOnMatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWaits(WaitsConfig{})
		r := &reader{}
		done := startWait(w, t.Context(), "alice", Filter{TaskIDs: []int64{7}, Statuses: []string{"done"}}, 30*time.Second, r)
		synctest.Wait()
		if got := r.calls.Load(); got != 1 || w.Waiting() != 1 {
			t.Fatalf("before any event: %d reads, %d waiting; want 1, 1", got, w.Waiting())
		}
		w.Publish(&Event{Seq: 1, TaskID: 8, Statuses: []string{"done"}})
		w.Publish(&Event{Seq: 2, TaskID: 7, Statuses: []string{"in_progress"}})
		synctest.Wait()
		if got := r.calls.Load(); got != 1 {
			t.Fatalf("after events that do not match: %d reads, want 1", got)
		}
		// A matching event whose read finds nothing (it was not committed for the
		// reader yet, say) leaves the call waiting.
		w.Publish(&Event{Seq: 3, TaskID: 7, Statuses: []string{"done", "in_progress"}})
		synctest.Wait()
		if got := r.calls.Load(); got != 2 || w.Waiting() != 1 {
			t.Fatalf("after a match the read did not find: %d reads, %d waiting; want 2, 1", got, w.Waiting())
		}
		r.found.Store(true)
		w.Publish(&Event{Seq: 4, TaskID: 7, Statuses: []string{"done"}})
		res := <-done
		if res.err != nil || res.took != 0 || r.calls.Load() != 3 {
			t.Errorf("Wait = %v after %s and %d reads; want nil at once, 3 reads", res.err, res.took, r.calls.Load())
		}
		if w.Waiting() != 0 || len(w.owned) != 0 {
			t.Errorf("after the call: %d waiting, owners %v; want none", w.Waiting(), w.owned)
		}
	})
}

// TestWaitTimesOut: with nothing matching, the call reads the log a last time at its
// timeout, exactly, and returns without an error.
func TestWaitTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWaits(WaitsConfig{})
		r := &reader{}
		done := startWait(w, t.Context(), "alice", Filter{Projects: []string{"site"}}, 30*time.Second, r)
		time.Sleep(29 * time.Second)
		w.Publish(&Event{Seq: 1, Projects: []string{"other"}})
		synctest.Wait()
		select {
		case res := <-done:
			t.Fatalf("returned after %s, before its timeout: %v", res.took, res.err)
		default:
		}
		res := <-done
		if res.err != nil || res.took != 30*time.Second || r.calls.Load() != 2 {
			t.Errorf("Wait = %v after %s and %d reads; want nil after 30s, 2 reads", res.err, res.took, r.calls.Load())
		}
		if w.Waiting() != 0 {
			t.Errorf("%d waiting after the timeout", w.Waiting())
		}
	})
}

// TestWaitRegistersBeforeReading: an event published while the first read runs (it
// committed just after the read looked) wakes the call; it is not lost between the
// read and the wait.
func TestWaitRegistersBeforeReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWaits(WaitsConfig{})
		r := &reader{}
		r.hook = func() {
			r.found.Store(true)
			w.Publish(&Event{Seq: 1, TaskID: 7})
		}
		res := <-startWait(w, t.Context(), "alice", Filter{TaskIDs: []int64{7}}, 30*time.Second, r)
		if res.err != nil || res.took != 0 || r.calls.Load() != 2 {
			t.Errorf("Wait = %v after %s and %d reads; want nil at once, 2 reads", res.err, res.took, r.calls.Load())
		}
	})
}

// TestWaitEnds: a call ends when its context does (its client went away), without
// reading again, and when the Waits is closed, with a last read; a call made after
// Close does not wait.
func TestWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWaits(WaitsConfig{})
		ctx, cancel := context.WithCancel(t.Context())
		gone := &reader{}
		goneDone := startWait(w, ctx, "alice", Filter{}, time.Minute, gone)
		stays := &reader{}
		staysDone := startWait(w, t.Context(), "alice", Filter{}, time.Minute, stays)
		time.Sleep(time.Second)
		cancel()
		if res := <-goneDone; !errors.Is(res.err, context.Canceled) || res.took != time.Second || gone.calls.Load() != 1 {
			t.Errorf("cancelled: Wait = %v after %s and %d reads; want context.Canceled after 1s, 1 read", res.err, res.took, gone.calls.Load())
		}
		time.Sleep(time.Second)
		w.Close()
		if res := <-staysDone; res.err != nil || res.took != 2*time.Second || stays.calls.Load() != 2 {
			t.Errorf("closed: Wait = %v after %s and %d reads; want nil after 2s, 2 reads", res.err, res.took, stays.calls.Load())
		}
		late := &reader{}
		if res := <-startWait(w, t.Context(), "alice", Filter{}, time.Minute, late); res.err != nil || res.took != 0 || late.calls.Load() != 2 {
			t.Errorf("after Close: Wait = %v after %s and %d reads; want nil at once, 2 reads", res.err, res.took, late.calls.Load())
		}
		if w.Waiting() != 0 || len(w.owned) != 0 {
			t.Errorf("%d waiting, owners %v; want none", w.Waiting(), w.owned)
		}
	})
}

// TestWaitBounds: one owner may have MaxPerOwner calls waiting, everyone together
// Max; a call over either is refused at once without reading, and room comes back
// as calls end.
func TestWaitBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWaits(WaitsConfig{MaxPerOwner: 2, Max: 3})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var wg sync.WaitGroup
		for _, owner := range []string{"alice", "alice", "bob"} {
			wg.Go(func() { w.Wait(ctx, owner, Filter{}, time.Minute, (&reader{}).read) })
		}
		synctest.Wait()
		for _, owner := range []string{"alice", "carol"} {
			r := &reader{}
			err := w.Wait(ctx, owner, Filter{}, time.Minute, r.read)
			if !errors.Is(err, ErrTooManyWaits) || r.calls.Load() != 0 {
				t.Errorf("%s over a bound: %v after %d reads; want ErrTooManyWaits, no read", owner, err, r.calls.Load())
			}
		}
		cancel()
		wg.Wait()
		r := &reader{}
		r.found.Store(true)
		if err := w.Wait(t.Context(), "alice", Filter{}, time.Minute, r.read); err != nil {
			t.Errorf("once the others ended: %v", err)
		}
	})
}
