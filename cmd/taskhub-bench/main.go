//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	args        []string // as given, for the summary
	given       map[string]bool
	server      string
	floor       bool
	storm       bool
	restart     bool
	soak        bool
	writes      bool
	nodes       int
	db          string
	serverArgs  multiFlag
	serverEnv   multiFlag
	url         string
	pid         int
	subscribers int
	events      int
	rate        float64
	size        int
	batch       string
	publishers  int
	readers     int
	dialers     int
	timeout     time.Duration
	drain       time.Duration
	settle      time.Duration
	perf        string
	hold        time.Duration

	duration          time.Duration
	reconnectEvery    time.Duration
	reconnectFraction float64
	reportEvery       time.Duration
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// maxSamples bounds subscribers × events: each delivery keeps 16 bytes.
const maxSamples = 20_000_000

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return floorServe(args[1:])
	}
	cfg := config{args: args, given: map[string]bool{}}
	fs := flag.NewFlagSet("taskhub-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.storm, "storm", false, "the restart storm instead: make --events events, then connect --subscribers at once, each with Last-Event-ID that many events back, and measure until every one has caught up (1000 subscribers and 1000 events unless given)")
	fs.BoolVar(&cfg.restart, "storm-restart", false, "with --storm: restart the server on its database after making the events, just before the storm")
	fs.BoolVar(&cfg.soak, "soak", false, "the soak instead: --subscribers (1000 unless given) follow --rate events/s for --duration (30m unless given), --reconnect-fraction of them reconnecting with Last-Event-ID every --reconnect-every; the server's goroutines, open files and RSS every --report-every")
	fs.BoolVar(&cfg.writes, "writes", false, "the durable write path instead: --publishers clients (32 unless given) create tasks for --duration (10s unless given), then update them for as long; no subscribers")
	fs.IntVar(&cfg.nodes, "nodes", 0, "the cross-node run instead: start this many servers (2–16) on the empty PostgreSQL database of --db, open --subscribers on each, publish --events at --rate to node 0 only, and measure delivery to every node (16 publishers unless given)")
	fs.StringVar(&cfg.db, "db", "", "with --nodes: the postgres:// `URL` of an empty database for the servers to share")
	fs.DurationVar(&cfg.duration, "duration", 0, "with --soak: how long to publish (default 30m); with --writes: how long each phase runs (default 10s)")
	fs.DurationVar(&cfg.reconnectEvery, "reconnect-every", time.Minute, "with --soak: how often some subscribers reconnect")
	fs.Float64Var(&cfg.reconnectFraction, "reconnect-fraction", 0.05, "with --soak: the `fraction` of the subscribers that reconnect each time, in turn")
	fs.DurationVar(&cfg.reportEvery, "report-every", time.Minute, "with --soak: how often to print the server's goroutines, open files and RSS")
	fs.StringVar(&cfg.server, "server", "bin/taskhub", "taskhub `binary` to start on 127.0.0.1:0 with a temp database (ignored with --url)")
	fs.Var(&cfg.serverArgs, "server-arg", "extra `argument` for taskhub serve, e.g. --server-arg=--stream-queue=4096 (repeatable)")
	fs.Var(&cfg.serverEnv, "server-env", "extra `KEY=VALUE` in the started server's environment, e.g. GODEBUG=gctrace=1 (repeatable)")
	fs.BoolVar(&cfg.floor, "floor", false, "start the floor server (this binary as `taskhub-bench serve`: no store, no filters, one write per event) instead of taskhub, to see what the machine itself allows for the same load")
	fs.StringVar(&cfg.url, "url", "", "`URL` of a running server on a loopback address, instead of starting one")
	fs.IntVar(&cfg.pid, "pid", 0, "with --url: the server's process `id`, for RSS and CPU figures")
	fs.IntVar(&cfg.subscribers, "subscribers", 100, "SSE subscribers to open; 1000 with --storm and --soak unless given")
	fs.IntVar(&cfg.events, "events", 100, "events to publish (one PATCH each); with --storm, the events made and replayed, 1000 unless given")
	fs.Float64Var(&cfg.rate, "rate", 100, "`rate` in events per second; 0 publishes as fast as --publishers allow")
	fs.IntVar(&cfg.size, "size", 0, "pad each task's description so that an event's JSON is about this many `bytes` (0: no padding); the summary tells the size measured")
	fs.StringVar(&cfg.batch, "batch", "", "stream batch `window` for the subscribers, e.g. 250ms (default none)")
	fs.IntVar(&cfg.publishers, "publishers", 4, "concurrent PATCH clients, one task each; with --writes, the clients writing, 32 unless given")
	fs.IntVar(&cfg.readers, "readers", 1, "epoll threads reading the subscribers")
	fs.IntVar(&cfg.dialers, "dialers", 32, "subscribers connecting at once")
	fs.DurationVar(&cfg.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "how long to wait for deliveries after the last PATCH; with --storm and --soak, how long without a delivery before giving up")
	fs.DurationVar(&cfg.settle, "settle", time.Second, "pause before each RSS reading")
	fs.StringVar(&cfg.perf, "perf", "", "record the server with perf record -g into this `file` during the publish phase (with --storm, the storm)")
	fs.DurationVar(&cfg.hold, "hold", 0, "pause this long with every subscriber connected, before publishing (time to take a heap profile of the server)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "taskhub-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fs.Visit(func(f *flag.Flag) { cfg.given[f.Name] = true })
	cfg.modeDefaults()
	if err := cfg.check(); err != nil {
		fmt.Fprintf(stderr, "taskhub-bench: %v\n", err)
		return 2
	}
	if cfg.floor {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "taskhub-bench: --floor: %v\n", err)
			return 1
		}
		cfg.server = exe
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var sum summary
	var err error
	switch {
	case cfg.storm:
		sum, err = summaryOf(storm(cfg, log))
	case cfg.soak:
		sum, err = summaryOf(soak(cfg, log, stdout))
	case cfg.writes:
		sum, err = summaryOf(writes(cfg, log))
	case cfg.nodes > 0:
		sum, err = summaryOf(cluster(cfg, log))
	default:
		sum, err = summaryOf(bench(cfg, log))
	}
	if sum != nil {
		sum.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "taskhub-bench: %v\n", err)
		return 1
	}
	return 0
}

