package webhooks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
	"taskhub/webhooks"
)

// Shape of BenchmarkWebhooks.
const (
	benchEndpoints = 10
	benchFor       = 10 * time.Second
	benchWriters   = 16 // durable writers as fast as they go, beside the paced events
)

// benchRate is the events per second to the endpoints, 1,000 unless told: a lower
// rate shows what the endpoints keep up with.
var benchRate = flag.Int("webhooks.rate", 1000, "events per second to the endpoints in BenchmarkWebhooks")

// BenchmarkWebhooks measures, on one SQLite file, 10 endpoints on loopback receivers
// getting 1,000 events/s (or -webhooks.rate) for 10 s: every event must reach each,
// and it reports the p99 from each event's commit (its create returning) to its
// request reaching a receiver. Beside that load, writers in another project make durable changes as fast
// as they can, once without endpoints and once with them; it reports their
// throughput both ways and the ratio, the events committed for the endpoints per
// second (the pacing falls short when the machine is busy) and how many reached each
// endpoint per second while the load ran, to hold against BenchmarkWebhookWriteFloor.
// Run it alone: go test -run '^$' -bench 'Webhooks$' -benchtime 1x ./webhooks/
func BenchmarkWebhooks(b *testing.B) {
	for range b.N {
		without := benchRun(b, 0)
		with := benchRun(b, benchEndpoints)
		b.ReportMetric(without.writes, "writes/s-alone")
		b.ReportMetric(with.writes, "writes/s-with-endpoints")
		b.ReportMetric(with.writes/without.writes, "ratio")
		b.ReportMetric(with.sent, "events/s-sent")
		b.ReportMetric(with.delivered, "events/s-per-endpoint")
		b.ReportMetric(float64(with.p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(with.p99.Microseconds())/1000, "p99-ms")
	}
}

// benchResult is what one run of BenchmarkWebhooks measured.
type benchResult struct {
	writes    float64 // the other writers' changes per second
	sent      float64 // the events for the endpoints committed per second
	delivered float64 // the events that reached an endpoint per second while the load ran, on average
	p50, p99  time.Duration
}

// benchRun runs the load with endpoints receivers.
func benchRun(b *testing.B, endpoints int) benchResult {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "taskhub.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc := tasks.NewService(db)
	hooks := webhooks.NewService(webhooks.Config{Store: db, Vocabulary: api.StreamVocabulary(), AllowPrivate: true})
	ctx, cancel := context.WithCancel(context.Background())
	tailer, err := tasks.NewTailer(ctx, db, tasks.TailerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	engine, err := webhooks.NewEngine(webhooks.EngineConfig{Store: db, Client: webhooks.NewClient(true), Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	tailer.Listen(engine.Listen)
	var bg sync.WaitGroup
	bg.Go(func() { tailer.Run(ctx) })
	bg.Go(func() { engine.Run(ctx) })
	defer func() { cancel(); bg.Wait() }()

	type arrival struct {
		seq int64
		at  time.Time
	}
	var mu sync.Mutex
	arrivals := make([][]arrival, endpoints)
	for i := range endpoints {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			at := time.Now()
			s, _, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("webhook-id"), "msg_"), "_")
			seq, _ := strconv.ParseInt(s, 10, 64)
			mu.Lock()
			arrivals[i] = append(arrivals[i], arrival{seq, at})
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		req := webhooks.CreateRequest{URL: srv.URL + "/hook", Filters: webhooks.Filter{Projects: []string{"hooked"}}}
		if _, err := hooks.Create(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the engine takes its leases
	actx := tasks.WithActor(ctx, tasks.Actor{Source: tasks.SourceREST, Name: "bench"})

	var committed sync.Map // seq → time its create returned
	var sent []int64
	stopWriters := startWriters(actx, b, svc)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*benchRate))
	var paced sync.WaitGroup
	for time.Since(start) < benchFor {
		<-tick.C
		paced.Go(func() {
			var seq int64
			err := db.Write(actx, func(tx tasks.Tx) error {
				now := tasks.NewTime(time.Now())
				t := &tasks.Task{Title: "hooked", Status: tasks.StatusTodo, Priority: tasks.PriorityMedium, Project: "hooked",
					Labels: []string{}, DependsOn: []int64{}, Version: 1, CreatedAt: now, UpdatedAt: now}
				if err := tx.CreateTask(t); err != nil {
					return err
				}
				e := &tasks.Event{Type: tasks.EventTaskCreated, TaskID: t.ID, Source: tasks.SourceREST, Actor: "bench", Time: now, Task: t}
				if err := tx.AppendEvent(e); err != nil {
					return err
				}
				seq = e.Seq
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
			committed.Store(seq, time.Now())
			mu.Lock()
			sent = append(sent, seq)
			mu.Unlock()
		})
	}
	tick.Stop()
	elapsed := time.Since(start)
	writes := stopWriters()
	paced.Wait()
	res := benchResult{writes: float64(writes) / elapsed.Seconds(), sent: float64(len(sent)) / elapsed.Seconds()}
	if endpoints == 0 {
		return res
	}

	end := time.Now()
	mu.Lock()
	for _, got := range arrivals {
		res.delivered += float64(len(got))
	}
	mu.Unlock()
	res.delivered /= float64(endpoints) * end.Sub(start).Seconds()
	deadline := end.Add(2 * time.Minute)
	for {
		mu.Lock()
		done := true
		for i := range arrivals {
			done = done && len(arrivals[i]) >= len(sent)
		}
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			counts := make([]int, len(arrivals))
			for i := range arrivals {
				counts[i] = len(arrivals[i])
			}
			mu.Unlock()
			b.Fatalf("not every event reached every endpoint within 2 minutes of the end: %d sent, received %v", len(sent), counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(sent)
	var lat []time.Duration
	for i, got := range arrivals {
		var seqs []int64
		for _, a := range got {
			seqs = append(seqs, a.seq)
			c, _ := committed.Load(a.seq)
			lat = append(lat, max(a.at.Sub(c.(time.Time)), 0))
		}
		if !slices.Equal(seqs, sent) {
			b.Fatalf("endpoint %d got %d events, want the %d sent, in order, once each", i, len(seqs), len(sent))
		}
	}
	slices.Sort(lat)
	b.Logf("%d events to each of %d endpoints in %s, the last %s after the end; other writers %.0f/s",
		len(sent), endpoints, elapsed, time.Since(end).Round(100*time.Millisecond), res.writes)
	res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return res
}

// startWriters starts benchWriters writers that make durable changes, in a project no
// endpoint matches, as fast as they can, until the returned stop, which says how many
// they made.
func startWriters(ctx context.Context, b *testing.B, svc *tasks.Service) (stop func() int64) {
	var writes atomic.Int64
	done := make(chan struct{})
	var load sync.WaitGroup
	for range benchWriters {
		load.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("load"), Project: tasks.Value("other")}); err != nil {
					b.Error(err)
					return
				}
				writes.Add(1)
			}
		})
	}
	return func() int64 {
		close(done)
		load.Wait()
		return writes.Load()
	}
}

// BenchmarkWebhookWriteFloor measures what bounds BenchmarkWebhooks on one SQLite
// file, however cheap the requests: the rate of the writer's transactions when each of
// benchEndpoints callers makes one at a time, as an endpoint's worker does after each
// answer, alone and beside the benchmark's writers. "state" stores an endpoint's state
// (one small UPDATE), "attempt" also records the attempt, as a delivery's outcome
// does. An endpoint gets at most one event per transaction of its caller.
func BenchmarkWebhookWriteFloor(b *testing.B) {
	for _, write := range []string{"state", "attempt"} {
		for _, beside := range []bool{false, true} {
			name := write + "/alone"
			if beside {
				name = write + "/beside-writers"
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					total, writes := benchFloor(b, write == "attempt", beside)
					b.ReportMetric(total, "tx/s")
					b.ReportMetric(total/benchEndpoints, "tx/s-per-caller")
					if beside {
						b.ReportMetric(writes, "writes/s")
					}
				}
			})
		}
	}
}

