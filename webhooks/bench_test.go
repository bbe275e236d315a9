package webhooks_test

import (
	"context"
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
	benchRate      = 1000 // events per second to the endpoints
	benchFor       = 10 * time.Second
	benchWriters   = 16 // durable writers as fast as they go, beside the paced events
)

// BenchmarkWebhooks measures, on one SQLite file, 10 endpoints on loopback receivers
// getting 1,000 events/s for 10 s: every event must reach each, and it reports the
// p99 from each event's commit (its create returning) to its request reaching a
// receiver. Beside that load, writers in another project make durable changes as fast
// as they can, once without endpoints and once with them; it reports their
// throughput both ways and the ratio. Run it alone: go test -run '^$' -bench Webhooks
// -benchtime 1x ./webhooks/
func BenchmarkWebhooks(b *testing.B) {
	for range b.N {
		without, _, _ := benchRun(b, 0)
		with, p99, p50 := benchRun(b, benchEndpoints)
		b.ReportMetric(without, "writes/s-alone")
		b.ReportMetric(with, "writes/s-with-endpoints")
		b.ReportMetric(with/without, "ratio")
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	}
}

// benchRun runs the load with endpoints receivers, and returns the other writers'
// changes per second and the latencies' p99 and p50.
func benchRun(b *testing.B, endpoints int) (float64, time.Duration, time.Duration) {
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
	var writes atomic.Int64
	stop := make(chan struct{})
	var load sync.WaitGroup
	for range benchWriters {
		load.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := svc.Create(actx, tasks.Update{Title: tasks.Value("load"), Project: tasks.Value("other")}); err != nil {
					b.Error(err)
					return
				}
				writes.Add(1)
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(time.Second / benchRate)
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
	close(stop)
	load.Wait()
	paced.Wait()
	rate := float64(writes.Load()) / elapsed.Seconds()
	if endpoints == 0 {
		return rate, 0, 0
	}

	end := time.Now()
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
		len(sent), endpoints, elapsed, time.Since(end).Round(100*time.Millisecond), rate)
	return rate, lat[len(lat)*99/100], lat[len(lat)/2]
}
