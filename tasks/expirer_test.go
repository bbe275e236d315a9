package tasks_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"taskhub/tasks"
)

// The Expirer's timing runs under synctest, against leases kept in memory: the SQLite
// store does not run inside a bubble (its goroutines wait in system calls, which
// keep the bubble's clock from moving). The store's side of expiry is in storetest.

// memLeases is a tasks.Leases in memory: leases by task id, and what was done.
type memLeases struct {
	mu      sync.Mutex
	leases  map[int64]time.Time
	expired map[int64]time.Time // when each was expired
	reads   int                 // calls of NextLeaseExpiry
	expires int                 // calls of ExpireLeases that expired something
	fail    int                 // how many of the next calls fail
	held    bool                // ExpireLeases finds every due lease held by another writer
}

func newMemLeases() *memLeases {
	return &memLeases{leases: map[int64]time.Time{}, expired: map[int64]time.Time{}}
}

var errDown = errors.New("the database does not answer")

func (m *memLeases) NextLeaseExpiry(context.Context) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail > 0 {
		m.fail--
		return time.Time{}, false, errDown
	}
	if len(m.leases) == 0 {
		return time.Time{}, false, nil
	}
	return slices.MinFunc(slices.Collect(maps.Values(m.leases)), time.Time.Compare), true, nil
}

func (m *memLeases) ExpireLeases(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held {
		return 0, nil
	}
	n := 0
	for id, at := range m.leases {
		if !at.After(now) {
			delete(m.leases, id)
			m.expired[id] = time.Now()
			n++
		}
	}
	if n > 0 {
		m.expires++
	}
	return n, nil
}

func (m *memLeases) grant(id int64, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[id] = at
}

func (m *memLeases) expiredAt(id int64) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.expired[id]
	return at, ok
}

func (m *memLeases) counts() (reads, expires int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads, m.expires
}

// memLog stands in for the Tailer: it hands claims to its listeners.
type memLog struct {
	mu        sync.Mutex
	listeners map[int]func(*tasks.Record)
	next      int
}

func (l *memLog) Listen(fn func(*tasks.Record)) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.listeners == nil {
		l.listeners = map[int]func(*tasks.Record){}
	}
	id := l.next
	l.next++
	l.listeners[id] = fn
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.listeners, id)
	}
}

// hand gives every listener r.
func (l *memLog) hand(r *tasks.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, fn := range l.listeners {
		fn(r)
	}
}

func (l *memLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.listeners)
}

// claimRecord is the record of a claim, as the Tailer hands it on.
var claimRecord = &tasks.Record{Type: tasks.EventTaskUpdated, TaskID: 1, Source: tasks.SourceMCP,
	Match: tasks.Match{Statuses: []string{"in_progress", "todo"}}}

// runExpirer runs an Expirer of leases, heard of through log, until the returned stop.
func runExpirer(leases tasks.Leases, log *memLog) (stop func()) {
	e := tasks.NewExpirer(leases, tasks.ExpirerConfig{Listen: log.Listen})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// wantExpiredAt fails t unless the lease of id was expired at want or within a
// second after it.
func wantExpiredAt(t *testing.T, m *memLeases, id int64, want time.Time) {
	t.Helper()
	got, ok := m.expiredAt(id)
	switch {
	case !ok:
		t.Errorf("lease %d (due %s) not expired by %s", id, want.Format(time.TimeOnly), time.Now().Format(time.TimeOnly))
	case got.Before(want) || got.Sub(want) >= time.Second:
		t.Errorf("lease %d due at %s expired at %s", id, want.Format(time.StampMilli), got.Format(time.StampMilli))
	}
}

func wantNotExpired(t *testing.T, m *memLeases, id int64) {
	t.Helper()
	if at, ok := m.expiredAt(id); ok {
		t.Errorf("lease %d expired at %s, too early", id, at.Format(time.StampMilli))
	}
}

// TestExpirerOnTime: each lease is expired as it runs out, those due together in one
// call, and an idle Expirer reads only every poll, however many leases there are.
func TestExpirerOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, log := newMemLeases(), &memLog{}
		start := time.Now()
		m.grant(1, start.Add(90*time.Second))
		m.grant(2, start.Add(90*time.Second))
		m.grant(3, start.Add(200*time.Second+300*time.Millisecond))
		for id := int64(100); id < 1100; id++ {
			m.grant(id, start.Add(24*time.Hour))
		}
		stop := runExpirer(m, log)
		defer stop()

		time.Sleep(90*time.Second - time.Millisecond)
		synctest.Wait()
		wantNotExpired(t, m, 1)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		wantExpiredAt(t, m, 1, start.Add(90*time.Second))
		wantExpiredAt(t, m, 2, start.Add(90*time.Second))
		if _, expires := m.counts(); expires != 1 {
			t.Errorf("%d calls expired the two leases due together, want 1", expires)
		}
		time.Sleep(111 * time.Second)
		synctest.Wait()
		wantExpiredAt(t, m, 3, start.Add(200*time.Second+300*time.Millisecond))

		// An hour with 1,000 leases far off: a read every poll (30 s), no more.
		reads, _ := m.counts()
		time.Sleep(time.Hour)
		synctest.Wait()
		if now, _ := m.counts(); now-reads > 121 {
			t.Errorf("%d reads in an idle hour, want one per %s", now-reads, tasks.DefaultExpiryPoll)
		}
	})
}

