package main

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"taskhub/tasks/postgres/pgtest"
)

// TestPostgresNodes runs two servers on one PostgreSQL database: a change made
// through one reaches the other's stream, with the same seq; each says which node it
// is; and /healthz says 503 while the database is away, 200 once it is back.
func TestPostgresNodes(t *testing.T) {
	name, dsn := pgtest.NewDatabase(t)
	nodes := make([]*Server, 2)
	for i := range nodes {
		cfg := testConfig(t, DefaultConfig())
		cfg.DB = dsn
		nodes[i] = runServer(t, cfg)
	}
	a, b := nodes[0].URL(), nodes[1].URL()
	stream := openStream(t, b+"/events/stream", nil)
	id := createTask(t, a, `{"title":"made on a"}`)
	m := stream.nextEvent(t, within)
	if got := m.events(t)[0]; got.Type != "task_created" || got.TaskID != id {
		t.Fatalf("b's stream got %+v, want the task_created of task %d made on a", m, id)
	}
	seq, _ := strconv.ParseInt(m.ID, 10, 64)
	for _, url := range []string{a, b} {
		var snap struct {
			Node struct {
				ID        string `json:"id"`
				Store     string `json:"store"`
				TailerSeq int64  `json:"tailer_seq"`
			} `json:"node"`
		}
		call(t, http.MethodGet, url+"/events/debug", "", http.StatusOK, &snap)
		if snap.Node.Store != "postgres" || snap.Node.ID == "" || snap.Node.TailerSeq < seq-1 {
			t.Errorf("%s/events/debug node %+v, want store postgres and a tailer at %d or about", url, snap.Node, seq)
		}
	}

	call(t, http.MethodGet, a+"/healthz", "", http.StatusOK, nil)
	// The database goes away: no new connection, and the nodes' ones cut.
	admin := pgtest.ServerDSN(t)
	pgtest.Admin(t, admin, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	pgtest.Admin(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	waitStatus(t, a+"/healthz", http.StatusServiceUnavailable)
	pgtest.Admin(t, admin, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	waitStatus(t, a+"/healthz", http.StatusOK)
	// And what was missed meanwhile is not: a change made now reaches b's stream.
	id = createTask(t, a, `{"title":"after the outage"}`)
	if got := stream.nextEvent(t, within).events(t)[0]; got.TaskID != id {
		t.Fatalf("after the outage b's stream got task %d, want %d", got.TaskID, id)
	}
}

// waitStatus asks url until it answers want, failing after within.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: not %d within %s (last: %v)", url, want, within, err)
		}
		time.Sleep(50 * time.Millisecond) // the listener reconnects with backoff: nothing to wait on
	}
}
