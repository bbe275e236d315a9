//go:build linux

package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// analyze matches every delivery with the PATCH that made its event: the recorder
// tells which task and version each seq is, the publisher when it sent that change.
func (res *result) analyze(f *fleet, rec *recorder, pub *publisher, seqBase int64) {
	n := res.cfg.events
	sendAt := make([]int64, n) // unix ns; 0: not one of this run's PATCHes
	eventAt := make([]int64, n)
	var sizeSum, sized int
	for i := range n {
		e, ok := rec.get(seqBase + 1 + int64(i))
		if !ok {
			continue
		}
		t, ok := pub.sent[sendKey{e.taskID, e.version}]
		if !ok {
			continue
		}
		sendAt[i], eventAt[i] = t.UnixNano(), e.time.UnixNano()
		sizeSum += e.size
		sized++
		if res.sizeMin == 0 || e.size < res.sizeMin {
			res.sizeMin = e.size
		}
		res.sizeMax = max(res.sizeMax, e.size)
	}
	if sized > 0 {
		res.sizeAvg = float64(sizeSum) / float64(sized)
	}
	latSend := make([]time.Duration, 0, res.expected)
	latEvent := make([]time.Duration, 0, res.expected)
	for _, s := range f.subs {
		res.dup += s.dup
		res.outOfOrder += s.outOfOrder
		res.foreign += s.foreign
		if s.closed {
			res.closedEarly++
			res.closeReasons[s.closeErr.Error()]++
		}
		for i, at := range s.recv {
			if at == 0 {
				continue
			}
			if sendAt[i] == 0 {
				res.unmatched++
				continue
			}
			res.delivered++
			latSend = append(latSend, time.Duration(at-sendAt[i]))
			latEvent = append(latEvent, time.Duration(at-eventAt[i]))
		}
	}
	res.latSend = summarize(latSend)
	res.latEventTime = summarize(latEvent)
}

// print writes the summary: one block of "key: value" lines.
func (res *result) print(w io.Writer) {
	cfg := res.cfg
	line := summaryLine(w)
	res.printHead(w, line)
	line("subscribers", "%d requested, %d connected in %s, %d closed by the server during the run",
		cfg.subscribers, res.connected, res.connectTime.Round(time.Millisecond), res.closedEarly)
	for _, r := range slices.Sorted(maps.Keys(res.closeReasons)) {
		line("  closed_because", "%dx %s", res.closeReasons[r], r)
	}
	batch := "none (one SSE event per event)"
	if cfg.batch != "" {
		batch = cfg.batch + " (batch_update events; a batch delivers every event in it at once)"
	}
	line("stream_batch", "%s", batch)
	res.printPublished(line, cfg)
	size := fmt.Sprintf("avg %.0f B, min %d, max %d (the data line's JSON, measured)", res.sizeAvg, res.sizeMin, res.sizeMax)
	switch {
	case cfg.size == 0:
	case res.pad > 0:
		size += fmt.Sprintf("; --size %d: description padded with %d bytes", cfg.size, res.pad)
	default:
		size += fmt.Sprintf("; --size %d is below the smallest task_updated event this API makes (%d B unpadded): not padded", cfg.size, res.sizeBase)
	}
	line("event_size", "%s", size)
	pct := 0.0
	if res.expected > 0 {
		pct = 100 * float64(res.delivered) / float64(res.expected)
	}
	line("delivered", "%d / %d expected (%.3f%%)", res.delivered, res.expected, pct)
	line("delivery_anomalies", "%d duplicate, %d out of order, %d with a seq past the run, %d of events not this run's",
		res.dup, res.outOfOrder, res.foreign, res.unmatched)
	line("latency_patch_sent_to_parsed", "%s", res.latSend)
	line("latency_event_time_to_parsed", "%s", res.latEventTime)
	if res.rssOK {
		per := float64(res.rssAfter-res.rssBefore) / float64(cfg.subscribers)
		line("server_rss", "%d KiB before subscribers, %d KiB with all connected, peak (VmHWM) %d KiB", res.rssBefore, res.rssAfter, res.rssPeak)
		line("server_rss_per_subscriber", "%.2f KiB", per)
	} else {
		line("server_rss", "n/a (no server pid)")
	}
	line("publish_phase", "%s (first PATCH until every delivery arrived, or --drain after the last)", res.phase.Round(time.Millisecond))
	if res.cpu != nil {
		res.cpu.printServer(line, res.phase, res.delivered, "deliveries")
		if res.writesOK && res.serverWrites > 0 {
			line("server_writes", "%d write(2) calls over the phase, %.1f deliveries each (all of the server's writes: PATCH responses and the database's too)",
				res.serverWrites, float64(res.delivered)/float64(res.serverWrites))
		}
		res.cpu.printOthers(line)
	}
	if res.debugOK {
		b, a := res.debugBefore, res.debugAfter
		line("server_debug", "connected_clients %d, events_sent +%d, subscribers_dropped +%d (counters include the recorder)",
			a.ConnectedClients, a.EventsSent-b.EventsSent, a.SubscribersDropped-b.SubscribersDropped)
	}
	if res.perfNote != "" {
		line("perf_profile", "%s", res.perfNote)
	}
	if res.serverLog != "" {
		line("server_log", "%s", res.serverLog)
	}
	line("latency_basis", "%s", strings.Join([]string{
		"patch_sent = the bench's clock just before each PATCH was written",
		"event_time = the event's \"time\" field (set by the server before commit)",
		"parsed = when a subscriber's read returned the bytes that ended the event",
	}, "; "))
}

