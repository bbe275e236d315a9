//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"runtime"
	"slices"
	"time"
)

// The restart storm: every subscriber of a server reconnects at once, each with a
// Last-Event-ID some events back, as they do when the server comes back after a
// restart or a network blip. It measures how long until every one has caught up,
// and what the replay costs the server.

// stormResult is what a storm measured; fields stay zero where it got no figure.
type stormResult struct {
	common
	made                int // PATCHes that made the replayed events
	makeTook            time.Duration
	base, last          int64 // the subscribers' Last-Event-ID, and where the log ends
	sizeBase, pad       int
	sizeAvg             float64
	sizeMin, sizeMax    int
	rssBefore, rssAfter int64
	rssPeak             int64
	rssOK               bool
	debugBefore         debugCounters
	debugAfter          debugCounters
	debugOK             bool
	phase               time.Duration
	cpu                 *cpuSpan
	stalled             bool // the phase ended because deliveries stopped coming
	heads               latencySummary
	caughtUp            latencySummary
	complete            int // subscribers that got every replayed event
	expected, delivered int64
	dup, outOfOrder     int64
	foreign             int64
	closedEarly         int64
	closeReasons        map[string]int
	bytes               int64
	perfNote            string
}

// storm makes --events events, then connects --subscribers at once, each asking for
// the events after seq last−events, and waits until every one has them all. It
// returns what it measured, even when it fails midway.
func storm(cfg config, log *slog.Logger) (res *stormResult, err error) {
	res = &stormResult{common: common{cfg: cfg}, closeReasons: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	t, a, err := serverUp(ctx, cfg, &res.common, log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, t.tearDown(&res.common)) }()

	// The events to replay, made as fast as the publishers go; the recorder tells
	// their sizes.
	p, err := startPublishing(ctx, cfg, a)
	if err != nil {
		return res, err
	}
	defer p.rec.close()
	rec, pub := p.rec, p.pub
	res.sizeBase, res.pad = p.sizeBase, p.pad
	log.Info("making the events", "n", cfg.events)
	start := time.Now()
	pub.run(ctx, cfg.events, 0)
	res.makeTook, res.made = time.Since(start), len(pub.sent)
	if len(pub.errs) > 0 {
		return res, fmt.Errorf("%d of %d PATCHes failed, the first: %w", len(pub.errs), cfg.events, pub.errs[0])
	}
	if res.last, err = a.lastSeq(ctx); err != nil {
		return res, err
	}
	res.base = res.last - int64(cfg.events)
	if err := rec.waitFor(ctx, res.last); err != nil {
		return res, err
	}
	res.sizes(rec)
	rec.close()

	if cfg.restart {
		log.Info("restarting the server")
		if err := t.restart(ctx, &res.common); err != nil {
			return res, err
		}
		a = newAPI(t.url, 2)
		last, err := a.lastSeq(ctx)
		if err != nil {
			return res, err
		}
		if last != res.last {
			return res, fmt.Errorf("restarted, the server's log ends at seq %d, not %d", last, res.last)
		}
		if err := t.checkNoFile(cfg.subscribers, &res.common); err != nil {
			return res, err
		}
	}
	haveProc := t.pid != 0
	if haveProc {
		time.Sleep(cfg.settle)
		if res.rssBefore, err = rssKiB(t.pid, false); err != nil {
			return res, err
		}
	}
	if res.debugBefore, err = a.debug(ctx); err != nil {
		return res, err
	}

	// The storm: from the first connect until every subscriber has every event.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.readers)) // see epollWait
	f, err := newFleet(fleetConfig{subscribers: cfg.subscribers, events: cfg.events, loops: cfg.readers,
		port: t.port, host: t.host, path: streamPath(cfg), lastEventID: res.base})
	if err != nil {
		return res, err
	}
	f.base.Store(res.base)
	fleetClosed := false
	defer func() {
		if !fleetClosed {
			f.close()
		}
	}()
	var perf *exec.Cmd
	if cfg.perf != "" && haveProc {
		if perf, err = startPerf(cfg.perf, t.pid); err != nil {
			return res, err
		}
	}
	res.expected = int64(cfg.subscribers) * int64(cfg.events)
	log.Info("storm", "subscribers", cfg.subscribers, "last_event_id", res.base, "events_back", cfg.events)
	if res.cpu, err = startCPU(t.pid, t.tick); err != nil {
		return res, err
	}
	start = time.Now()
	if err := f.connect(ctx, cfg.dialers); err != nil {
		return res, err
	}
	res.stalled = waitDeliveries(ctx, f, res.expected, cfg.drain)
	res.phase = time.Since(start)
	if err := res.cpu.stop(); err != nil {
		return res, err
	}
	if perf != nil {
		res.perfNote = stopPerf(perf, cfg.perf)
	}
	if haveProc {
		res.rssAfter, _ = rssKiB(t.pid, false)
		res.rssPeak, _ = rssKiB(t.pid, true)
		res.rssOK = true
	}
	if res.debugAfter, err = a.debug(ctx); err == nil {
		res.debugOK = true
	}
	f.close()
	fleetClosed = true
	res.analyze(f, start)
	switch {
	case res.delivered < res.expected:
		return res, fmt.Errorf("%d of %d subscribers caught up: %d of %d replayed deliveries missing", res.complete, cfg.subscribers, res.expected-res.delivered, res.expected)
	case res.dup+res.outOfOrder+res.foreign > 0:
		return res, fmt.Errorf("%d deliveries duplicated, %d out of order, %d past the log's end", res.dup, res.outOfOrder, res.foreign)
	}
	return res, nil
}