// floorFor is how long each case of BenchmarkWebhookWriteFloor runs.
const floorFor = 5 * time.Second

// benchFloor runs the callers of BenchmarkWebhookWriteFloor for floorFor, recording
// attempts or not, beside the writers or not, and returns the callers' transactions
// per second and the writers' changes per second.
func benchFloor(b *testing.B, attempt, beside bool) (float64, float64) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "taskhub.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: "bench"})
	ids := benchEndpointIDs(ctx, b, db)
	return runCallers(ctx, b, db, beside, func(i int, seq int64) bool {
		var d *tasks.WebhookDelivery
		if attempt {
			d = answered(seq, time.Now())
		}
		return storeState(ctx, b, db, ids[i], seq, d)
	})
}

// BenchmarkWebhookRequestFloor measures the other half of what bounds an endpoint in
// BenchmarkWebhooks, and both halves together: the rate of requests when each of
// benchEndpoints callers sends one at a time to a receiver of its own, signed as a
// delivery is and with an event's body, alone and beside the benchmark's writers.
// "requests" stores nothing between them: what the requests alone take from the
// writers. "requests+attempt" stores each answer's outcome, as
// BenchmarkWebhookWriteFloor's "attempt" does, before the next request: an engine with
// no work of its own, the most an endpoint can get.
func BenchmarkWebhookRequestFloor(b *testing.B) {
	for _, store := range []bool{false, true} {
		for _, beside := range []bool{false, true} {
			name := "requests"
			if store {
				name += "+attempt"
			}
			if beside {
				name += "/beside-writers"
			} else {
				name += "/alone"
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					total, writes := benchRequests(b, store, beside)
					b.ReportMetric(total, "requests/s")
					b.ReportMetric(total/benchEndpoints, "requests/s-per-caller")
					if beside {
						b.ReportMetric(writes, "writes/s")
					}
				}
			})
		}
	}
}

