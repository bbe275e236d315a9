package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/postgres/pgtest"
)

// node is one server on the database, as serve runs it: a store, a Service, a
// tailer and an Expirer.
type node struct {
	db     *DB
	svc    *tasks.Service
	tailer *tasks.Tailer
}

func startNode(t *testing.T, dsn string, lease time.Duration) *node {
	t.Helper()
	db := openTest(t, dsn)
	svc := tasks.NewService(db, tasks.WithClaimLease(lease))
	tailer, err := tasks.NewTailer(context.Background(), db, tasks.TailerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	expirer := tasks.NewExpirer(svc, tasks.ExpirerConfig{Listen: tailer.Listen})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { tailer.Run(ctx) })
	wg.Go(func() { expirer.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &node{db: db, svc: svc, tailer: tailer}
}

// TestExpiryByOneNode runs two nodes, each with its Expirer, on one database, and
// claims tasks through both: every lease is expired once, by one of them, within a
// second of running out, with no lock of their own.
func TestExpiryByOneNode(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	const lease, n = 700 * time.Millisecond, 40
	nodes := []*node{startNode(t, dsn, lease), startNode(t, dsn, lease)}
	expiries := make(chan tasks.Record, 4*n)
	stop := nodes[0].tailer.Listen(func(r *tasks.Record) {
		if r.Type == tasks.EventTaskUpdated && r.Source == tasks.SourceSystem {
			expiries <- *r
		}
	})
	defer stop()

	leaseEnds := map[int64]time.Time{}
	for i := range n {
		nd := nodes[i%2]
		task, err := nd.svc.Create(as("alice"), tasks.Update{Title: tasks.Value(fmt.Sprint("task ", i))})
		if err != nil {
			t.Fatal(err)
		}
		claimed, err := nd.svc.Claim(as(fmt.Sprint("agent-", i%3)), tasks.ClaimRequest{TaskID: task.ID})
		if err != nil {
			t.Fatal(err)
		}
		leaseEnds[task.ID] = claimed.LeaseExpiresAt.Time
	}

	seen := map[int64]int{}
	timeout := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case r := <-expiries:
			seen[r.TaskID]++
			var e tasks.Event
			if err := json.Unmarshal(r.Data, &e); err != nil {
				t.Fatal(err)
			}
			if e.Reason != tasks.ReasonLeaseExpired {
				t.Errorf("a change by the system that is no expiry: %s", r.Data)
			}
			if late := e.Time.Sub(leaseEnds[r.TaskID]); late < 0 || late >= time.Second {
				t.Errorf("task %d expired %s after its lease ran out", r.TaskID, late)
			}
		case <-timeout:
			t.Fatalf("%d of %d leases expired within 20 s", len(seen), n)
		}
	}
	// Each once, in the log as the nodes heard it.
	records, err := nodes[1].db.Events(context.Background(), tasks.EventQuery{Sources: []tasks.Source{tasks.SourceSystem}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	inLog := map[int64]int{}
	for _, r := range records {
		inLog[r.TaskID]++
	}
	for id := range leaseEnds {
		if seen[id] != 1 || inLog[id] != 1 {
			t.Errorf("task %d: expired %d times as the tailer heard it, %d in the log; want once", id, seen[id], inLog[id])
		}
		task, err := nodes[1].db.Task(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if task.Status != tasks.StatusTodo || task.Assignee != "" || task.LeaseExpiresAt != nil || task.Version != 3 {
			t.Errorf("task %d after its expiry: %+v", id, task)
		}
	}
}