// waitDeliveries waits until the fleet has want deliveries, every subscriber is
// closed, ctx ends, or no delivery has come for stall; it reports the last.
func waitDeliveries(ctx context.Context, f *fleet, want int64, stall time.Duration) (stalled bool) {
	// Looking every 10 ms ends the phase at most that late, which the CPU figures
	// hardly see; a faster tick would wake the bench's idle threads for nothing.
	check := time.NewTicker(10 * time.Millisecond)
	defer check.Stop()
	last, lastAt := f.delivered.Load(), time.Now()
	for {
		n := f.delivered.Load()
		switch {
		case n >= want || f.closed.Load() >= int64(len(f.subs)):
			return false
		case n != last:
			last, lastAt = n, time.Now()
		case time.Since(lastAt) > stall:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-check.C:
		}
	}
}

// sizes takes the sizes of the replayed events from the recorder.
func (res *stormResult) sizes(rec *recorder) {
	var sum, n int
	for seq := res.base + 1; seq <= res.last; seq++ {
		e, ok := rec.get(seq)
		if !ok {
			continue
		}
		sum, n = sum+e.size, n+1
		if res.sizeMin == 0 || e.size < res.sizeMin {
			res.sizeMin = e.size
		}
		res.sizeMax = max(res.sizeMax, e.size)
	}
	if n > 0 {
		res.sizeAvg = float64(sum) / float64(n)
	}
}

// analyze counts each subscriber's deliveries and when it caught up, from start.
func (res *stormResult) analyze(f *fleet, start time.Time) {
	t0 := start.UnixNano()
	var heads, caught []time.Duration
	for _, s := range f.subs {
		res.dup += s.dup
		res.outOfOrder += s.outOfOrder
		res.foreign += s.foreign
		if s.closed {
			res.closedEarly++
			res.closeReasons[s.closeErr.Error()]++
		}
		if s.headAt != 0 {
			heads = append(heads, time.Duration(s.headAt-t0))
		}
		got, lastAt := 0, int64(0)
		for _, at := range s.recv {
			if at != 0 {
				got++
				lastAt = max(lastAt, at)
			}
		}
		res.delivered += int64(got)
		if got == len(s.recv) {
			res.complete++
			caught = append(caught, time.Duration(lastAt-t0))
		}
	}
	res.heads, res.caughtUp = summarize(heads), summarize(caught)
	res.bytes = f.bytesRead()
}

// print writes the summary: one block of "key: value" lines.
func (res *stormResult) print(w io.Writer) {
	cfg := res.cfg
	line := summaryLine(w)
	res.printHead(w, line)
	restart := "no"
	if cfg.restart {
		restart = "yes, on the same database, after the events were made"
	}
	line("storm", "%d subscribers connecting %d at a time, each with Last-Event-ID %d: the %d events up to seq %d", cfg.subscribers, cfg.dialers, res.base, cfg.events, res.last)
	line("server_restarted_before_storm", "%s", restart)
	if res.makeTook > 0 {
		line("events_made", "%d PATCHes in %s (%.0f/s, %d publishers)", res.made, res.makeTook.Round(time.Millisecond), float64(res.made)/res.makeTook.Seconds(), cfg.publishers)
	}
	size := fmt.Sprintf("avg %.0f B, min %d, max %d (the data line's JSON, measured)", res.sizeAvg, res.sizeMin, res.sizeMax)
	if res.pad > 0 {
		size += fmt.Sprintf("; --size %d: description padded with %d bytes", cfg.size, res.pad)
	}
	line("event_size", "%s", size)
	line("response_heads", "%s after the storm's start", res.heads)
	line("all_caught_up", "%d of %d subscribers; each caught up %s after the storm's start", res.complete, cfg.subscribers, res.caughtUp)
	if res.complete == cfg.subscribers {
		line("time_until_all_caught_up", "%s", ms(res.caughtUp.max))
	} else {
		line("time_until_all_caught_up", "n/a (not all caught up)")
	}
	pct := 0.0
	if res.expected > 0 {
		pct = 100 * float64(res.delivered) / float64(res.expected)
	}
	line("replayed", "%d / %d expected (%.3f%%)", res.delivered, res.expected, pct)
	line("delivery_anomalies", "%d duplicate, %d out of order, %d with a seq past the log's end", res.dup, res.outOfOrder, res.foreign)
	line("closed_by_server", "%d", res.closedEarly)
	for _, r := range slices.Sorted(maps.Keys(res.closeReasons)) {
		line("  closed_because", "%dx %s", res.closeReasons[r], r)
	}
	if res.delivered > 0 {
		line("bytes_received", "%d, %.0f per replayed event (response heads and chunk framing included)", res.bytes, float64(res.bytes)/float64(res.delivered))
	}
	end := "until every subscriber had every event"
	if res.stalled {
		end = fmt.Sprintf("until no event had come for --drain %s", cfg.drain)
	}
	line("storm_phase", "%s (from the first connect %s)", res.phase.Round(time.Millisecond), end)
	if res.cpu != nil {
		res.cpu.printServer(line, res.phase, res.delivered, "replayed_events")
		res.cpu.printOthers(line)
	}
	if res.rssOK {
		line("server_rss", "%d KiB before the storm, %d KiB after, peak (VmHWM) %d KiB", res.rssBefore, res.rssAfter, res.rssPeak)
	}
	if res.debugOK {
		b, a := res.debugBefore, res.debugAfter
		line("server_debug", "connected_clients %d, events_sent +%d, subscribers_dropped +%d", a.ConnectedClients, a.EventsSent-b.EventsSent, a.SubscribersDropped-b.SubscribersDropped)
	}
	if res.perfNote != "" {
		line("perf_profile", "%s", res.perfNote)
	}
	if res.serverLog != "" {
		line("server_log", "%s", res.serverLog)
	}
}
