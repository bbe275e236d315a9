//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The cross-node run: --nodes servers share one PostgreSQL database, --subscribers
// follow each, and every event is written to node 0 only. Each event must reach every
// subscriber of every node once, and its latency is measured on each node apart.

// clusterNode is one server of the run and what was measured on it.
type clusterNode struct {
	srv   *child
	api   *api
	host  string
	port  int
	fleet *fleet
	// fleetClosed: its sockets are closed, what it measured kept
	fleetClosed bool
	cpu         *cpuSpan

	delivered, missing        int64
	short                     int64 // subscribers that missed an event
	dup, outOfOrder, foreign  int64
	closed                    int64
	closeReasons              map[string]int
	latAck, latSend, latEvent latencySummary
	negativeAck               int64 // parsed before node 0's answer was read
}

// clusterResult is what a cross-node run measured.
type clusterResult struct {
	common
	nodes       []*clusterNode
	connectTime time.Duration
	publishOutcome
	phase     time.Duration
	expected  int64 // deliveries per node
	unmatched int64
	machine   *cpuSpan // this process and the machine; no server
}

// cluster runs the cross-node scenario. It returns what it measured, even when it
// fails midway.
func cluster(cfg config, log *slog.Logger) (res *clusterResult, err error) {
	res = &clusterResult{common: common{cfg: cfg}}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	res.nofileSoft, res.nofileHard, err = raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise the open-files limit: %w", err)
	}
	total := cfg.nodes * cfg.subscribers
	if need := uint64(total) + 256; res.nofileSoft < need {
		return nil, fmt.Errorf("open-files limit %d (hard %d) is too low for %d subscribers; raise the hard limit (ulimit -Hn, as root) first",
			res.nofileSoft, res.nofileHard, total)
	}
	tick, tickDesc := clockTick()
	res.tickDesc = tickDesc
	started := res // res is nil when the run fails before it measured anything
	defer func() { err = errors.Join(err, started.stopNodes()) }()
	var descs []string
	for i := range cfg.nodes {
		n, err := startNode(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		res.nodes = append(res.nodes, n)
		if i == 0 {
			if err := checkEmpty(ctx, n.api); err != nil {
				return nil, err
			}
		}
		if err := (&target{pid: n.srv.cmd.Process.Pid}).checkNoFile(cfg.subscribers, &res.common); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		descs = append(descs, fmt.Sprintf("node %d pid %d at %s", i, n.srv.cmd.Process.Pid, n.srv.url))
		log.Info("node up", "node", i, "url", n.srv.url)
	}
	res.serverDesc = fmt.Sprintf("started %d × %s on --db: %s", cfg.nodes,
		strings.Join(append([]string{cfg.server, "serve"}, cfg.serverArgs...), " "), strings.Join(descs, "; "))
	res.pid = res.nodes[0].srv.cmd.Process.Pid

	node0 := res.nodes[0]
	p, err := startPublishing(ctx, cfg, node0.api)
	if err != nil {
		return res, err
	}
	defer p.rec.close()
	rec, pub := p.rec, p.pub
	pub.acked = map[sendKey]time.Time{}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.nodes*cfg.readers))
	defer res.closeFleets()
	start := time.Now()
	for i, n := range res.nodes {
		n.fleet, err = newFleet(fleetConfig{subscribers: cfg.subscribers, events: cfg.events, loops: cfg.readers,
			port: n.port, host: n.host, path: streamPath(cfg), lastEventID: -1})
		if err != nil {
			return res, err
		}
		log.Info("connecting subscribers", "node", i, "n", cfg.subscribers)
		if _, err := n.fleet.open(ctx, cfg.dialers); err != nil {
			return res, fmt.Errorf("node %d: %w", i, err)
		}
	}
	res.connectTime = time.Since(start)
	d, err := node0.api.debug(ctx)
	if err != nil {
		return res, err
	}
	seqBase := d.LastSeq
	if err := rec.waitFor(ctx, seqBase); err != nil {
		return res, err
	}
	for i, n := range res.nodes {
		want := cfg.subscribers
		if i == 0 {
			want++ // the recorder
		}
		if err := waitNode(ctx, n.api, seqBase, want); err != nil {
			return res, fmt.Errorf("node %d: %w", i, err)
		}
		n.fleet.base.Store(seqBase)
	}

	log.Info("publishing to node 0", "events", cfg.events, "rate", cfg.rate)
	for _, n := range res.nodes {
		if n.cpu, err = startCPU(n.srv.cmd.Process.Pid, tick); err != nil {
			return res, err
		}
	}
	if res.machine, err = startCPU(0, tick); err != nil {
		return res, err
	}
	start = time.Now()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(ctx, cfg.events, cfg.rate) }()
	res.waitDeliveries(ctx, pub, pubDone)
	res.phase = time.Since(start)
	for _, c := range append([]*cpuSpan{res.machine}, res.cpuSpans()...) {
		if err := c.stop(); err != nil {
			return res, err
		}
	}
	<-pubDone
	log.Info("publish phase over", "took", res.phase.Round(time.Millisecond))
	res.publishOutcome = pub.outcome()
	res.expected = int64(cfg.subscribers) * int64(res.published)
	recCtx, recCancel := context.WithTimeout(ctx, 2*time.Second)
	_ = rec.waitFor(recCtx, seqBase+int64(res.published)) // a miss shows as unmatched
	recCancel()
	res.closeFleets()
	res.analyze(rec, pub, seqBase)
	var missing []string
	for i, n := range res.nodes {
		if n.missing > 0 || n.dup > 0 || n.outOfOrder > 0 {
			missing = append(missing, fmt.Sprintf("node %d: %d missing, %d duplicate, %d out of order", i, n.missing, n.dup, n.outOfOrder))
		}
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("deliveries of %d events to %d subscribers per node: %s", res.published, cfg.subscribers, strings.Join(missing, "; "))
	}
	if len(res.publishErrs) > 0 {
		return res, fmt.Errorf("%d PATCHes failed: %w", len(res.publishErrs), res.publishErrs[0])
	}
	return res, nil
}

