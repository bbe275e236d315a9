package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"
	"taskhub/tasks/postgres"
	"taskhub/tasks/postgres/pgtest"
	"taskhub/webhooks"
)

var errDead = errors.New("this node is dead")

// dyingStore is a node's store that stops answering once its node is dead: it
// can neither renew a lease nor store a delivery.
type dyingStore struct {
	*postgres.DB
	dead *atomic.Bool
}

func (s dyingStore) AcquireWebhookLease(ctx context.Context, id int64, owner string, ttl time.Duration) (bool, error) {
	if s.dead.Load() {
		return false, errDead
	}
	return s.DB.AcquireWebhookLease(ctx, id, owner, ttl)
}

func (s dyingStore) ReleaseWebhookLease(ctx context.Context, id int64, owner string) error {
	if s.dead.Load() {
		return errDead
	}
	return s.DB.ReleaseWebhookLease(ctx, id, owner)
}

func (s dyingStore) WriteWebhooks(ctx context.Context, fn func(tasks.WebhookTx) error) error {
	if s.dead.Load() {
		return errDead
	}
	return s.DB.WriteWebhooks(ctx, fn)
}

// nodeTransport names the node in each request, and sends nothing once it is dead.
type nodeTransport struct {
	name string
	dead *atomic.Bool
	next http.RoundTripper
}

func (t nodeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.dead.Load() {
		return nil, errDead
	}
	r = r.Clone(r.Context())
	r.Header.Set("X-Node", t.name)
	return t.next.RoundTrip(r)
}

// TestNodesOneDeliversEach runs two nodes' engines on one PostgreSQL database: one at
// a time delivers the endpoint, never two requests at once, and when the one that
// delivers dies (it can reach neither the database nor the receiver), the other takes
// over once its lease has run out.
func TestNodesOneDeliversEach(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	const ttl = time.Second
	type node struct {
		name string
		dead atomic.Bool
		db   *postgres.DB
	}
	nodes := []*node{{name: "a"}, {name: "b"}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, n := range nodes {
		db, err := postgres.Open(context.Background(), dsn, postgres.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		n.db = db
		store := dyingStore{db, &n.dead}
		client := webhooks.NewClient(true)
		client.Transport = nodeTransport{n.name, &n.dead, client.Transport}
		tailer, err := tasks.NewTailer(ctx, db, tasks.TailerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		engine, err := webhooks.NewEngine(webhooks.EngineConfig{Store: store, Client: client, Node: n.name, LeaseTTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		tailer.Listen(engine.Listen)
		wg.Go(func() { tailer.Run(ctx) })
		wg.Go(func() { engine.Run(ctx) })
	}
	h := &harness{tasks: tasks.NewService(nodes[0].db),
		hooks: webhooks.NewService(webhooks.Config{Store: nodes[0].db, Vocabulary: api.StreamVocabulary(), AllowPrivate: true})}
	r := newReceiver(t)
	var inFlight atomic.Int32
	byNode := map[string]int{}
	r.answer = func(_ int, w http.ResponseWriter) bool {
		if inFlight.Add(1) > 1 {
			t.Error("two requests to one endpoint at once")
		}
		time.Sleep(2 * time.Millisecond) // a receiver's work, for the requests to overlap if they could
		inFlight.Add(-1)
		return false
	}
	h.create(t, r, "")
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := h.tasks.Create(context.Background(), tasks.Update{Title: tasks.Value(fmt.Sprint("task ", i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 30)
	msgs := r.waitFor(31, 15*time.Second)
	for _, m := range msgs {
		byNode[m.header.Get("X-Node")]++
	}
	if len(byNode) != 1 {
		t.Fatalf("requests by node %v, want all from the one holding the lease", byNode)
	}
	var holder *node
	for _, n := range nodes {
		if byNode[n.name] > 0 {
			holder = n
		}
	}
	holder.dead.Store(true)
	died := time.Now()
	write(30, 40)
	msgs = r.waitFor(41, 15*time.Second)
	took := time.Since(died)
	for _, m := range msgs[31:] {
		if m.header.Get("X-Node") == holder.name {
			t.Errorf("a request from node %s after it died", holder.name)
		}
	}
	if took > ttl+3*time.Second {
		t.Errorf("the other node took over after %s, want within the lease's %s and a renewal or two", took, ttl)
	}
	t.Logf("node %s delivered %d; after it died, the other took over within %s", holder.name, byNode[holder.name], took)
}