// TestExpirerAtStart: a lease that ran out while no Expirer ran is expired at once.
func TestExpirerAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, log := newMemLeases(), &memLog{}
		start := time.Now()
		m.grant(1, start.Add(-time.Hour))
		stop := runExpirer(m, log)
		defer stop()
		synctest.Wait()
		wantExpiredAt(t, m, 1, start)
	})
}

// TestExpirerHearsClaims: a claim heard of is read after it, once for a burst; a
// lease granted unheard of is found by the next poll.
func TestExpirerHearsClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, log := newMemLeases(), &memLog{}
		start := time.Now()
		stop := runExpirer(m, log)
		defer stop()
		synctest.Wait()
		if log.count() != 1 {
			t.Fatalf("%d listeners, want 1", log.count())
		}

		time.Sleep(10 * time.Second)
		reads, _ := m.counts()
		m.grant(1, start.Add(15*time.Second))
		for range 100 {
			log.hand(claimRecord)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if now, _ := m.counts(); now-reads != 1 {
			t.Errorf("%d reads after a burst of 100 claims, want 1", now-reads)
		}
		time.Sleep(4 * time.Second)
		synctest.Wait()
		wantExpiredAt(t, m, 1, start.Add(15*time.Second))

		// Records that cannot bring a lease forward wake nothing.
		time.Sleep(time.Second)
		reads, _ = m.counts()
		log.hand(&tasks.Record{Type: tasks.EventTaskLeaseRenewed, Match: tasks.Match{Statuses: []string{"in_progress"}}})
		log.hand(&tasks.Record{Type: tasks.EventTaskUpdated, Match: tasks.Match{Statuses: []string{"done", "review"}}})
		log.hand(&tasks.Record{Type: tasks.EventTaskCreated, Match: tasks.Match{Statuses: []string{"in_progress"}}})
		time.Sleep(time.Second)
		synctest.Wait()
		if now, _ := m.counts(); now != reads {
			t.Errorf("%d reads after records that grant no lease, want none", now-reads)
		}

		// Unheard of, due at 22 s: found by the poll, 30 s after the last read (15 s).
		time.Sleep(3 * time.Second)
		m.grant(2, start.Add(22*time.Second))
		time.Sleep(24 * time.Second) // 44 s
		synctest.Wait()
		wantNotExpired(t, m, 2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, ok := m.expiredAt(2); !ok {
			t.Errorf("a lease granted unheard of is not expired by the poll at 45 s")
		}
	})
	if t.Failed() {
		return
	}
	// Stopped, it listens no more.
	synctest.Test(t, func(t *testing.T) {
		m, log := newMemLeases(), &memLog{}
		stop := runExpirer(m, log)
		synctest.Wait()
		stop()
		if log.count() != 0 {
			t.Errorf("%d listeners after Run returned, want 0", log.count())
		}
	})
}

// TestExpirerRenewal: a lease renewed before it runs out is not expired then, but when
// its renewal runs out.
func TestExpirerRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, log := newMemLeases(), &memLog{}
		start := time.Now()
		m.grant(1, start.Add(10*time.Second))
		stop := runExpirer(m, log)
		defer stop()
		time.Sleep(5 * time.Second)
		m.grant(1, start.Add(20*time.Second)) // a renewal wakes no one
		time.Sleep(10 * time.Second)
		synctest.Wait()
		wantNotExpired(t, m, 1)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		wantExpiredAt(t, m, 1, start.Add(20*time.Second))
	})
}

// TestExpirerRetries: a failed read is tried again a second later; a due lease that
// another writer holds is looked at again shortly, not in a busy loop.
func TestExpirerRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, log := newMemLeases(), &memLog{}
		start := time.Now()
		m.grant(1, start)
		m.fail = 3
		stop := runExpirer(m, log)
		defer stop()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		wantExpiredAt(t, m, 1, start.Add(3*time.Second))

		m.mu.Lock()
		m.held = true
		m.mu.Unlock()
		m.grant(2, start.Add(5*time.Second))
		log.hand(claimRecord)
		reads, _ := m.counts()
		time.Sleep(7 * time.Second) // due at 5 s, held until 10 s
		m.mu.Lock()
		m.held = false
		m.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		wantExpiredAt(t, m, 2, start.Add(10*time.Second))
		if now, _ := m.counts(); now-reads > 30 {
			t.Errorf("%d reads while a due lease was held for 5 s, want about 4 a second", now-reads)
		}
	})
}
