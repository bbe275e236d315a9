package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"
)

// Reconnection backoff of tail: it doubles from the first to the longest wait, and
// starts again from the first after every connection the server accepted.
const (
	tailFirstWait = 250 * time.Millisecond
	tailLongWait  = 10 * time.Second
)

// tailMaxEvent is the largest SSE event tail reads. The r3labs client's default,
// 64 KiB, is smaller than one event about a task with a long description, and a
// batch_update holds many events.
const tailMaxEvent = 64 << 20

// tailFilters maps each filter flag of tail to the stream's query parameter.
var tailFilters = []struct{ flag, param, usage string }{
	{"types", "types", "only events of these `types` (comma list: task_created, task_updated, ...)"},
	{"task-id", "task_id", "only events about these task `ids` (comma list)"},
	{"assignee", "assignee", "only tasks assigned to one of these `names` (comma list)"},
	{"project", "project", "only tasks of these `projects` (comma list)"},
	{"status", "status", "only tasks with one of these `statuses` (comma list)"},
	{"label", "label", "only tasks with one of these `labels` (comma list)"},
	{"source", "source", "only events from these `sources` (comma list: rest_api, mcp_tool, ...)"},
}

func tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskhub tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the server's base `URL`")
	token := fs.String("token", "", "send this bearer `token`")
	since := fs.String("since", "", "first replay the events after this `seq` (0: all of them); without it, only events from now on")
	format := fs.String("format", "json", "output `format`: json (each event's JSON on one line) or text (a short line each)")
	batch := fs.Duration("batch", 0, "let the server gather the events of each `window` (0 to 10s) into one message; each event is still printed on its own line")
	idle := fs.Duration("idle-timeout", time.Minute, "reconnect after this `duration` without a byte from the server, not even a keepalive (0: never); keep it above the server's --keepalive")
	filters := make([]*string, len(tailFilters))
	for i, f := range tailFilters {
		filters[i] = fs.String(f.flag, "", f.usage)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("%w: --url must be the server's http:// or https:// base URL, such as http://127.0.0.1:8080, got %q", errUsage, *base)
	}
	if *format != "json" && *format != "text" {
		return fmt.Errorf("%w: --format must be json or text, got %q", errUsage, *format)
	}
	if *idle < 0 {
		return fmt.Errorf("%w: --idle-timeout must not be negative, got %s", errUsage, *idle)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "tail")
	t := &tailer{log: logger, out: stdout, text: *format == "text"}
	if *since != "" {
		if t.last, err = strconv.ParseInt(*since, 10, 64); err != nil || t.last < 0 {
			return fmt.Errorf("%w: --since must be the seq of an event (0 or more), got %q", errUsage, *since)
		}
		t.haveLast = true
	}
	q := url.Values{}
	for i, f := range tailFilters {
		if v := strings.TrimSpace(*filters[i]); v != "" {
			q.Set(f.param, v)
		}
	}
	if *batch != 0 {
		q.Set("batch", batch.String()) // the server checks the range, and says so
	}
	stream := u.JoinPath("events", "stream")
	stream.RawQuery = q.Encode()
	t.logEnd = u.JoinPath("api", "events")
	t.logEnd.RawQuery = url.Values{"after": {strconv.FormatInt(1<<63-1, 10)}, "limit": {"1"}}.Encode()

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = *idle // a server that accepts and never answers
	defer transport.CloseIdleConnections()
	t.http = &http.Client{Transport: idleTransport{base: transport, timeout: *idle}}
	t.headers = map[string]string{"User-Agent": "taskhub-tail/" + version}
	if *token != "" {
		t.headers["Authorization"] = "Bearer " + *token
	}
	c := sse.NewClient(stream.String(), sse.ClientMaxBufferSize(tailMaxEvent))
	c.Connection = t.http
	c.Headers = t.headers
	c.ResponseValidator = t.validate
	// One connection per subscribe call: the loop in tailer.run decides what comes
	// next, which the client's own retrying cannot be made to do (see tailer).
	c.ReconnectStrategy = &backoff.StopBackOff{}
	t.client = c
	return t.run(ctx)
}

