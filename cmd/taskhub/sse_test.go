package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServer runs the server in this process on a fresh database and a free port,
// configured by flags as `taskhub serve` parses them, and returns its URL and
// database path. It stops when the test ends.
func startServer(tb testing.TB, flags ...string) (url, db string) {
	tb.Helper()
	cfg := DefaultConfig()
	if err := serveFlags(&cfg, flags, io.Discard); err != nil {
		tb.Fatal(err)
	}
	s := runServer(tb, testConfig(tb, cfg))
	return s.URL(), s.cfg.DB
}

// testConfig is cfg on a fresh database and a free port of loopback, logging nowhere.
func testConfig(tb testing.TB, cfg Config) Config {
	cfg.Addr = "127.0.0.1:0"
	cfg.DB = filepath.Join(tb.TempDir(), "taskhub.db")
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// runServer runs a Server built from cfg and closes it when the test ends, as a
// signal would: closing must succeed.
func runServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := NewServer(cfg)
	if err := s.Run(context.Background()); err != nil {
		tb.Fatalf("run: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

// sseMsg is one message of a stream: an event, or a comment line.
type sseMsg struct {
	ID, Event, Data string
	Comment         string
}

// sseStream reads a text/event-stream response byte by byte, as the spec says a
// client must: lines end in \n, \r\n or \r; a blank line ends an event; a line that
// starts with a colon is a comment.
type sseStream struct {
	resp *http.Response
	msgs chan sseMsg
	done chan struct{} // closed when the reader stops: the stream ended
}

func openStream(t *testing.T, url string, header http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMsg, 4096), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.resp.Body.Close(); <-s.done }

func (s *sseStream) read() {
	defer close(s.done)
	r := bufio.NewReader(s.resp.Body)
	var line bytes.Buffer
	var msg sseMsg
	var data []string
	dispatch := func() {
		if data != nil || msg.ID != "" || msg.Event != "" {
			msg.Data = strings.Join(data, "\n")
			s.msgs <- msg
		}
		msg, data = sseMsg{}, nil
	}
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		if b == '\r' {
			if next, err := r.Peek(1); err == nil && next[0] == '\n' {
				r.ReadByte()
			}
			b = '\n'
		}
		if b != '\n' {
			line.WriteByte(b)
			continue
		}
		l := line.String()
		line.Reset()
		if l == "" {
			dispatch()
			continue
		}
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			s.msgs <- sseMsg{Comment: value}
		case "id":
			msg.ID = value
		case "event":
			msg.Event = value
		case "data":
			data = append(data, value)
		}
	}
}

// next returns the next message, comments included.
func (s *sseStream) next(t *testing.T, within time.Duration) sseMsg {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-s.done:
		select {
		case m := <-s.msgs:
			return m
		default:
		}
		t.Fatal("the stream ended")
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
	}
	panic("unreachable")
}

// nextEvent returns the next event, skipping comments.
func (s *sseStream) nextEvent(t *testing.T, within time.Duration) sseMsg {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := s.next(t, time.Until(deadline)); m.Comment == "" {
			return m
		}
	}
}

// event is the part of an event's JSON the tests look at.
type event struct {
	Seq    int64  `json:"seq"`
	Type   string `json:"type"`
	TaskID int64  `json:"task_id"`
	Source string `json:"source"`
	Task   struct {
		Status   string `json:"status"`
		Assignee string `json:"assignee"`
	} `json:"task"`
}

// events returns the events in an SSE message: one, or a batch_update's list.
func (m sseMsg) events(t *testing.T) []event {
	t.Helper()
	if m.Event == "batch_update" {
		var b struct{ Events []event }
		if err := json.Unmarshal([]byte(m.Data), &b); err != nil {
			t.Fatalf("batch data %q: %v", m.Data, err)
		}
		return b.Events
	}
	var e event
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		t.Fatalf("event data %q: %v", m.Data, err)
	}
	if fmt.Sprint(e.Seq) != m.ID || e.Type != m.Event {
		t.Fatalf("event id %q, event %q, data %s: they disagree", m.ID, m.Event, m.Data)
	}
	return []event{e}
}

// call sends a JSON request and decodes the JSON answer into out, if not nil.
func call(t testing.TB, method, url, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// createTask creates a task from body and returns its id.
func createTask(t testing.TB, url, body string) int64 {
	t.Helper()
	var task struct{ ID int64 }
	call(t, http.MethodPost, url+"/api/tasks", body, http.StatusCreated, &task)
	return task.ID
}

func patchTask(t testing.TB, url string, id int64, body string) {
	t.Helper()
	call(t, http.MethodPatch, fmt.Sprintf("%s/api/tasks/%d", url, id), body, http.StatusOK, nil)
}
