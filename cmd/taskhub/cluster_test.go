package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taskhub/tasks/postgres/pgtest"

	"github.com/jackc/pgx/v5"
)

// TestCluster runs three `taskhub serve` processes on one PostgreSQL database, a
// writer and a subscriber on each, while one node is killed with -9 and started again
// and the database drops every connection. Every subscriber must see the same events,
// seqs 1 to the log's last one with no gap and no duplicate, and every write a node
// acknowledged among them. Of the killed node's two subscribers one comes back to it,
// the other moves to another node: both resume from their Last-Event-ID.
func TestCluster(t *testing.T) {
	name, dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		nodes[i] = &clusterNode{t: t, args: []string{"--db", dsn, "--addr", "127.0.0.1:0"}, up: make(chan struct{})}
		nodes[i].start()
	}

	type result struct {
		name     string
		events   []clusterEvent
		connects int
		err      error
	}
	results := make(chan result, 4) // one per subscriber, so none waits on a test that failed
	var subs []chan int64           // each subscriber's target: the last seq it must reach
	follow := func(name string, connect func(connects int) *clusterNode) {
		target := make(chan int64, 1)
		subs = append(subs, target)
		go func() {
			events, connects, err := followCluster(ctx, connect, target)
			results <- result{name, events, connects, err}
		}()
	}
	follow("node 0, back to it", func(int) *clusterNode { return nodes[0] })
	follow("node 0, then node 1", func(connects int) *clusterNode { return nodes[min(connects, 1)] })
	follow("node 1", func(int) *clusterNode { return nodes[1] })
	follow("node 2", func(int) *clusterNode { return nodes[2] })

	const each = 100 // writes per writer
	acked := make(chan string, 3*each)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { writeCluster(ctx, n, i, each, acked) })
	}
	var acks []string
	waitAcks := func(count int) {
		t.Helper()
		for len(acks) < count {
			select {
			case a := <-acked:
				acks = append(acks, a)
			case <-ctx.Done():
				t.Fatalf("%d writes acknowledged, want %d before %v", len(acks), count, ctx.Err())
			}
		}
	}

	waitAcks(3 * each / 4)
	nodes[0].kill()
	nodes[0].start()
	waitAcks(3 * each / 2)
	// What stands in for a restart of PostgreSQL: every connection to the test's
	// database is cut, the nodes' listeners and pools alike. A real restart would
	// disturb the other packages' tests that share the server.
	if cut := terminateBackends(t, name); cut < len(nodes) {
		t.Fatalf("%d connections cut, want at least one listener per node", cut)
	}
	wg.Wait()
	close(acked)
	for a := range acked {
		acks = append(acks, a)
	}

	last := lastEventSeq(t, nodes[1].url(ctx))
	for _, target := range subs {
		target <- last
	}
	var first *result
	for range subs {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			t.Fatalf("the subscribers did not reach seq %d: %v", last, ctx.Err())
		}
		if r.err != nil {
			t.Fatalf("subscriber of %s: %v", r.name, r.err)
		}
		if strings.HasPrefix(r.name, "node 0") && r.connects < 2 {
			t.Errorf("subscriber of %s connected %d times: it never lost node 0", r.name, r.connects)
		}
		for i, e := range r.events {
			if e.Seq != int64(i)+1 {
				t.Fatalf("subscriber of %s: event %d has seq %d, want %d: a gap or a duplicate", r.name, i, e.Seq, i+1)
			}
		}
		if int64(len(r.events)) != last {
			t.Fatalf("subscriber of %s got seqs 1 to %d, want 1 to %d", r.name, len(r.events), last)
		}
		if first == nil {
			first = &r
			continue
		}
		for i, e := range r.events {
			if e != first.events[i] {
				t.Fatalf("seq %d: %s saw %+v, %s saw %+v", e.Seq, r.name, e, first.name, first.events[i])
			}
		}
	}

	written := map[string]clusterEvent{}
	for _, e := range first.events {
		if before, ok := written[e.Description]; ok {
			t.Errorf("the write %q has two events: %+v and %+v", e.Description, before, e)
		}
		written[e.Description] = e
	}
	for _, a := range acks {
		if _, ok := written[a]; !ok {
			t.Errorf("the acknowledged write %q has no event", a)
		}
	}
	if len(acks) < 3*each/2 || int64(len(written)) != last {
		t.Errorf("%d writes acknowledged, %d events in the log", len(acks), last)
	}
	t.Logf("%d writes of %d acknowledged; %d events", len(acks), 3*each, last)
}

// clusterNode is one `taskhub serve` process of TestCluster. Each start listens on a
// new port; while the node is down, url waits for the next start.
type clusterNode struct {
	t    *testing.T
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	base string
	up   chan struct{} // closed while the node runs
}