// tailer prints the events of one stream, across as many connections as it takes.
//
// It drives the r3labs/sse client one connection at a time instead of letting it
// retry, because that client, left to itself:
//   - returns nil when the server ends the stream cleanly (a server restart), as if
//     the subscription were over, and does not reconnect;
//   - retries with a backoff that gives up 15 minutes after the subscription began (so
//     the first drop after 15 minutes of streaming ends it), and does not stop
//     retrying when the context ends unless the backoff is told about the context;
//   - retries an answer such as 400 (for those 15 minutes), after closing its body
//     unread, so the server's reason is lost;
//   - advances its LastEventID as soon as it parses an event, even one cut short by a
//     dropped connection (its scanner hands over the partial event at a read error).
//
// So tail sets Last-Event-ID itself before each connection, to the last seq it has
// printed; checks each event's data before printing it; and runs the loop.
//
// All of its fields are used by one goroutine: the r3labs client calls the response
// validator and the handler on the goroutine that subscribes.
type tailer struct {
	client  *sse.Client
	http    *http.Client
	headers map[string]string
	logEnd  *url.URL // where to ask for the seq the log ends at
	log     *slog.Logger
	out     io.Writer
	text    bool

	last     int64 // the seq of the last event printed, or to resume after
	haveLast bool

	// Per connection.
	accepted bool               // the server answered with a stream
	drop     context.CancelFunc // ends the connection
	dropErr  error              // why the handler ended it
	outErr   error              // printing failed: tail is over
	buf      []byte
}

// refusal is an error answer of the server.
type refusal struct {
	status               int
	code, message, field string
}

func (r *refusal) Error() string {
	s := fmt.Sprintf("%d %s", r.status, http.StatusText(r.status))
	if r.code != "" {
		s = fmt.Sprintf("%d %s", r.status, r.code)
	}
	if r.message != "" {
		s += ": " + r.message
	}
	if r.field != "" {
		s += " (field " + r.field + ")"
	}
	return s
}

// permanent reports whether asking again cannot help: a 4xx answer means the request
// itself is wrong (a bad filter, a missing token), except for these two.
func (r *refusal) permanent() bool {
	return r.status >= 400 && r.status < 500 &&
		r.status != http.StatusRequestTimeout && r.status != http.StatusTooManyRequests
}

// errNotStream is a 200 answer that is not an event stream: --url names something
// other than a TaskHub server.
var errNotStream = errors.New("the answer is not an event stream")

func (t *tailer) run(ctx context.Context) error {
	wait := tailFirstWait
	for {
		err := t.connect(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case t.outErr != nil:
			return fmt.Errorf("write the events: %w", t.outErr)
		case errors.Is(err, errNotStream):
			return fmt.Errorf("%s: %w", t.client.URL, err)
		case errors.Is(err, bufio.ErrTooLong):
			return fmt.Errorf("an event is larger than %d MiB, which tail does not read: %w", tailMaxEvent>>20, err)
		}
		var r *refusal
		if errors.As(err, &r) && r.permanent() {
			return fmt.Errorf("%w: the server refused: %v", errUsage, r)
		}
		if t.accepted {
			wait = tailFirstWait
		}
		reason := "the server ended the stream"
		if err != nil {
			reason = err.Error()
		}
		d := jitter(wait)
		args := []any{"reason", reason, "in", d.Round(time.Millisecond)}
		if t.haveLast {
			args = append(args, "after_seq", t.last)
		}
		t.log.Warn("reconnecting", args...)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		wait = min(2*wait, tailLongWait)
	}
}

// jitter spreads d by up to a fifth either way, so that the clients of a restarted
// server do not all come back at once.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + rand.N(2*d/5+1)
}

