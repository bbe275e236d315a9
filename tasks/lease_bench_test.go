package tasks_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

// leasedTasks is how many tasks hold a lease in the benchmarks of expiry.
const leasedTasks = 100_000

// addLeases writes n tasks in_progress whose leases run out at the times that at
// gives, 1,000 to a Write.
func addLeases(b *testing.B, db *sqlite.DB, n int, at func(i int) time.Time) {
	b.Helper()
	now := tasks.NewTime(time.Now())
	for start := 0; start < n; start += 1000 {
		err := db.Write(context.Background(), func(tx tasks.Tx) error {
			for i := start; i < min(start+1000, n); i++ {
				lease := tasks.NewTime(at(i))
				t := &tasks.Task{Title: fmt.Sprint("leased ", i), Status: tasks.StatusInProgress, Priority: tasks.PriorityMedium,
					Assignee: fmt.Sprint("agent-", i%50), Labels: []string{}, DependsOn: []int64{}, Version: 2,
					CreatedAt: now, UpdatedAt: now, LeaseExpiresAt: &lease, LeaseLength: 15 * time.Minute}
				if err := tx.CreateTask(t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func openBenchDB(b *testing.B) *sqlite.DB {
	b.Helper()
	db, err := sqlite.Open(context.Background(), b.TempDir()+"/taskhub.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkExpiryStep is one step of the Expirer with 100,000 leases held, none due:
// the read of the next lease to run out, and the wait until then. ns/op is the CPU a
// step costs; B-held is the heap the Expirer holds, whatever the number of leases
// (its Run adds one goroutine and one timer).
func BenchmarkExpiryStep(b *testing.B) {
	db := openBenchDB(b)
	start := time.Now().Add(time.Hour)
	addLeases(b, db, leasedTasks, func(i int) time.Time { return start.Add(time.Duration(i) * time.Second) })
	svc := tasks.NewService(db)
	ctx := context.Background()
	tasks.NewExpirer(svc, tasks.ExpirerConfig{}).Step(ctx) // prepares the statement

	// What the Expirer holds is what making it allocates: a step allocates only what
	// it drops (B/op).
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e := tasks.NewExpirer(svc, tasks.ExpirerConfig{})
	runtime.ReadMemStats(&after)
	held := after.TotalAlloc - before.TotalAlloc

	for b.Loop() {
		if wait := e.Step(ctx); wait <= 0 {
			b.Fatalf("a step waits %s, with no lease due", wait)
		}
	}
	b.ReportMetric(float64(held), "B-held")
	runtime.KeepAlive(e)
}

// BenchmarkExpire expires 100 leases a step, with 100,000 others held: ns/lease is
// what expiring one costs (its change and event, durable), in a step that expires a
// batch.
func BenchmarkExpire(b *testing.B) {
	db := openBenchDB(b)
	later := time.Now().Add(time.Hour)
	addLeases(b, db, leasedTasks, func(int) time.Time { return later })
	e := tasks.NewExpirer(tasks.NewService(db), tasks.ExpirerConfig{})
	ctx := context.Background()
	const batch = 100
	past := time.Now().Add(-time.Minute)
	for b.Loop() {
		b.StopTimer()
		addLeases(b, db, batch, func(int) time.Time { return past })
		b.StartTimer()
		e.Step(ctx)
	}
	b.StopTimer()
	if next, err := db.NextLease(ctx); err != nil || next == nil || next.Before(later.Add(-time.Second)) {
		b.Fatalf("after the steps the next lease runs out at %v (%v): some were not expired", next, err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/lease")
}