func (n *clusterNode) start() {
	cmd, url, _ := startServe(n.t, nil, n.args...)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmd, n.base = cmd, url
	close(n.up)
}

// kill ends the process with SIGKILL, first marking the node down.
func (n *clusterNode) kill() {
	n.mu.Lock()
	n.up = make(chan struct{})
	cmd := n.cmd
	n.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		n.t.Fatal(err)
	}
	cmd.Wait()
}

// url returns the node's URL once it runs, or "" when ctx ends first.
func (n *clusterNode) url(ctx context.Context) string {
	n.mu.Lock()
	up := n.up
	n.mu.Unlock()
	select {
	case <-up:
	case <-ctx.Done():
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.base
}

// writeCluster makes count writes on node n, one at a time: a create, then updates of
// that task, then another create, each naming itself in the description. It sends the
// writes the node acknowledged to acked. A write the node fails, or that is lost with
// the node, counts as made; the next one waits for the node to be up.
func writeCluster(ctx context.Context, n *clusterNode, writer, count int, acked chan<- string) {
	client := &http.Client{Timeout: within}
	var id int64
	for i := range count {
		url := n.url(ctx)
		if url == "" {
			return
		}
		desc := fmt.Sprintf("writer %d, write %d", writer, i)
		method, path := http.MethodPatch, fmt.Sprintf("/api/tasks/%d", id)
		if id == 0 || i%4 == 0 {
			method, path = http.MethodPost, "/api/tasks"
		}
		body := fmt.Sprintf(`{"title":%q,"description":%q}`, desc, desc)
		req, err := http.NewRequestWithContext(ctx, method, url+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		var task struct{ ID int64 }
		err = json.NewDecoder(resp.Body).Decode(&task)
		resp.Body.Close()
		if err != nil || resp.StatusCode/100 != 2 {
			continue
		}
		if method == http.MethodPost {
			id = task.ID
		}
		acked <- desc
	}
}

// clusterEvent is what TestCluster compares of an event.
type clusterEvent struct {
	Seq         int64
	Type        string
	TaskID      int64
	Version     int64
	Description string
}

// followCluster reads the stream of the node connect names, from the start of the
// log, and on the stream's end reconnects to the node connect names then, with the
// last id it got. It returns the events once it has the seq target sends, and how
// many times it connected.
func followCluster(ctx context.Context, connect func(connects int) *clusterNode, target <-chan int64) ([]clusterEvent, int, error) {
	var got []clusterEvent
	var last int64
	end := int64(-1)
	for connects := 0; ; connects++ {
		url := connect(connects).url(ctx)
		if url == "" {
			return got, connects, ctx.Err()
		}
		s, err := dialStream(ctx, url+"/events/stream", last)
		if err != nil {
			return got, connects, err
		}
		take := func(m sseMsg) error {
			if m.Comment != "" {
				return nil
			}
			var e struct {
				Seq    int64  `json:"seq"`
				Type   string `json:"type"`
				TaskID int64  `json:"task_id"`
				Task   struct {
					Version     int64  `json:"version"`
					Description string `json:"description"`
				} `json:"task"`
			}
			if err := json.Unmarshal([]byte(m.Data), &e); err != nil || m.Event != e.Type || m.ID != strconv.FormatInt(e.Seq, 10) {
				return fmt.Errorf("event %q id %q data %q from %s: %v", m.Event, m.ID, m.Data, url, err)
			}
			if e.Seq != last+1 {
				return fmt.Errorf("seq %d after %d from %s (connection %d)", e.Seq, last, url, connects+1)
			}
			got = append(got, clusterEvent{e.Seq, e.Type, e.TaskID, e.Task.Version, e.Task.Description})
			last = e.Seq
			return nil
		}
	read:
		for end < 0 || last < end {
			select {
			case m := <-s.msgs:
				err = take(m)
			case <-s.done: // what the stream carried is all in msgs now
				for err == nil && len(s.msgs) > 0 {
					err = take(<-s.msgs)
				}
				break read
			case end = <-target:
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				s.close()
				return got, connects + 1, err
			}
		}
		s.close()
		if end >= 0 && last >= end {
			return got, connects + 1, nil
		}
	}
}

// dialStream opens a stream at url from after the event lastID, as openStream does,
// but reports a failure instead of failing the test: it runs off the test's goroutine.
func dialStream(ctx context.Context, url string, lastID int64) (*sseStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open the stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMsg, 4096), done: make(chan struct{})}
	go s.read()
	return s, nil
}

// terminateBackends cuts every connection to the database name, and says how many.
func terminateBackends(t *testing.T, name string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var cut int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name).Scan(&cut)
	if err != nil {
		t.Fatalf("cut the connections: %v", err)
	}
	return cut
}
