//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The durable write path: concurrent clients, each on a connection of its own,
// create tasks and then update them, every request a committed change with its
// event, as fast as the server answers. No subscribers.

// writesResult is what a write-path run measured.
type writesResult struct {
	common
	phases []writePhase
}

// writePhase is one phase of a write-path run: creates or updates.
type writePhase struct {
	name     string // "creates" or "updates"
	done     int    // requests answered as they should be
	errs     int
	firstErr error
	took     time.Duration
	lat      latencySummary
	events   int64 // how much the event log grew
	cpu      *cpuSpan
}

// writes runs --publishers clients that create tasks for --duration, then update
// the tasks they created, a new title each time, for as long. It returns what it
// measured, even when it fails midway.
func writes(cfg config, log *slog.Logger) (res *writesResult, err error) {
	res = &writesResult{common: common{cfg: cfg}}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	t, err := setUp(ctx, cfg, 0, &res.common)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, t.tearDown(&res.common)) }()
	a := &api{url: t.url, client: &http.Client{
		Timeout: 30 * time.Second,
		// One connection per client, kept.
		Transport: &http.Transport{MaxConnsPerHost: cfg.publishers, MaxIdleConnsPerHost: cfg.publishers, DisableCompression: true},
	}}
	log.Info("server up", "url", t.url, "pid", t.pid)

	var titles atomic.Int64 // every request sets a title no task has had
	created := make([][]int64, cfg.publishers)
	create := func(ctx context.Context, w int) error {
		var task task
		body := map[string]string{"title": title(int(titles.Add(1)))}
		if err := a.do(ctx, http.MethodPost, "/api/tasks", body, http.StatusCreated, &task); err != nil {
			return err
		}
		created[w] = append(created[w], task.ID)
		return nil
	}
	update := func(ctx context.Context, w int) error {
		ids := created[w]
		if len(ids) == 0 {
			return fmt.Errorf("client %d created no task to update: make --duration longer", w)
		}
		k := titles.Add(1)
		id := ids[int(k)%len(ids)]
		return a.do(ctx, http.MethodPatch, fmt.Sprintf("/api/tasks/%d", id), map[string]string{"title": title(int(k))}, http.StatusOK, nil)
	}
	for _, ph := range []struct {
		name string
		do   func(context.Context, int) error
	}{{"creates", create}, {"updates", update}} {
		log.Info("writing", "phase", ph.name, "clients", cfg.publishers, "for", cfg.duration)
		p, err := runWrites(ctx, cfg, a, t, ph.name, ph.do)
		res.phases = append(res.phases, p)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// runWrites runs one phase: each of --publishers clients sends requests with do, one
// after the other, for --duration, and stops at its first error.
func runWrites(ctx context.Context, cfg config, a *api, t *target, name string, do func(context.Context, int) error) (writePhase, error) {
	p := writePhase{name: name}
	seq0, err := a.lastSeq(ctx)
	if err != nil {
		return p, err
	}
	if p.cpu, err = startCPU(t.pid, t.tick); err != nil {
		return p, err
	}
	lats := make([][]time.Duration, cfg.publishers)
	errs := make([]error, cfg.publishers)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for w := range cfg.publishers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				sent := time.Now()
				if err := do(ctx, w); err != nil {
					errs[w] = err
					return
				}
				lats[w] = append(lats[w], time.Since(sent))
			}
		})
	}
	wg.Wait()
	p.took = time.Since(start)
	if err := p.cpu.stop(); err != nil {
		return p, err
	}
	all := slices.Concat(lats...)
	p.done, p.lat = len(all), summarize(all)
	for _, err := range errs {
		if err != nil {
			p.errs++
			if p.firstErr == nil {
				p.firstErr = err
			}
		}
	}
	seq1, err := a.lastSeq(ctx)
	if err != nil {
		return p, err
	}
	p.events = seq1 - seq0
	switch {
	case p.errs > 0:
		return p, fmt.Errorf("%s: %d of %d clients failed, the first: %w", name, p.errs, cfg.publishers, p.firstErr)
	case p.done == 0:
		return p, fmt.Errorf("%s: no request answered within %s", name, cfg.duration)
	case p.events != int64(p.done):
		return p, fmt.Errorf("%s: %d changes made %d events", name, p.done, p.events)
	}
	return p, nil
}

// print writes the summary: one block of "key: value" lines.
func (res *writesResult) print(w io.Writer) {
	cfg := res.cfg
	line := summaryLine(w)
	res.printHead(w, line)
	line("writes", "%d clients, one connection each, each request waiting for the last; %s of creates (POST /api/tasks), then %s of updates (PATCH /api/tasks/{id}: a new title for one of the client's tasks); each answered once committed with its event",
		cfg.publishers, cfg.duration, cfg.duration)
	for _, p := range res.phases {
		rate := 0.0
		if p.took > 0 {
			rate = float64(p.done) / p.took.Seconds()
		}
		line(p.name, "%d in %s: %.0f/s, %d clients failed", p.done, p.took.Round(time.Millisecond), rate, p.errs)
		if p.firstErr != nil {
			line("  "+p.name+"_error", "%v", p.firstErr)
		}
		line("  "+p.name+"_latency", "%s (request sent to answer read)", p.lat)
		line("  "+p.name+"_events", "%d (the event log grew by as much)", p.events)
		if p.cpu != nil {
			sub := func(key, format string, args ...any) { line("  "+key, format, args...) }
			p.cpu.printServer(sub, p.took, int64(p.done), p.name)
			p.cpu.printOthers(sub)
		}
	}
	if res.serverLog != "" {
		line("server_log", "%s", res.serverLog)
	}
}
