//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// common is what every run's summary starts with.
type common struct {
	cfg          config
	serverDesc   string
	pid          int
	nofileSoft   uint64
	nofileHard   uint64
	serverNoFile string
	tickDesc     string
	serverLog    string
}

// printHead writes the start of a summary; line writes one of its lines.
func (c *common) printHead(w io.Writer, line func(key, format string, args ...any)) {
	fmt.Fprintln(w, "--- taskhub-bench summary ---")
	line("command", "taskhub-bench %s", strings.Join(c.cfg.args, " "))
	line("server", "%s", c.serverDesc)
	line("open_files_limit", "bench: soft %d, hard %d (soft raised to hard before starting a server, which inherits it)", c.nofileSoft, c.nofileHard)
	if c.serverNoFile != "" {
		line("server_open_files_limit", "%s (/proc/PID/limits)", c.serverNoFile)
	}
	line("cpu_clock_tick", "%s", c.tickDesc)
}

// summaryLine returns the function that writes one "key: value" line of a summary.
func summaryLine(w io.Writer) func(key, format string, args ...any) {
	return func(key, format string, args ...any) {
		fmt.Fprintf(w, "%-40s %s\n", key+":", fmt.Sprintf(format, args...))
	}
}

// target is the server a run loads: one the bench started, or the one of --url.
type target struct {
	srv  *child // nil with --url
	url  string
	host string // host:port, for the stream's requests
	port int
	pid  int // 0: unknown
	tick time.Duration
}

// setUp raises the open-files limit and checks that it allows subscribers, then
// starts the server (or takes the one of --url) and checks the server's limit. The
// caller calls tearDown once setUp has returned a target.
func setUp(ctx context.Context, cfg config, subscribers int, c *common) (*target, error) {
	var err error
	c.nofileSoft, c.nofileHard, err = raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise the open-files limit: %w", err)
	}
	if need := uint64(subscribers) + 256; c.nofileSoft < need {
		return nil, fmt.Errorf("open-files limit %d (hard %d) is too low for %d subscribers: this process and the server each need about %d; raise the hard limit (ulimit -Hn, as root) first",
			c.nofileSoft, c.nofileHard, subscribers, need)
	}
	t := &target{}
	t.tick, c.tickDesc = clockTick()
	if cfg.url == "" {
		t.srv, err = startServer(ctx, cfg.server, cfg.serverArgs, cfg.serverEnv)
		if err != nil {
			return nil, err
		}
		t.url, t.pid = t.srv.url, t.srv.cmd.Process.Pid
		c.serverDesc = fmt.Sprintf("started %s (pid %d) at %s", strings.Join(append([]string{cfg.server, "serve"}, cfg.serverArgs...), " "), t.pid, t.url)
		if cfg.floor {
			c.serverDesc = fmt.Sprintf("started the floor server, not taskhub (pid %d) at %s", t.pid, t.url)
		}
	} else {
		t.url, t.pid = cfg.url, cfg.pid
		c.serverDesc = fmt.Sprintf("running server at %s (pid %s)", t.url, pidDesc(cfg.pid))
	}
	c.pid = t.pid
	if t.host, t.port, err = loopbackPort(t.url); err == nil {
		err = t.checkNoFile(subscribers, c)
	}
	if err != nil {
		return nil, errors.Join(err, t.tearDown(c))
	}
	return t, nil
}

// checkNoFile checks that the server may open a file for each subscriber.
func (t *target) checkNoFile(subscribers int, c *common) error {
	if t.pid == 0 {
		return nil
	}
	soft, hard, err := procNoFile(t.pid)
	if err != nil {
		return err
	}
	c.serverNoFile = fmt.Sprintf("soft %s, hard %s", soft, hard)
	if n, err := strconv.Atoi(soft); err == nil && n < subscribers+64 {
		return fmt.Errorf("the server's open-files limit (%s) is too low for %d subscribers", c.serverNoFile, subscribers)
	}
	return nil
}

// restart stops the server the bench started and starts it again on its database.
func (t *target) restart(ctx context.Context, c *common) error {
	if err := t.srv.restart(ctx); err != nil {
		return err
	}
	t.url, t.pid = t.srv.url, t.srv.cmd.Process.Pid
	c.pid = t.pid
	c.serverDesc += fmt.Sprintf("; restarted on its database (pid %d) at %s", t.pid, t.url)
	var err error
	t.host, t.port, err = loopbackPort(t.url)
	return err
}

// tearDown stops the server if the bench started it, and notes its log if the log
// has anything in it.
func (t *target) tearDown(c *common) error {
	if t.srv == nil {
		return nil
	}
	err := t.srv.stop()
	if t.srv.logTail() != "" {
		c.serverLog = t.srv.logPath()
	}
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// serverUp sets up the server of a run (see setUp) with room for cfg.subscribers,
// and returns it with an API client for the publishers and the bench's own calls.
func serverUp(ctx context.Context, cfg config, c *common, log *slog.Logger) (*target, *api, error) {
	t, err := setUp(ctx, cfg, cfg.subscribers, c)
	if err != nil {
		return nil, nil, err
	}
	log.Info("server up", "url", t.url, "pid", t.pid)
	return t, newAPI(t.url, cfg.publishers+2), nil
}

// publishing is what a run that publishes starts with: the recorder of the server's
// events, and the publishers with their tasks made and padded (see prepare).
type publishing struct {
	rec           *recorder // closed by the run
	pub           *publisher
	sizeBase, pad int
}

// startPublishing starts the recorder on a and prepares the publishers.
func startPublishing(ctx context.Context, cfg config, a *api) (*publishing, error) {
	rec, err := startRecorder(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	pub, sizeBase, pad, err := prepare(ctx, cfg, a, rec)
	if err != nil {
		rec.close()
		return nil, err
	}
	return &publishing{rec: rec, pub: pub, sizeBase: sizeBase, pad: pad}, nil
}

// prepare makes the publishers' tasks, one each, and pads their descriptions so that
// their events are about cfg.size bytes. The recorder tells the size of an event
// unpadded, sizeBase, and pad is what was added.
func prepare(ctx context.Context, cfg config, a *api, rec *recorder) (pub *publisher, sizeBase, pad int, err error) {
	pub = &publisher{api: a, sent: map[sendKey]time.Time{}}
	for w := range cfg.publishers {
		var t task
		if err := a.do(ctx, "POST", "/api/tasks", map[string]string{"title": title(999_999_000 + w)}, 201, &t); err != nil {
			return nil, 0, 0, err
		}
		pub.tasks = append(pub.tasks, t.ID)
	}
	var warm task
	for w, id := range pub.tasks {
		if err := a.do(ctx, "PATCH", fmt.Sprintf("/api/tasks/%d", id), map[string]string{"title": title(999_999_500 + w)}, 200, &warm); err != nil {
			return nil, 0, 0, err
		}
	}
	d, err := a.debug(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := rec.waitFor(ctx, d.LastSeq); err != nil {
		return nil, 0, 0, err
	}
	if e, ok := rec.get(d.LastSeq); ok {
		sizeBase = e.size
	}
	if cfg.size > sizeBase {
		pad = cfg.size - sizeBase
		desc := strings.Repeat("x", pad)
		for _, id := range pub.tasks {
			if err := a.do(ctx, "PATCH", fmt.Sprintf("/api/tasks/%d", id), map[string]string{"description": desc}, 200, nil); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	return pub, sizeBase, pad, nil
}
