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
	server      string
	floor       bool
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
	cfg := config{args: args}
	fs := flag.NewFlagSet("taskhub-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.server, "server", "bin/taskhub", "taskhub `binary` to start on 127.0.0.1:0 with a temp database (ignored with --url)")
	fs.Var(&cfg.serverArgs, "server-arg", "extra `argument` for taskhub serve, e.g. --server-arg=--stream-queue=4096 (repeatable)")
	fs.Var(&cfg.serverEnv, "server-env", "extra `KEY=VALUE` in the started server's environment, e.g. GODEBUG=gctrace=1 (repeatable)")
	fs.BoolVar(&cfg.floor, "floor", false, "start the floor server (this binary as `taskhub-bench serve`: no store, no filters, one write per event) instead of taskhub, to see what the machine itself allows for the same load")
	fs.StringVar(&cfg.url, "url", "", "`URL` of a running server on a loopback address, instead of starting one")
	fs.IntVar(&cfg.pid, "pid", 0, "with --url: the server's process `id`, for RSS and CPU figures")
	fs.IntVar(&cfg.subscribers, "subscribers", 100, "SSE subscribers to open")
	fs.IntVar(&cfg.events, "events", 100, "events to publish (one PATCH each)")
	fs.Float64Var(&cfg.rate, "rate", 100, "`rate` in events per second; 0 publishes as fast as --publishers allow")
	fs.IntVar(&cfg.size, "size", 0, "pad each task's description so that an event's JSON is about this many `bytes` (0: no padding); the summary tells the size measured")
	fs.StringVar(&cfg.batch, "batch", "", "stream batch `window` for the subscribers, e.g. 250ms (default none)")
	fs.IntVar(&cfg.publishers, "publishers", 4, "concurrent PATCH clients, one task each")
	fs.IntVar(&cfg.readers, "readers", 1, "epoll threads reading the subscribers")
	fs.IntVar(&cfg.dialers, "dialers", 32, "subscribers connecting at once")
	fs.DurationVar(&cfg.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "how long to wait for deliveries after the last PATCH")
	fs.DurationVar(&cfg.settle, "settle", time.Second, "pause before each RSS reading")
	fs.StringVar(&cfg.perf, "perf", "", "record the server with perf record -g into this `file` during the publish phase")
	fs.DurationVar(&cfg.hold, "hold", 0, "pause this long with every subscriber connected, before publishing (time to take a heap profile of the server)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
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
	res, err := bench(cfg, log)
	if res != nil {
		res.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "taskhub-bench: %v\n", err)
		return 1
	}
	return 0
}

