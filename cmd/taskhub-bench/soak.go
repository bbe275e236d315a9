//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"slices"
	"time"
)

// The soak: subscribers follow a steady stream of events for a long time, some of
// them reconnecting with Last-Event-ID now and then, while the bench watches what
// the server holds (goroutines, open files, memory) for growth.

// soakResult is what a soak measured; fields stay zero where it got no figure.
type soakResult struct {
	common
	sizeBase, pad  int
	baseline, last int64 // the subscribers start after baseline; the log ends at last
	connectTime    time.Duration
	publishOutcome
	phase           time.Duration // publishing
	cpu             *cpuSpan      // over the phase
	reconnectsAsked int64
	samples         []soakSample
	expected        int64
	delivered       int64
	gaps, dups      int64
	redials         int64
	closedEarly     int64
	closeReasons    map[string]int
	drainedIn       time.Duration // after the last PATCH, until every subscriber had every event
	drained         bool
}

// soakSample is one look at the server and the subscribers, at some time into the
// phase. A figure the bench could not get is -1.
type soakSample struct {
	at         time.Duration
	goroutines int64
	openFiles  int
	rssKiB     int64
	delivered  int64
	gaps, dups int64
	redials    int64
	closed     int64
}

func (s soakSample) String() string {
	return fmt.Sprintf("soak_sample t=%s goroutines=%d open_files=%d rss_kib=%d delivered=%d reconnected=%d gaps=%d duplicates=%d closed=%d",
		s.at.Round(time.Second), s.goroutines, s.openFiles, s.rssKiB, s.delivered, s.redials, s.gaps, s.dups, s.closed)
}

// soak connects --subscribers, each from the log's end, publishes --rate events a
// second for --duration, has a --reconnect-fraction of the subscribers reconnect
// every --reconnect-every, and prints a sample to progress every --report-every.
// Every subscriber must get every event once, in order. It returns what it
// measured, even when it fails midway.
func soak(cfg config, log *slog.Logger, progress io.Writer) (res *soakResult, err error) {
	res = &soakResult{common: common{cfg: cfg}, closeReasons: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	t, a, err := serverUp(ctx, cfg, &res.common, log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, t.tearDown(&res.common)) }()

	p, err := startPublishing(ctx, cfg, a)
	if err != nil {
		return res, err
	}
	p.rec.close() // it is there for the sizes only
	pub := p.pub
	res.sizeBase, res.pad = p.sizeBase, p.pad
	if res.baseline, err = a.lastSeq(ctx); err != nil {
		return res, err
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.readers)) // see epollWait
	f, err := newFleet(fleetConfig{subscribers: cfg.subscribers, loops: cfg.readers,
		port: t.port, host: t.host, path: streamPath(cfg), lastEventID: res.baseline, follow: true})
	if err != nil {
		return res, err
	}
	fleetClosed := false
	defer func() {
		if !fleetClosed {
			f.close()
		}
	}()
	log.Info("connecting subscribers", "n", cfg.subscribers)
	if res.connectTime, err = f.open(ctx, cfg.dialers); err != nil {
		return res, err
	}
	if d, err := a.debug(ctx); err != nil {
		return res, err
	} else if d.ConnectedClients < cfg.subscribers {
		return res, fmt.Errorf("server counts %d clients, want %d", d.ConnectedClients, cfg.subscribers)
	}

	// The phase: publishing for --duration.
	events := int(math.Ceil(cfg.rate * cfg.duration.Seconds()))
	log.Info("publishing", "events", events, "rate", cfg.rate, "for", cfg.duration)
	if res.cpu, err = startCPU(t.pid, t.tick); err != nil {
		return res, err
	}
	start := time.Now()
	sample := func() {
		s := res.sample(ctx, a, t.pid, f, time.Since(start))
		res.samples = append(res.samples, s)
		fmt.Fprintln(progress, s)
	}
	sample()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(ctx, events, cfg.rate) }()
	reconnect := time.NewTicker(cfg.reconnectEvery)
	report := time.NewTicker(cfg.reportEvery)
	each := reconnectCount(cfg.subscribers, cfg.reconnectFraction)
	next := 0
publishing:
	for {
		select {
		case <-pubDone:
			break publishing
		case <-ctx.Done():
			break publishing
		case <-reconnect.C:
			for range each {
				f.reconnect(next % cfg.subscribers)
				next++
			}
			res.reconnectsAsked += int64(each)
		case <-report.C:
			sample()
		}
	}
	reconnect.Stop()
	report.Stop()
	<-pubDone
	res.phase = time.Since(start)
	if err := res.cpu.stop(); err != nil {
		return res, err
	}
	res.publishOutcome = pub.outcome()
	log.Info("publishing over", "took", res.phase.Round(time.Millisecond))

	// Until every subscriber has every event, or --drain.
	if res.last, err = a.lastSeq(ctx); err != nil {
		return res, err
	}
	res.expected = int64(cfg.subscribers) * (res.last - res.baseline)
	drainStart := time.Now()
	waitDeliveries(ctx, f, res.expected, cfg.drain)
	res.drainedIn = time.Since(drainStart)
	sample()
	f.close()
	fleetClosed = true
	res.analyze(f)
	res.drained = res.delivered >= res.expected
	switch {
	case len(res.publishErrs) > 0:
		return res, fmt.Errorf("%d of %d PATCHes failed, the first: %w", len(res.publishErrs), events, res.publishErrs[0])
	case res.gaps+res.dups > 0:
		return res, fmt.Errorf("%d events missing where the next came, %d duplicated or out of order", res.gaps, res.dups)
	case res.closedEarly > 0:
		return res, fmt.Errorf("%d subscribers closed by the server", res.closedEarly)
	case res.delivered < res.expected:
		return res, fmt.Errorf("%d of %d deliveries missing", res.expected-res.delivered, res.expected)
	}
	return res, nil
}