// startNode starts one server on the run's database, its log in a temp dir.
func startNode(ctx context.Context, cfg config) (*clusterNode, error) {
	dir, err := os.MkdirTemp("", "taskhub-bench-")
	if err != nil {
		return nil, err
	}
	c := &child{
		path: cfg.server,
		args: append([]string{"serve", "--addr", "127.0.0.1:0", "--db", cfg.db, "--log-level", "warn"}, cfg.serverArgs...),
		dir:  dir,
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TASKHUB_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, cfg.serverEnv...)
	if err := c.start(ctx); err != nil {
		c.removeDir()
		return nil, err
	}
	n := &clusterNode{srv: c, api: newAPI(c.url, cfg.publishers+2), closeReasons: map[string]int{}}
	if n.host, n.port, err = loopbackPort(c.url); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return n, nil
}

// checkEmpty refuses a database that has a task or an event: the run writes to it.
func checkEmpty(ctx context.Context, a *api) error {
	var page struct {
		Tasks []task `json:"tasks"`
	}
	if err := a.do(ctx, "GET", "/api/tasks?limit=1", nil, 200, &page); err != nil {
		return err
	}
	seq, err := a.lastSeq(ctx)
	if err != nil {
		return err
	}
	if len(page.Tasks) > 0 || seq > 0 {
		return fmt.Errorf("--db: the database has tasks or events (last seq %d): give an empty one", seq)
	}
	return nil
}