// benchRequests runs the callers of BenchmarkWebhookRequestFloor for floorFor, storing
// each outcome or not, beside the writers or not, and returns the callers' requests
// per second and the writers' changes per second.
func benchRequests(b *testing.B, store, beside bool) (float64, float64) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "taskhub.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: "bench"})
	task, err := tasks.NewService(db).Create(ctx, tasks.Update{Title: tasks.Value("hooked"), Project: tasks.Value("hooked")})
	if err != nil {
		b.Fatal(err)
	}
	records, err := db.Events(ctx, tasks.EventQuery{Limit: 1})
	if err != nil || len(records) != 1 || records[0].TaskID != task.ID {
		b.Fatalf("the event of the create: %v, %v", records, err)
	}
	body := records[0].Data
	secret := []byte("a secret of the benchmark's own")
	ids := benchEndpointIDs(ctx, b, db)
	urls := make([]string, len(ids))
	for i := range urls {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		urls[i] = srv.URL + "/hook"
	}
	client := webhooks.NewClient(true)
	return runCallers(ctx, b, db, beside, func(i int, seq int64) bool {
		sent := time.Now()
		id := webhooks.MessageID("bench", seq)
		ts := strconv.FormatInt(sent.Unix(), 10)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, urls[i], bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Errorf("the receiver answered %s", resp.Status)
			return false
		}
		return !store || storeState(ctx, b, db, ids[i], seq, answered(seq, sent))
	})
}

// runCallers runs benchEndpoints callers, the ith calling call(i, seq) with seq 1, 2,
// … one call after another until floorFor has passed or a call fails, beside the
// writers or not. It returns the calls per second, and the writers' changes per
// second.
func runCallers(ctx context.Context, b *testing.B, db *sqlite.DB, beside bool, call func(i int, seq int64) bool) (float64, float64) {
	stopWriters := func() int64 { return 0 }
	if beside {
		stopWriters = startWriters(ctx, b, tasks.NewService(db))
	}
	var calls atomic.Int64
	var callers sync.WaitGroup
	start := time.Now()
	for i := range benchEndpoints {
		callers.Go(func() {
			for seq := int64(1); time.Since(start) < floorFor && call(i, seq); seq++ {
				calls.Add(1)
			}
		})
	}
	callers.Wait()
	elapsed := time.Since(start)
	writes := stopWriters()
	return float64(calls.Load()) / elapsed.Seconds(), float64(writes) / elapsed.Seconds()
}

// benchEndpointIDs creates benchEndpoints endpoints that nothing delivers and returns
// their ids.
func benchEndpointIDs(ctx context.Context, b *testing.B, db *sqlite.DB) []int64 {
	hooks := webhooks.NewService(webhooks.Config{Store: db, Vocabulary: api.StreamVocabulary(), AllowPrivate: true})
	ids := make([]int64, benchEndpoints)
	for i := range ids {
		e, err := hooks.Create(ctx, webhooks.CreateRequest{URL: "http://127.0.0.1:1/hook"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = e.ID
	}
	return ids
}

// answered is the attempt at seq made at sent and answered 204 now.
func answered(seq int64, sent time.Time) *tasks.WebhookDelivery {
	return &tasks.WebhookDelivery{Seq: seq, Attempt: 1, Status: http.StatusNoContent, Time: tasks.NewTime(sent), Duration: time.Since(sent)}
}

// storeState stores endpoint id's cursor at seq with attempt d (nil: none), as a
// worker does after a 2xx, and reports whether it was stored.
func storeState(ctx context.Context, b *testing.B, db *sqlite.DB, id, seq int64, d *tasks.WebhookDelivery) bool {
	var applied bool
	err := db.WriteWebhooks(ctx, func(tx tasks.WebhookTx) (err error) {
		applied, err = tx.SetWebhookState(id, 1, tasks.WebhookState{Cursor: seq, LastStatus: http.StatusNoContent}, d)
		return err
	})
	switch {
	case err != nil:
		b.Error(err)
	case !applied:
		b.Errorf("the state of endpoint %d was not stored: not at revision 1", id)
	}
	return err == nil && applied
}