// reconnectCount is how many of n subscribers make fraction, at least one unless
// fraction is 0.
func reconnectCount(n int, fraction float64) int {
	if fraction == 0 {
		return 0
	}
	return max(1, int(math.Round(fraction*float64(n))))
}

// sample looks at the server (pid 0: only at its goroutines) and the fleet.
func (res *soakResult) sample(ctx context.Context, a *api, pid int, f *fleet, at time.Duration) soakSample {
	s := soakSample{at: at, goroutines: -1, openFiles: -1, rssKiB: -1,
		delivered: f.delivered.Load(), gaps: f.gaps.Load(), dups: f.dups.Load(), redials: f.redials.Load(), closed: f.closed.Load()}
	if n, err := a.goroutines(ctx); err == nil {
		s.goroutines = n
	}
	if pid != 0 {
		if n, err := openFiles(pid); err == nil {
			s.openFiles = n
		}
		if kib, err := rssKiB(pid, false); err == nil {
			s.rssKiB = kib
		}
	}
	return s
}

// analyze takes the fleet's counts, once it is closed.
func (res *soakResult) analyze(f *fleet) {
	res.delivered, res.gaps, res.dups, res.redials = f.delivered.Load(), f.gaps.Load(), f.dups.Load(), f.redials.Load()
	for _, s := range f.subs {
		if s.closed {
			res.closedEarly++
			res.closeReasons[s.closeErr.Error()]++
		}
	}
}

// print writes the summary: one block of "key: value" lines.
func (res *soakResult) print(w io.Writer) {
	cfg := res.cfg
	line := summaryLine(w)
	res.printHead(w, line)
	line("soak", "%d subscribers from seq %d, %g events/s for %s; %d of them (%g) reconnecting with Last-Event-ID every %s, in turn",
		cfg.subscribers, res.baseline, cfg.rate, cfg.duration, reconnectCount(cfg.subscribers, cfg.reconnectFraction), cfg.reconnectFraction, cfg.reconnectEvery)
	line("subscribers_connected_in", "%s", res.connectTime.Round(time.Millisecond))
	size := fmt.Sprintf("about %d B unpadded (the data line's JSON)", res.sizeBase)
	if res.pad > 0 {
		size += fmt.Sprintf("; --size %d: description padded with %d bytes", cfg.size, res.pad)
	}
	line("event_size", "%s", size)
	line("events_published", "%d of %d (%d errors) over %s; at worst %s behind schedule; %d publishers",
		res.published, int(math.Ceil(cfg.rate*cfg.duration.Seconds())), len(res.publishErrs), res.phase.Round(time.Millisecond), ms(res.publishLate), cfg.publishers)
	for i, err := range res.publishErrs {
		if i == 3 {
			line("  publish_error", "… and %d more", len(res.publishErrs)-3)
			break
		}
		line("  publish_error", "%v", err)
	}
	pct := 0.0
	if res.expected > 0 {
		pct = 100 * float64(res.delivered) / float64(res.expected)
	}
	line("delivered", "%d / %d expected (%.3f%%): every event after seq %d to every subscriber, once, in order", res.delivered, res.expected, pct, res.baseline)
	line("delivery_anomalies", "%d events missing where a later one came, %d duplicated or out of order", res.gaps, res.dups)
	line("reconnected", "%d of %d asked for", res.redials, res.reconnectsAsked)
	line("closed_by_server", "%d", res.closedEarly)
	for _, r := range slices.Sorted(maps.Keys(res.closeReasons)) {
		line("  closed_because", "%dx %s", res.closeReasons[r], r)
	}
	drained := "every delivery arrived"
	if !res.drained {
		drained = "not every delivery arrived"
	}
	line("after_last_patch", "%s within %s", drained, res.drainedIn.Round(time.Millisecond))
	if res.cpu != nil {
		res.cpu.printServer(line, res.phase, res.delivered, "deliveries")
		res.cpu.printOthers(line)
	}
	if len(res.samples) > 0 {
		first, last := res.samples[0], res.samples[len(res.samples)-1]
		var most soakSample
		for _, s := range res.samples {
			most.goroutines = max(most.goroutines, s.goroutines)
			most.openFiles = max(most.openFiles, s.openFiles)
			most.rssKiB = max(most.rssKiB, s.rssKiB)
		}
		line("samples", "%d, every %s (the soak_sample lines above; -1: not known)", len(res.samples), cfg.reportEvery)
		line("server_goroutines", "%d at the start, %d at the end, at most %d (go_goroutines of /metrics)", first.goroutines, last.goroutines, most.goroutines)
		line("server_open_files", "%d at the start, %d at the end, at most %d (/proc/PID/fd)", first.openFiles, last.openFiles, most.openFiles)
		line("server_rss", "%d KiB at the start, %d KiB at the end, at most %d KiB (VmRSS)", first.rssKiB, last.rssKiB, most.rssKiB)
	}
	if res.serverLog != "" {
		line("server_log", "%s", res.serverLog)
	}
}