func (cfg *config) check() error {
	switch {
	case cfg.subscribers < 1 || cfg.subscribers > 100_000:
		return errors.New("--subscribers must be 1–100000")
	case cfg.events < 1:
		return errors.New("--events must be at least 1")
	case int64(cfg.subscribers)*int64(cfg.events) > maxSamples:
		return fmt.Errorf("--subscribers × --events must be at most %d (each delivery is kept in memory)", maxSamples)
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
	cfg          config
	serverDesc   string
	pid          int
	nofileSoft   uint64
	nofileHard   uint64
	serverNoFile string
	tickDesc     string
	connected    int64
	connectTime  time.Duration
	closedEarly  int64
	closeReasons map[string]int

	rssBefore, rssAfter, rssPeak int64
	rssOK                        bool

	published    int
	publishErrs  []error
	publishSpan  time.Duration
	publishLate  time.Duration
	phase        time.Duration
	serverCPU    cpuTimes
	cpuOK        bool
	serverWrites int64 // write(2) calls over the phase
	writesOK     bool
	selfCPU      cpuTimes
	machineBusy  time.Duration // all CPUs, over the phase
	machineTotal time.Duration
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
	serverLog    string
	perfNote     string
}

// bench runs the scenario. It returns what it measured, even when it fails midway.
func bench(cfg config, log *slog.Logger) (res *result, err error) {
	res = &result{cfg: cfg, closeReasons: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()

	res.nofileSoft, res.nofileHard, err = raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise the open-files limit: %w", err)
	}
	if need := uint64(cfg.subscribers) + 256; res.nofileSoft < need {
		return nil, fmt.Errorf("open-files limit %d (hard %d) is too low for %d subscribers: this process and the server each need about %d; raise the hard limit (ulimit -Hn, as root) first",
			res.nofileSoft, res.nofileHard, cfg.subscribers, need)
	}
	var tick time.Duration
	tick, res.tickDesc = clockTick()

	// The server.
	var srv *child
	base := cfg.url
	if cfg.url == "" {
		srv, err = startServer(ctx, cfg.server, cfg.serverArgs, cfg.serverEnv)
		if err != nil {
			return nil, err
		}
		defer func() {
			if stopErr := srv.stop(); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("server: %w", stopErr))
			}
			if tail := srv.logTail(); tail != "" {
				res.serverLog = srv.logPath()
			}
		}()
		base, res.pid = srv.url, srv.cmd.Process.Pid
		res.serverDesc = fmt.Sprintf("started %s (pid %d) at %s", strings.Join(append([]string{cfg.server, "serve"}, cfg.serverArgs...), " "), res.pid, base)
		if cfg.floor {
			res.serverDesc = fmt.Sprintf("started the floor server, not taskhub (pid %d) at %s", res.pid, base)
		}
	} else {
		res.pid = cfg.pid
		res.serverDesc = fmt.Sprintf("running server at %s (pid %s)", base, pidDesc(cfg.pid))
	}
	host, port, err := loopbackPort(base)
	if err != nil {
		return res, err
	}
	a := newAPI(base, cfg.publishers+2)
	log.Info("server up", "url", base, "pid", res.pid)

	// The recorder, the tasks, and the padding: all before the first RSS reading.
	rec, err := startRecorder(ctx, a)
	if err != nil {
		return res, fmt.Errorf("recorder: %w", err)
	}
	defer rec.close()
	pub := &publisher{api: a, sent: map[sendKey]time.Time{}}
	for w := range cfg.publishers {
		var t task
		if err := a.do(ctx, "POST", "/api/tasks", map[string]string{"title": title(999_999_000 + w)}, 201, &t); err != nil {
			return res, err
		}
		pub.tasks = append(pub.tasks, t.ID)
	}
	var warm task
	for w, id := range pub.tasks {
		if err := a.do(ctx, "PATCH", fmt.Sprintf("/api/tasks/%d", id), map[string]string{"title": title(999_999_500 + w)}, 200, &warm); err != nil {
			return res, err
		}
	}
	d, err := a.debug(ctx)
	if err != nil {
		return res, err
	}
	if err := rec.waitFor(ctx, d.LastSeq); err != nil {
		return res, err
	}
	if e, ok := rec.get(d.LastSeq); ok {
		res.sizeBase = e.size
	}
	if cfg.size > res.sizeBase {
		res.pad = cfg.size - res.sizeBase
		desc := strings.Repeat("x", res.pad)
		for _, id := range pub.tasks {
			if err := a.do(ctx, "PATCH", fmt.Sprintf("/api/tasks/%d", id), map[string]string{"description": desc}, 200, nil); err != nil {
				return res, err
			}
		}
	}

	haveProc := res.pid != 0
	if haveProc {
		soft, hard, err := procNoFile(res.pid)
		if err != nil {
			return res, err
		}
		res.serverNoFile = fmt.Sprintf("soft %s, hard %s", soft, hard)
		if n, err := strconv.Atoi(soft); err == nil && n < cfg.subscribers+64 {
			return res, fmt.Errorf("the server's open-files limit (%s) is too low for %d subscribers", res.serverNoFile, cfg.subscribers)
		}
	}
	if haveProc {
		time.Sleep(cfg.settle)
		if res.rssBefore, err = rssKiB(res.pid, false); err != nil {
			return res, err
		}
	}

	// The subscribers.
	// Each reader loop holds a P of its own (see epollWait).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.readers))
	f, err := newFleet(cfg.subscribers, cfg.events, cfg.readers)
	if err != nil {
		return res, err
	}
	fleetClosed := false
	defer func() {
		if !fleetClosed {
			f.close()
		}
	}()
	path := "/events/stream"
	if cfg.batch != "" {
		path += "?batch=" + url.QueryEscape(cfg.batch)
	}
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: taskhub-bench\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n")
	log.Info("connecting subscribers", "n", cfg.subscribers)
	t0 := time.Now()
	if err := f.connect(ctx, port, request, cfg.dialers); err != nil {
		return res, err
	}
	for f.ready.Load()+f.closed.Load() < int64(cfg.subscribers) {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%d of %d subscribers got a response: %w", f.ready.Load(), cfg.subscribers, ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.connectTime = time.Since(t0)
	res.connected = f.ready.Load()
	if c := f.closed.Load(); c > 0 {
		return res, fmt.Errorf("%d subscribers failed while connecting: %v", c, firstCloseErr(f))
	}
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
	cpu0, err := procCPUIf(haveProc, res.pid, tick)
	if err != nil {
		return res, err
	}
	writes0, writesErr := int64(0), errors.New("no server pid")
	if haveProc {
		writes0, writesErr = procWrites(res.pid)
	}
	busy0, total0, _ := machineCPU(tick)
	self0, start := selfCPU(), time.Now()
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
	res.selfCPU = selfCPU().sub(self0)
	if busy1, total1, err := machineCPU(tick); err == nil && total1 > total0 {
		res.machineBusy, res.machineTotal = busy1-busy0, total1-total0
	}
	if haveProc {
		cpu1, err := procCPU(res.pid, tick)
		if err != nil {
			return res, err
		}
		res.serverCPU, res.cpuOK = cpu1.sub(cpu0), true
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

	res.published = len(pub.sent)
	res.publishErrs = pub.errs
	res.publishLate = pub.late
	if res.published > 1 {
		res.publishSpan = pub.last.Sub(pub.first)
	}
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

func pidDesc(pid int) string {
	if pid == 0 {
		return "not given: no RSS or CPU figures"
	}
	return strconv.Itoa(pid)
}

func procCPUIf(ok bool, pid int, tick time.Duration) (cpuTimes, error) {
	if !ok {
		return cpuTimes{}, nil
	}
	return procCPU(pid, tick)
}

func firstCloseErr(f *fleet) error {
	for _, s := range f.subs {
		if s.closed {
			return s.closeErr
		}
	}
	return nil
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