// summary is what a run measured, printed at its end.
type summary interface{ print(w io.Writer) }

// summaryOf returns a run's result as a summary: nil when the run got no figures.
func summaryOf[R any, P interface {
	*R
	summary
}](res P, err error) (summary, error) {
	if res == nil {
		return nil, err
	}
	return res, err
}

// modeDefaults sets what a mode changes of the flags' defaults, where they were not
// given.
func (cfg *config) modeDefaults() {
	orDefault := func(name string, set func()) {
		if !cfg.given[name] {
			set()
		}
	}
	switch {
	case cfg.storm:
		orDefault("subscribers", func() { cfg.subscribers = 1000 })
		orDefault("events", func() { cfg.events = 1000 })
	case cfg.soak:
		orDefault("subscribers", func() { cfg.subscribers = 1000 })
		orDefault("duration", func() { cfg.duration = 30 * time.Minute })
		orDefault("timeout", func() { cfg.timeout = cfg.duration + cfg.drain + 2*time.Minute })
	case cfg.nodes > 0:
		orDefault("publishers", func() { cfg.publishers = 16 })
	case cfg.writes:
		orDefault("publishers", func() { cfg.publishers = 32 })
		orDefault("duration", func() { cfg.duration = 10 * time.Second })
		orDefault("timeout", func() { cfg.timeout = 2*cfg.duration + 2*time.Minute })
	}
}