// waitNode waits until a node's stream has reached seq and it counts clients
// subscribers.
func waitNode(ctx context.Context, a *api, seq int64, clients int) error {
	for {
		d, err := a.debug(ctx)
		if err != nil {
			return err
		}
		if d.LastSeq >= seq && d.ConnectedClients >= clients {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("at seq %d with %d clients, waited for %d and %d: %w", d.LastSeq, d.ConnectedClients, seq, clients, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitDeliveries waits until every node's subscribers have every event published, or
// --drain after the last PATCH.
func (res *clusterResult) waitDeliveries(ctx context.Context, pub *publisher, pubDone <-chan struct{}) {
	subs := int64(res.cfg.subscribers)
	var drainBy <-chan time.Time
	check := time.NewTicker(10 * time.Millisecond)
	defer check.Stop()
	for {
		if drainBy == nil {
			select {
			case <-pubDone:
				drainBy = time.After(res.cfg.drain)
			default:
			}
		}
		all := true
		for _, n := range res.nodes {
			f := n.fleet
			if f.delivered.Load() < subs*int64(pub.sentCount()) && f.closed.Load() < subs {
				all = false
			}
		}
		if drainBy != nil && all {
			return
		}
		select {
		case <-drainBy:
			return
		case <-ctx.Done():
			return
		case <-check.C:
		}
	}
}

func (res *clusterResult) cpuSpans() []*cpuSpan {
	var spans []*cpuSpan
	for _, n := range res.nodes {
		spans = append(spans, n.cpu)
	}
	return spans
}

func (res *clusterResult) closeFleets() {
	for _, n := range res.nodes {
		if n.fleet != nil && !n.fleetClosed {
			n.fleet.close()
			n.fleetClosed = true
		}
	}
}

func (res *clusterResult) stopNodes() error {
	var err error
	for i, n := range res.nodes {
		e := n.srv.stop()
		if n.srv.logTail() != "" {
			res.serverLog = strings.TrimPrefix(res.serverLog+" "+n.srv.logPath(), " ")
		}
		if e != nil {
			err = errors.Join(err, fmt.Errorf("node %d: %w", i, e))
		}
	}
	return err
}

// analyze matches every delivery on every node with the PATCH that made its event.
func (res *clusterResult) analyze(rec *recorder, pub *publisher, seqBase int64) {
	n := res.cfg.events
	sendAt, ackAt, eventAt := make([]int64, n), make([]int64, n), make([]int64, n) // unix ns; 0: not this run's
	for i := range n {
		e, ok := rec.get(seqBase + 1 + int64(i))
		if !ok {
			continue
		}
		k := sendKey{e.taskID, e.version}
		s, ok := pub.sent[k]
		if !ok {
			continue
		}
		sendAt[i], ackAt[i], eventAt[i] = s.UnixNano(), pub.acked[k].UnixNano(), e.time.UnixNano()
	}
	for i := range n {
		if sendAt[i] == 0 && i < res.published {
			res.unmatched++
		}
	}
	for _, node := range res.nodes {
		var ack, send, event []time.Duration
		for _, s := range node.fleet.subs {
			node.dup += s.dup
			node.outOfOrder += s.outOfOrder
			node.foreign += s.foreign
			if s.closed {
				node.closed++
				node.closeReasons[s.closeErr.Error()]++
			}
			got := int64(0)
			for i, at := range s.recv {
				if at == 0 || sendAt[i] == 0 {
					continue
				}
				got++
				d := time.Duration(at - ackAt[i])
				if d < 0 {
					node.negativeAck++
				}
				ack = append(ack, d)
				send = append(send, time.Duration(at-sendAt[i]))
				event = append(event, time.Duration(at-eventAt[i]))
			}
			node.delivered += got
			if want := int64(res.published) - res.unmatched; got < want {
				node.missing += want - got
				node.short++
			}
		}
		node.latAck, node.latSend, node.latEvent = summarize(ack), summarize(send), summarize(event)
	}
}

// print writes the summary.
func (res *clusterResult) print(w io.Writer) {
	cfg := res.cfg
	line := summaryLine(w)
	res.printHead(w, line)
	line("nodes", "%d on one PostgreSQL database; every PATCH to node 0, %d subscribers on each node (%d in all), connected in %s",
		len(res.nodes), cfg.subscribers, len(res.nodes)*cfg.subscribers, res.connectTime.Round(time.Millisecond))
	res.printPublished(line, cfg)
	line("events_not_matched", "%d (seqs of the run the recorder on node 0 could not match with a PATCH)", res.unmatched)
	line("publish_phase", "%s (first PATCH until every delivery on every node arrived, or --drain after the last)", res.phase.Round(time.Millisecond))
	for i, n := range res.nodes {
		p := fmt.Sprintf("node%d_", i)
		if n.cpu == nil {
			line(p+"delivered", "n/a (the run ended before publishing)")
			continue
		}
		line(p+"delivered", "%d / %d expected; %d missing (%d subscribers short), %d duplicate, %d out of order, %d past the run; %d closed by the server",
			n.delivered, res.expected, n.missing, n.short, n.dup, n.outOfOrder, n.foreign, n.closed)
		for _, r := range slices.Sorted(maps.Keys(n.closeReasons)) {
			line("  "+p+"closed_because", "%dx %s", n.closeReasons[r], r)
		}
		line(p+"latency_ack_to_parsed", "%s; %d parsed before the answer", n.latAck, n.negativeAck)
		line(p+"latency_sent_to_parsed", "%s", n.latSend)
		line(p+"latency_event_time_to_parsed", "%s", n.latEvent)
		if n.cpu != nil && n.cpu.serverOK {
			s := n.cpu.server
			line(p+"server_cpu", "%.2f s (user %.2f, sys %.2f) = %.0f%% of one core over the phase",
				s.total().Seconds(), s.user.Seconds(), s.sys.Seconds(), 100*s.total().Seconds()/res.phase.Seconds())
		}
	}
	if m := res.machine; m != nil {
		line("bench_cpu", "%.2f s (user %.2f, sys %.2f) over the phase", m.self.total().Seconds(), m.self.user.Seconds(), m.self.sys.Seconds())
		if m.machineTotal > 0 {
			other := m.machineBusy - m.self.total()
			for _, n := range res.nodes {
				if n.cpu != nil && n.cpu.serverOK {
					other -= n.cpu.server.total()
				}
			}
			line("machine_cpu", "%.2f s busy of %.2f s on all CPUs (%.0f%%); PostgreSQL, other processes and the kernel's unattributed work: %.2f s",
				m.machineBusy.Seconds(), m.machineTotal.Seconds(), 100*m.machineBusy.Seconds()/m.machineTotal.Seconds(), other.Seconds())
		}
	}
	if res.serverLog != "" {
		line("server_log", "%s", res.serverLog)
	}
	line("latency_basis", "%s", strings.Join([]string{
		"ack = the bench's clock when node 0's 200 answer to the PATCH had been read",
		"sent = the bench's clock just before each PATCH was written",
		"event_time = the event's \"time\" field (set by node 0 before commit)",
		"parsed = when a subscriber's read returned the bytes that ended the event",
	}, "; "))
}