// connect reads one connection of the stream, from the last seq printed, until it
// ends; nil means the server ended it cleanly.
func (t *tailer) connect(ctx context.Context) error {
	t.accepted, t.dropErr = false, nil
	if !t.haveLast {
		// Without --since, start where the log ends now rather than with no
		// Last-Event-ID at all: a connection dropped before the first event would
		// otherwise resume from nowhere and lose what happened meanwhile.
		last, err := t.lookUpLogEnd(ctx)
		if err != nil {
			return err
		}
		t.last, t.haveLast = last, true
	}
	t.client.LastEventID.Store([]byte(strconv.FormatInt(t.last, 10)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.drop = cancel
	err := t.client.SubscribeRawWithContext(ctx, t.handle)
	if t.dropErr != nil {
		return t.dropErr
	}
	return err
}

// lookUpLogEnd asks the server for the seq of the last event in its log.
func (t *tailer) lookUpLogEnd(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.logEnd.String(), nil)
	if err != nil {
		return 0, err
	}
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, refused(resp)
	}
	var page struct {
		LastSeq *int64 `json:"last_seq"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || page.LastSeq == nil {
		return 0, fmt.Errorf("GET %s: the answer has no last_seq (%v): is this a TaskHub server?", t.logEnd.Redacted(), err)
	}
	return *page.LastSeq, nil
}

// validate checks the server's answer before the client reads it as a stream.
func (t *tailer) validate(_ *sse.Client, resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return refused(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return fmt.Errorf("%w (Content-Type %q)", errNotStream, resp.Header.Get("Content-Type"))
	}
	t.accepted = true
	t.log.Info("connected", "url", t.client.URL, "after_seq", t.last)
	return nil
}

// refused reads the error of an answer other than 200.
func refused(resp *http.Response) error {
	r := &refusal{status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct{ Code, Message, Field string }
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		r.code, r.message, r.field = body.Error.Code, body.Error.Message, body.Error.Field
	} else if s := strings.TrimSpace(string(b)); s != "" {
		first, _, _ := strings.Cut(s, "\n")
		if len(first) > 200 {
			first = first[:200] + "..."
		}
		r.message = first
	}
	return r
}

// handle prints one event of the stream.
func (t *tailer) handle(e *sse.Event) {
	if t.dropErr != nil || t.outErr != nil {
		return // the connection is being dropped: what follows is printed after it
	}
	if len(e.Data) == 0 {
		return // the preamble's retry field, or an event cut short before its data
	}
	// The client fills in its own LastEventID for an event without an id, so an id
	// that is not a new seq is not an error; it is just not news.
	seq, seqErr := strconv.ParseInt(string(e.ID), 10, 64)
	t.buf = t.buf[:0]
	switch string(e.Event) {
	case "reset":
		t.log.Warn("the server no longer holds the events after the last one printed: they were pruned, and are lost to this tail; it goes on with new events",
			"after_seq", t.last, "data", string(e.Data))
		return
	case "batch_update":
		var b struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(e.Data, &b); err != nil {
			t.dropConn(fmt.Errorf("a malformed batch_update (id %q): %w", e.ID, err))
			return
		}
		for _, ev := range b.Events {
			t.appendEvent(ev)
		}
	default:
		if !json.Valid(e.Data) {
			// Most likely an event cut short by a broken connection, which the client
			// hands over as if it were whole. Reconnecting replays it.
			t.dropConn(fmt.Errorf("an event (id %q) whose data is not JSON: cut short?", e.ID))
			return
		}
		t.appendEvent(e.Data)
	}
	if seqErr == nil && seq < t.last {
		t.log.Warn("the seq went back: is the server on another database?", "seq", seq, "after_seq", t.last)
	}
	if _, err := t.out.Write(t.buf); err != nil {
		t.outErr = err
		t.drop()
		return
	}
	if seqErr == nil {
		t.last = seq
	}
}

func (t *tailer) dropConn(err error) {
	t.dropErr = err
	t.drop()
}

// appendEvent appends one line for the event JSON data to t.buf.
func (t *tailer) appendEvent(data []byte) {
	if !t.text {
		if bytes.ContainsAny(data, "\r\n") { // one event, one line, whatever the server sent
			var b bytes.Buffer
			if json.Compact(&b, data) == nil {
				data = b.Bytes()
			}
		}
		t.buf = append(append(t.buf, data...), '\n')
		return
	}
	var e struct {
		Seq    int64  `json:"seq"`
		Type   string `json:"type"`
		TaskID int64  `json:"task_id"`
		Actor  string `json:"actor"`
		Task   *struct {
			Status string `json:"status"`
			Title  string `json:"title"`
		} `json:"task"`
	}
	if json.Unmarshal(data, &e) != nil {
		t.buf = append(append(t.buf, data...), '\n')
		return
	}
	t.buf = fmt.Appendf(t.buf, "%d %s", e.Seq, e.Type)
	if e.TaskID != 0 {
		t.buf = fmt.Appendf(t.buf, " #%d", e.TaskID)
	}
	if e.Task != nil {
		t.buf = fmt.Appendf(t.buf, " %s %q", e.Task.Status, e.Task.Title)
	}
	if e.Actor != "" {
		t.buf = fmt.Appendf(t.buf, " by %s", e.Actor)
	}
	t.buf = append(t.buf, '\n')
}

// idleTransport ends a response whose body has been silent for longer than timeout:
// a server that stopped sending, even keepalives, or a connection that died without a
// word, would otherwise hold tail forever.
type idleTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

func (it idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := it.base.RoundTrip(req)
	if err != nil || it.timeout <= 0 {
		return resp, err
	}
	b := &idleBody{ReadCloser: resp.Body, timeout: it.timeout}
	b.timer = time.AfterFunc(it.timeout, func() { b.idle.Store(true); b.ReadCloser.Close() })
	resp.Body = b
	return resp, nil
}

type idleBody struct {
	io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	idle    atomic.Bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.idle.Load() {
		return n, fmt.Errorf("nothing received for %s, not even a keepalive", b.timeout)
	}
	if n > 0 {
		b.timer.Reset(b.timeout)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}
