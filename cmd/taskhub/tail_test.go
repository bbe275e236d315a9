package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer for a command running in another goroutine: it never
// blocks the writer, and tells the test each time it grows.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	grew chan struct{} // capacity 1: "look again"
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{grew: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.b.Write(p)
	b.mu.Unlock()
	select {
	case b.grew <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// await returns the contents once ok accepts them, or fails the test after within.
func (b *syncBuffer) await(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if s := b.String(); ok(s) {
			return s
		}
		select {
		case <-b.grew:
		case <-deadline.C:
			t.Fatalf("%s: not within %s; got:\n%s", what, within, b.String())
		}
	}
}

// tailRun is `taskhub tail` running in this process.
type tailRun struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
	once           sync.Once
	code           int
}

func startTail(t *testing.T, args ...string) *tailRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &tailRun{stdout: newSyncBuffer(), stderr: newSyncBuffer(), cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, append([]string{"tail"}, args...), r.stdout, r.stderr) }()
	t.Cleanup(func() {
		if code := r.stop(t); code != 0 {
			t.Errorf("tail exited %d; stderr:\n%s", code, r.stderr)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("tail's stderr:\n%s", r.stderr)
		}
	})
	return r
}

// stop cancels tail's context, as SIGINT does, and returns its exit status.
func (r *tailRun) stop(t *testing.T) int {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.code = <-r.done:
		case <-time.After(within):
			t.Fatalf("tail did not return within %s of its context ending", within)
		}
	})
	return r.code
}

// lines waits for n complete lines on stdout and returns them; it fails if there are
// more.
func (r *tailRun) lines(t *testing.T, n int) []string {
	t.Helper()
	out := r.stdout.await(t, fmt.Sprintf("%d lines of output", n), func(s string) bool {
		return strings.Count(s, "\n") >= n
	})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n, out)
	}
	return lines
}

// seqs waits for n events on stdout and returns their seqs, checking each is one JSON
// line.
func (r *tailRun) seqs(t *testing.T, n int) []int64 {
	t.Helper()
	var seqs []int64
	for _, line := range r.lines(t, n) {
		seqs = append(seqs, parseEvent(t, line).Seq)
	}
	return seqs
}

func parseEvent(t *testing.T, line string) event {
	t.Helper()
	var e event
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Seq == 0 {
		t.Fatalf("line %q is not an event: %v", line, err)
	}
	return e
}

// logged waits until stderr holds substr at least count times.
func (r *tailRun) logged(t *testing.T, substr string, count int) {
	t.Helper()
	r.stderr.await(t, fmt.Sprintf("%d× %q in the log", count, substr), func(s string) bool {
		return strings.Count(s, substr) >= count
	})
}

// consecutive returns from, from+1, ..., to.
func consecutive(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// TestTailFilters: tail prints the events made after it connects that match its
// filter flags, each as the stream's data for it, byte for byte, on one line.
func TestTailFilters(t *testing.T) {
	url, _ := startServer(t)
	before := createTask(t, url, `{"title":"made before tail","project":"site"}`)
	tr := startTail(t, "--url", url, "--project", "site", "--types", "task_updated")
	tr.logged(t, "msg=connected", 1)
	raw := openStream(t, url+"/events/stream?project=site&types=task_updated", nil)

	a := createTask(t, url, `{"title":"a","project":"site"}`)
	b := createTask(t, url, `{"title":"b","project":"other"}`)
	patchTask(t, url, a, `{"status":"in_progress"}`)  // printed
	patchTask(t, url, b, `{"status":"in_progress"}`)  // other project
	patchTask(t, url, before, `{"assignee":"alice"}`) // printed
	patchTask(t, url, a, `{"status":"done"}`)         // printed
	patchTask(t, url, b, `{"project":"site"}`)        // printed: b joins site
	// The last one is printed, and nothing before it that should not be.
	lines := tr.lines(t, 4)
	wantTasks := []int64{a, before, a, b}
	for i, line := range lines {
		e := parseEvent(t, line)
		if e.Type != "task_updated" || e.TaskID != wantTasks[i] {
			t.Errorf("line %d: %s about task %d, want task_updated about %d", i, e.Type, e.TaskID, wantTasks[i])
		}
		m := raw.nextEvent(t, within)
		if line != m.Data {
			t.Errorf("line %d:\n%s\nthe stream's data:\n%s", i, line, m.Data)
		}
	}
}

// TestTailSince replays the events after --since, then goes on live.
func TestTailSince(t *testing.T) {
	url, _ := startServer(t)
	id := createTask(t, url, `{"title":"x"}`)
	for _, s := range []string{"in_progress", "review", "done"} {
		patchTask(t, url, id, fmt.Sprintf(`{"status":%q}`, s))
	}
	tr := startTail(t, "--url", url, "--since", "2")
	if got, want := tr.seqs(t, 2), []int64{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("replayed seqs %v, want %v", got, want)
	}
	patchTask(t, url, id, `{"title":"y"}`)
	if got, want := tr.seqs(t, 3), []int64{3, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}
}

// TestTailBatch: with --batch the server sends batch_update messages, replay included;
// tail still prints one event a line.
func TestTailBatch(t *testing.T) {
	url, _ := startServer(t)
	id := createTask(t, url, `{"title":"x"}`)
	for i := range 4 {
		patchTask(t, url, id, fmt.Sprintf(`{"description":"%d"}`, i))
	}
	tr := startTail(t, "--url", url, "--since", "0", "--batch", "50ms")
	tr.seqs(t, 5)
	for i := range 3 {
		patchTask(t, url, id, fmt.Sprintf(`{"title":"%d"}`, i))
	}
	if got, want := tr.seqs(t, 8), consecutive(1, 8); !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}
}