// checkMode checks that at most one mode is asked for, and no flag of another.
func (cfg *config) checkMode() error {
	modes := 0
	for _, on := range []bool{cfg.storm, cfg.soak, cfg.writes, cfg.floor, cfg.given["nodes"]} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("--storm, --soak, --writes, --nodes and --floor each make a run of their own: give one")
	}
	for _, f := range []struct {
		name string
		ok   bool
		with string
	}{
		{"storm-restart", cfg.storm, "--storm"},
		{"duration", cfg.soak || cfg.writes, "--soak or --writes"},
		{"reconnect-every", cfg.soak, "--soak"},
		{"reconnect-fraction", cfg.soak, "--soak"},
		{"report-every", cfg.soak, "--soak"},
		{"db", cfg.given["nodes"], "--nodes"},
		{"hold", !cfg.storm && !cfg.soak && !cfg.writes && !cfg.given["nodes"], "the stream's own run (not --storm, --soak, --writes or --nodes)"},
		{"batch", !cfg.soak && !cfg.writes, "a run with subscribers that keep every event (not --soak or --writes)"},
		{"events", !cfg.soak && !cfg.writes, "a run of a number of events (not --soak, which publishes --rate for --duration, or --writes)"},
		{"subscribers", !cfg.writes, "a run with subscribers (not --writes)"},
		{"size", !cfg.writes, "a run with subscribers (not --writes)"},
		{"perf", !cfg.soak && !cfg.writes && !cfg.given["nodes"], "a short run with one server and subscribers (not --soak, --writes or --nodes)"},
	} {
		if cfg.given[f.name] && !f.ok {
			return fmt.Errorf("--%s goes with %s", f.name, f.with)
		}
	}
	switch {
	case cfg.given["nodes"] && (cfg.nodes < 2 || cfg.nodes > 16):
		return errors.New("--nodes must be 2–16")
	case cfg.given["nodes"] && !strings.HasPrefix(cfg.db, "postgres://") && !strings.HasPrefix(cfg.db, "postgresql://"):
		return fmt.Errorf("--nodes needs --db, the postgres:// URL of an empty database, got %q", cfg.db)
	case cfg.given["nodes"] && cfg.url != "":
		return errors.New("--nodes starts its own servers: not with --url")
	case cfg.restart && cfg.url != "":
		return errors.New("--storm-restart restarts the server the bench started: not with --url")
	case cfg.soak && cfg.rate <= 0:
		return errors.New("--soak needs a --rate above 0")
	case cfg.soak && (cfg.reconnectEvery <= 0 || cfg.reportEvery <= 0):
		return errors.New("--reconnect-every and --report-every must be positive")
	case cfg.soak && (cfg.reconnectFraction < 0 || cfg.reconnectFraction > 1):
		return errors.New("--reconnect-fraction must be 0–1")
	case (cfg.soak || cfg.writes) && cfg.duration <= 0:
		return errors.New("--duration must be positive")
	case cfg.soak && cfg.timeout <= cfg.duration:
		return fmt.Errorf("--timeout (%s) must be longer than --duration (%s)", cfg.timeout, cfg.duration)
	case cfg.writes && cfg.timeout <= 2*cfg.duration:
		return fmt.Errorf("--timeout (%s) must be longer than the two phases of --duration (%s each)", cfg.timeout, cfg.duration)
	}
	return nil
}

func (cfg *config) check() error {
	if err := cfg.checkMode(); err != nil {
		return err
	}
	switch {
	case cfg.subscribers < 1 || cfg.subscribers > 100_000:
		return errors.New("--subscribers must be 1–100000")
	case cfg.events < 1:
		return errors.New("--events must be at least 1")
	case !cfg.soak && int64(cfg.subscribers)*int64(cfg.events)*int64(max(cfg.nodes, 1)) > maxSamples:
		return fmt.Errorf("--subscribers × --events (× --nodes) must be at most %d (each delivery is kept in memory)", maxSamples)
	case cfg.rate < 0:
		return errors.New("--rate must not be negative")
	case cfg.size < 0 || cfg.size > 60<<10:
		return errors.New("--size must be 0–61440 (descriptions are at most 64 KiB)")
	case cfg.publishers < 1 || cfg.publishers > 256:
		return errors.New("--publishers must be 1–256")
	case cfg.readers < 1 || cfg.readers > 64:
		return errors.New("--readers must be 1–64")
	case cfg.dialers < 1 || cfg.dialers > 1024:
		return errors.New("--dialers must be 1–1024")
	case cfg.timeout <= 0 || cfg.drain <= 0 || cfg.settle < 0 || cfg.hold < 0:
		return errors.New("--timeout and --drain must be positive, --settle and --hold not negative")
	case cfg.floor && cfg.url != "":
		return errors.New("--floor starts its own server: not with --url")
	case cfg.pid != 0 && cfg.url == "":
		return errors.New("--pid goes with --url")
	case cfg.perf != "" && cfg.url != "" && cfg.pid == 0:
		return errors.New("--perf needs the server's --pid")
	}
	if cfg.batch != "" {
		if _, err := time.ParseDuration(cfg.batch); err != nil {
			return fmt.Errorf("--batch: %w", err)
		}
	}
	if cfg.url != "" {
		if err := checkLoopbackURL(cfg.url); err != nil {
			return err
		}
	}
	return nil
}

