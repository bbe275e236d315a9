package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/postgres/pgtest"
)

func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestWakeUpFromAnotherNode: a commit by another store on the same database, which
// this one cannot see by itself, wakes this one's readers.
func TestWakeUpFromAnotherNode(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	wake := a.Committed()
	drain(wake)
	create(t, tasks.NewService(b))
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after another node's commit")
	}
}

// awaitListening waits until db's listener is down (want false) or listening again
// (want true).
func awaitListening(t *testing.T, db *DB, want bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		changed, err := db.listen.get()
		if (err == nil) == want {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("the listener did not get to listening=%v: %v", want, err)
		}
	}
}

// TestListenerReconnects has the server end the listeners' connections and refuse new
// ones while another node commits: the node is unhealthy meanwhile, and once it
// listens again its tailer reads what it missed, with no poll to help it.
func TestListenerReconnects(t *testing.T) {
	name, dsn := pgtest.NewDatabase(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	ctx := context.Background()
	writer := tasks.NewService(b)
	create(t, writer) // so b has a connection for its writes while new ones are refused

	tailer, err := tasks.NewTailer(ctx, a, tasks.TailerConfig{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan int64, 10)
	tailer.Listen(func(r *tasks.Record) { seen <- r.Seq })
	tctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { tailer.Run(tctx) })
	defer wg.Wait()
	defer cancel()

	server := pgtest.ServerDSN(t)
	pgtest.Admin(t, server, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	pgtest.Admin(t, server, "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN "+channel+"'", name)
	awaitListening(t, a, false)
	if err := a.Ping(ctx); err == nil {
		t.Error("Ping succeeds while the node cannot listen")
	}
	const n = 3
	for range n {
		create(t, writer)
	}
	pgtest.Admin(t, server, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	awaitListening(t, a, true)
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping once listening again: %v", err)
	}
	for want := int64(2); want <= 1+n; want++ {
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("the tailer read seq %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the tailer missed seq %d, committed while its node was not listening", want)
		}
	}
}