// printServer writes the server's CPU over a phase of length phase, and how many of
// what it did (n) per CPU-second of its own.
func (c *cpuSpan) printServer(line func(key, format string, args ...any), phase time.Duration, n int64, what string) {
	if !c.serverOK {
		line("server_cpu", "n/a (no server pid)")
		return
	}
	s := c.server
	line("server_cpu", "%.2f s (user %.2f, sys %.2f) = %.0f%% of one core over the phase",
		s.total().Seconds(), s.user.Seconds(), s.sys.Seconds(), 100*s.total().Seconds()/phase.Seconds())
	if s.total() > 0 {
		line(what+"_per_server_cpu_second", "%.0f", float64(n)/s.total().Seconds())
	} else {
		line(what+"_per_server_cpu_second", "n/a (under one clock tick of CPU)")
	}
}

// printOthers writes this process's CPU and the machine's over the phase.
func (c *cpuSpan) printOthers(line func(key, format string, args ...any)) {
	line("bench_cpu", "%.2f s (user %.2f, sys %.2f) over the phase",
		c.self.total().Seconds(), c.self.user.Seconds(), c.self.sys.Seconds())
	if c.machineTotal > 0 {
		other := c.machineBusy - c.self.total()
		if c.serverOK {
			other -= c.server.total()
		}
		line("machine_cpu", "%.2f s busy of %.2f s on all CPUs (%.0f%%); other processes and the kernel's unattributed work: %.2f s",
			c.machineBusy.Seconds(), c.machineTotal.Seconds(), 100*c.machineBusy.Seconds()/c.machineTotal.Seconds(), other.Seconds())
	}
}

// printPublished writes the summary lines of the publishing: how many of the events
// were published, how fast against the target, and the first errors.
func (p *publishOutcome) printPublished(line func(key, format string, args ...any), cfg config) {
	rate := "as fast as possible"
	if cfg.rate > 0 {
		rate = fmt.Sprintf("target %g/s, at worst %s behind schedule", cfg.rate, ms(p.publishLate))
	}
	achieved := "n/a"
	if p.publishSpan > 0 {
		achieved = fmt.Sprintf("%.1f/s", float64(p.published-1)/p.publishSpan.Seconds())
	}
	line("events_published", "%d of %d (%d errors), %s over %s; %s; %d publishers",
		p.published, cfg.events, len(p.publishErrs), achieved, p.publishSpan.Round(time.Millisecond), rate, cfg.publishers)
	for i, err := range p.publishErrs {
		if i == 3 {
			line("  publish_error", "… and %d more", len(p.publishErrs)-3)
			break
		}
		line("  publish_error", "%v", err)
	}
}