// checkLoopbackURL accepts only http://127.x.x.x:PORT (or localhost): the subscribers
// are raw IPv4 sockets, and load goes nowhere but this machine.
func checkLoopbackURL(raw string) error {
	_, _, err := loopbackPort(raw)
	return err
}

// loopbackPort returns the URL's port, after checking that it is plain http on an
// IPv4 loopback address.
func loopbackPort(raw string) (host string, port int, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "http" || u.Port() == "" {
		return "", 0, fmt.Errorf("--url %q: want http://127.0.0.1:PORT", raw)
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	if h == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("--url %q: only an IPv4 loopback address (127.0.0.0/8) is allowed", raw)
	}
	port, err = strconv.Atoi(u.Port())
	if err != nil {
		return "", 0, fmt.Errorf("--url %q: bad port", raw)
	}
	return u.Host, port, nil
}

// result is what a run measured; fields stay zero where it got no figure.
type result struct {
	common
	connected    int64
	connectTime  time.Duration
	closedEarly  int64
	closeReasons map[string]int

	rssBefore, rssAfter, rssPeak int64
	rssOK                        bool

	publishOutcome
	phase        time.Duration
	cpu          *cpuSpan // over the phase
	serverWrites int64    // write(2) calls over the phase
	writesOK     bool
	sizeBase     int // event size before padding
	pad          int
	sizeAvg      float64
	sizeMin      int
	sizeMax      int
	expected     int64
	delivered    int64
	dup          int64
	outOfOrder   int64
	foreign      int64
	unmatched    int64
	latSend      latencySummary
	latEventTime latencySummary
	debugBefore  debugCounters
	debugAfter   debugCounters
	debugOK      bool
	perfNote     string
}

