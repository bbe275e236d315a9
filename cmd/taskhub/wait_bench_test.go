package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// waitBench is how many calls wait at once, each for a change to its own task, and
// how many clients make the changes.
const (
	waitBench        = 1000
	waitBenchWriters = 8
)

// BenchmarkWaitREST: 1,000 long polls (GET /api/events?task_id=…&wait=60s) wait at
// once on a `taskhub serve` process of their own, each woken by a change to its own
// task, made by 8 clients as fast as the server takes them. It reports the latency
// from each change's PATCH being answered (its commit acknowledged) to its long poll
// being answered (and its p99 from the PATCH being sent), and the server's heap,
// goroutine stacks and goroutines per waiting call, read from its /metrics (the heap
// counts what the calls' requests left for the collector too). Run it with
// -benchtime 1x.
func BenchmarkWaitREST(b *testing.B) {
	benchWait(b, func(url string, after, task int64) (waiter, error) {
		return func() (int64, error) {
			resp, err := http.Get(fmt.Sprintf("%s/api/events?after=%d&task_id=%d&wait=60s", url, after, task))
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			var page struct {
				Events []struct {
					TaskID int64 `json:"task_id"`
				} `json:"events"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Events) != 1 {
				return 0, fmt.Errorf("long poll: %d, %d events, %v", resp.StatusCode, len(page.Events), err)
			}
			return page.Events[0].TaskID, nil
		}, nil
	})
}

// BenchmarkWaitMCP is BenchmarkWaitREST with wait_for_events calls over Streamable
// HTTP, 50 at once in each of 20 MCP sessions.
func BenchmarkWaitMCP(b *testing.B) {
	const perSession = 50
	var (
		mu       sync.Mutex
		sessions []*client.Client
	)
	b.Cleanup(func() {
		for _, c := range sessions {
			c.Close()
		}
	})
	benchWait(b, func(url string, after, task int64) (waiter, error) {
		mu.Lock()
		defer mu.Unlock()
		if n := int(task-1) / perSession; n == len(sessions) {
			tr, err := transport.NewStreamableHTTP(url + "/mcp")
			if err != nil {
				return nil, err
			}
			c := client.NewClient(tr)
			if err := c.Start(context.Background()); err != nil {
				return nil, err
			}
			req := mcp.InitializeRequest{}
			req.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
			if _, err := c.Initialize(context.Background(), req); err != nil {
				return nil, err
			}
			sessions = append(sessions, c)
		}
		c := sessions[int(task-1)/perSession]
		return func() (int64, error) {
			req := mcp.CallToolRequest{}
			req.Params.Name = "wait_for_events"
			req.Params.Arguments = map[string]any{"after": after, "task_id": task, "timeout_seconds": 60}
			res, err := c.CallTool(context.Background(), req)
			if err != nil {
				return 0, err
			}
			b, _ := json.Marshal(res.StructuredContent)
			var out struct {
				Events []struct {
					TaskID int64 `json:"task_id"`
				} `json:"events"`
			}
			if err := json.Unmarshal(b, &out); err != nil || res.IsError || len(out.Events) != 1 {
				return 0, fmt.Errorf("wait_for_events: %s %v", b, err)
			}
			return out.Events[0].TaskID, nil
		}, nil
	})
}

// waiter waits for a change to its task and returns the task of the event it got.
type waiter func() (int64, error)

// benchWait runs the benchmark of a kind of waiting call: prepare makes the call
// that waits for task's change after seq after on the server at url.
func benchWait(b *testing.B, prepare func(url string, after, task int64) (waiter, error)) {
	_, url, _ := startServe(b, nil, "--addr", "127.0.0.1:0", "--db", filepath.Join(b.TempDir(), "taskhub.db"),
		"--max-waits-per-token", "2000", "--log-level", "warn")
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = waitBench
	writer := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: waitBenchWriters}}
	parallel(b, waitBenchWriters, waitBench, func(i int) error {
		resp, err := writer.Post(url+"/api/tasks", "application/json", strings.NewReader(fmt.Sprintf(`{"title":"task %d"}`, i+1)))
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	after := lastSeq(b, writer, url)
	var p50s, p99s, sent99s, heaps, stacks, goroutines []float64
	for b.Loop() {
		waiters := make([]waiter, waitBench)
		for i := range waiters {
			w, err := prepare(url, after, int64(i+1))
			if err != nil {
				b.Fatal(err)
			}
			waiters[i] = w
		}
		base := serverMetrics(b, url)
		returned := make([]time.Time, waitBench)
		var wg sync.WaitGroup
		errs := make(chan error, waitBench)
		for i, w := range waiters {
			wg.Go(func() {
				task, err := w()
				returned[i] = time.Now()
				if err == nil && task != int64(i+1) {
					err = fmt.Errorf("the call for task %d got task %d's event", i+1, task)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		for serverMetrics(b, url)["taskhub_waiting_calls"] < waitBench {
			time.Sleep(10 * time.Millisecond) // the server's gauge is read over HTTP
		}
		full := serverMetrics(b, url)
		heaps = append(heaps, (full["go_memstats_heap_inuse_bytes"]-base["go_memstats_heap_inuse_bytes"])/waitBench)
		stacks = append(stacks, (full["go_memstats_stack_inuse_bytes"]-base["go_memstats_stack_inuse_bytes"])/waitBench)
		goroutines = append(goroutines, (full["go_goroutines"]-base["go_goroutines"])/waitBench)

		sent, answered := make([]time.Time, waitBench), make([]time.Time, waitBench)
		parallel(b, waitBenchWriters, waitBench, func(i int) error {
			req, _ := http.NewRequest(http.MethodPatch, fmt.Sprintf("%s/api/tasks/%d", url, i+1), strings.NewReader(fmt.Sprintf(`{"description":"round at seq %d"}`, after)))
			req.Header.Set("Content-Type", "application/merge-patch+json")
			sent[i] = time.Now()
			resp, err := writer.Do(req)
			answered[i] = time.Now()
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return err
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		fromAnswer, fromSent := make([]time.Duration, waitBench), make([]time.Duration, waitBench)
		for i := range returned {
			fromAnswer[i] = max(0, returned[i].Sub(answered[i]))
			fromSent[i] = returned[i].Sub(sent[i])
		}
		slices.Sort(fromAnswer)
		slices.Sort(fromSent)
		p50s = append(p50s, ms(fromAnswer[waitBench/2]))
		p99s = append(p99s, ms(fromAnswer[waitBench*99/100]))
		sent99s = append(sent99s, ms(fromSent[waitBench*99/100]))
		after = lastSeq(b, writer, url)
	}
	b.ReportMetric(mean(p50s), "p50-ms")
	b.ReportMetric(mean(p99s), "p99-ms")
	b.ReportMetric(mean(sent99s), "p99-from-sent-ms")
	b.ReportMetric(mean(heaps), "heap-B/waiter")
	b.ReportMetric(mean(stacks), "stack-B/waiter")
	b.ReportMetric(mean(goroutines), "goroutines/waiter")
}

// parallel runs fn(0) to fn(n-1) on workers goroutines.
func parallel(b *testing.B, workers, n int, fn func(i int) error) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// serverMetrics reads the gauges of the server's /metrics.
func serverMetrics(b *testing.B, url string) map[string]float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), " ")
		if ok && !strings.HasPrefix(name, "#") && !strings.Contains(name, "{") {
			if v, err := strconv.ParseFloat(value, 64); err == nil {
				m[name] = v
			}
		}
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}