func TestTailText(t *testing.T) {
	url, _ := startServer(t)
	id := createTask(t, url, `{"title":"Write docs"}`)
	patchTask(t, url, id, `{"status":"in_progress"}`)
	tr := startTail(t, "--url", url, "--since", "0", "--format", "text")
	lines := tr.lines(t, 2)
	for i, want := range []string{
		fmt.Sprintf(`1 task_created #%d todo "Write docs"`, id),
		fmt.Sprintf(`2 task_updated #%d in_progress "Write docs"`, id),
	} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: %q, want it to start %q", i, lines[i], want)
		}
	}
}

// serveAt runs the server in this process on addr and the database file db, and
// returns its URL and a func that stops it as SIGTERM would (also run at the end).
func serveAt(t *testing.T, addr, db string) (url string, stop func()) {
	t.Helper()
	cfg := testConfig(t, DefaultConfig())
	cfg.Addr, cfg.DB = addr, db
	s := runServer(t, cfg)
	return s.URL(), func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

// TestTailReconnectsAfterRestart stops the server, which ends the stream cleanly, and
// starts a new one on the same address and database: tail comes back by itself and
// prints every event once, in order, those made while it was away included.
func TestTailReconnectsAfterRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "taskhub.db")
	url, stop := serveAt(t, "127.0.0.1:0", db)
	id := createTask(t, url, `{"title":"x"}`)
	tr := startTail(t, "--url", url, "--since", "0")
	patchTask(t, url, id, `{"status":"in_progress"}`)
	tr.seqs(t, 2)

	stop()
	tr.logged(t, `reason="the server ended the stream"`, 1)
	url2, _ := serveAt(t, strings.TrimPrefix(url, "http://"), db)
	if url2 != url {
		t.Fatalf("restarted on %s, want %s", url2, url)
	}
	for i := range 3 { // most likely while tail waits to reconnect
		patchTask(t, url, id, fmt.Sprintf(`{"description":"away %d"}`, i))
	}
	tr.logged(t, "msg=connected", 2)
	for i := range 3 {
		patchTask(t, url, id, fmt.Sprintf(`{"description":"back %d"}`, i))
	}
	if got, want := tr.seqs(t, 8), consecutive(1, 8); !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v: a gap or a duplicate", got, want)
	}
}

// TestTailIdleTimeout: a stream that goes silent for longer than --idle-timeout is
// dropped and resumed, and nothing is lost or printed twice.
func TestTailIdleTimeout(t *testing.T) {
	url, _ := startServer(t) // keepalives every 15s: far apart
	id := createTask(t, url, `{"title":"x"}`)
	tr := startTail(t, "--url", url, "--idle-timeout", "200ms")
	tr.logged(t, "nothing received for 200ms", 1)
	patchTask(t, url, id, `{"status":"done"}`)
	tr.logged(t, "nothing received for 200ms", 2)
	patchTask(t, url, id, `{"status":"todo"}`)
	if got, want := tr.seqs(t, 2), []int64{2, 3}; !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}
}

// TestTailRefused: a request the server refuses with a 4xx, or flags tail itself
// refuses, end tail with status 2 and the reason, instead of retrying forever.
func TestTailRefused(t *testing.T) {
	url, _ := startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--status", "doing"}, `status must be a comma list of todo, in_progress, review, blocked, done, cancelled, got "doing"`},
		{[]string{"--types", "task_moved"}, "types must be a comma list"},
		{[]string{"--task-id", "abc"}, "task_id must be a comma list of task ids"},
		{[]string{"--batch", "11s"}, "batch must be a duration from 0 to 10s"},
		{[]string{"--since", "0", "--source", "email"}, "source must be a comma list"},
		{[]string{"--url", url + "/elsewhere"}, "404"},
		{[]string{"--since", "x"}, "--since must be the seq of an event"},
		{[]string{"--since", "-1"}, "--since must be the seq of an event"},
		{[]string{"--format", "xml"}, "--format must be json or text"},
		{[]string{"--url", "ftp://127.0.0.1"}, "--url must be"},
		{[]string{"--idle-timeout", "-1s"}, "--idle-timeout must not be negative"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), within)
			defer cancel()
			args := append([]string{"tail", "--url", url}, tc.args...)
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and %q", code, stdout.String(), stderr.String(), tc.want)
			}
		})
	}
}

// TestTailCancel: ending tail's context, as SIGINT and SIGTERM do, makes it exit 0,
// whether it is streaming or waiting to reconnect to a server that is not there.
func TestTailCancel(t *testing.T) {
	t.Run("streaming", func(t *testing.T) {
		url, _ := startServer(t)
		tr := startTail(t, "--url", url)
		tr.logged(t, "msg=connected", 1)
		if code := tr.stop(t); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	})
	t.Run("reconnecting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		tr := startTail(t, "--url", "http://"+addr)
		tr.logged(t, "connection refused", 3) // it keeps trying
		if code := tr.stop(t); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	})
}