// bench runs the scenario. It returns what it measured, even when it fails midway.
func bench(cfg config, log *slog.Logger) (res *result, err error) {
	res = &result{common: common{cfg: cfg}, closeReasons: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()

	t, a, err := serverUp(ctx, cfg, &res.common, log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, t.tearDown(&res.common)) }()

	// The recorder, the tasks, and the padding: all before the first RSS reading.
	p, err := startPublishing(ctx, cfg, a)
	if err != nil {
		return res, err
	}
	defer p.rec.close()
	rec, pub := p.rec, p.pub
	res.sizeBase, res.pad = p.sizeBase, p.pad

	haveProc := res.pid != 0
	if haveProc {
		time.Sleep(cfg.settle)
		if res.rssBefore, err = rssKiB(res.pid, false); err != nil {
			return res, err
		}
	}

	// The subscribers.
	// Each reader loop holds a P of its own (see epollWait).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.readers))
	f, err := newFleet(fleetConfig{subscribers: cfg.subscribers, events: cfg.events, loops: cfg.readers,
		port: t.port, host: t.host, path: streamPath(cfg), lastEventID: -1})
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
	res.connected = f.ready.Load()
	log.Info("subscribers connected", "n", res.connected, "took", res.connectTime.Round(time.Millisecond))
	if haveProc {
		time.Sleep(cfg.settle)
		if res.rssAfter, err = rssKiB(res.pid, false); err != nil {
			return res, err
		}
		res.rssOK = true
	}
	if res.debugBefore, err = a.debug(ctx); err != nil {
		return res, err
	}
	if want := cfg.subscribers + 1; res.debugBefore.ConnectedClients < want {
		return res, fmt.Errorf("server counts %d clients, want %d (subscribers and the recorder)", res.debugBefore.ConnectedClients, want)
	}
	if err := rec.waitFor(ctx, res.debugBefore.LastSeq); err != nil {
		return res, err
	}
	seqBase := res.debugBefore.LastSeq
	f.base.Store(seqBase)
	if cfg.hold > 0 {
		log.Info("holding before publishing", "for", cfg.hold, "pid", res.pid)
		select {
		case <-time.After(cfg.hold):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}

	// The publish phase: from the first PATCH until every delivery arrived, or --drain
	// after the last PATCH.
	var perf *exec.Cmd
	if cfg.perf != "" && haveProc {
		if perf, err = startPerf(cfg.perf, res.pid); err != nil {
			return res, err
		}
	}
	log.Info("publishing", "events", cfg.events, "rate", cfg.rate)
	writes0, writesErr := int64(0), errors.New("no server pid")
	if haveProc {
		writes0, writesErr = procWrites(res.pid)
	}
	if res.cpu, err = startCPU(res.pid, t.tick); err != nil {
		return res, err
	}
	start := time.Now()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(ctx, cfg.events, cfg.rate) }()
	var drainBy <-chan time.Time // after the last PATCH
	// Looking every 10 ms ends the phase at most that late, which the CPU figures
	// hardly see; a faster tick would wake the bench's idle threads for nothing.
	check := time.NewTicker(10 * time.Millisecond)
wait:
	for {
		if drainBy == nil {
			select {
			case <-pubDone:
				drainBy = time.After(cfg.drain)
			default:
			}
		}
		all := f.delivered.Load() >= int64(cfg.subscribers)*int64(pub.sentCount()) || f.closed.Load() >= int64(cfg.subscribers)
		if drainBy != nil && all {
			break
		}
		select {
		case <-drainBy:
			break wait
		case <-ctx.Done():
			break wait
		case <-check.C:
		}
	}
	check.Stop()
	res.phase = time.Since(start)
	if err := res.cpu.stop(); err != nil {
		return res, err
	}
	if haveProc {
		if writes1, err := procWrites(res.pid); err == nil && writesErr == nil {
			res.serverWrites, res.writesOK = writes1-writes0, true
		}
		res.rssPeak, _ = rssKiB(res.pid, true)
	}
	if perf != nil {
		res.perfNote = stopPerf(perf, cfg.perf)
	}
	<-pubDone
	log.Info("publish phase over", "took", res.phase.Round(time.Millisecond))

	res.publishOutcome = pub.outcome()
	res.expected = int64(cfg.subscribers) * int64(res.published)
	recCtx, recCancel := context.WithTimeout(ctx, 2*time.Second)
	_ = rec.waitFor(recCtx, seqBase+int64(res.published)) // for the sizes; a miss shows as unmatched
	recCancel()
	if res.debugAfter, err = a.debug(ctx); err == nil {
		res.debugOK = true
	}
	f.close()
	fleetClosed = true
	res.analyze(f, rec, pub, seqBase)
	if res.delivered < res.expected {
		return res, fmt.Errorf("%d of %d deliveries missing", res.expected-res.delivered, res.expected)
	}
	return res, nil
}

// streamPath is the path and query of the subscribers' stream.
func streamPath(cfg config) string {
	if cfg.batch != "" {
		return "/events/stream?batch=" + url.QueryEscape(cfg.batch)
	}
	return "/events/stream"
}

func pidDesc(pid int) string {
	if pid == 0 {
		return "not given: no RSS or CPU figures"
	}
	return strconv.Itoa(pid)
}

// startPerf records pid's stacks at 499 Hz until stopPerf.
func startPerf(file string, pid int) (*exec.Cmd, error) {
	cmd := exec.Command("perf", "record", "-g", "-F", "499", "-p", strconv.Itoa(pid), "-o", file)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	time.Sleep(300 * time.Millisecond) // let it attach
	return cmd, nil
}

func stopPerf(cmd *exec.Cmd, file string) string {
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return fmt.Sprintf("%s (perf report -i %s --no-children)", file, file)
}
