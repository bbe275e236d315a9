package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"taskhub/api"
	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
	"taskhub/web"
)

// apiTask is a task as the contract (§2) puts it on the wire. Pointers are the fields
// that may be null.
type apiTask struct {
	ID          int64    `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Status      string   `json:"status"`
	Priority    string   `json:"priority"`
	Assignee    string   `json:"assignee"`
	Project     string   `json:"project"`
	Labels      []string `json:"labels"`
	ParentID    *int64   `json:"parent_id"`
	DependsOn   []int64  `json:"depends_on"`
	DueAt       *string  `json:"due_at"`
	Version     int64    `json:"version"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
	CreatedBy   string   `json:"created_by"`
	UpdatedBy   string   `json:"updated_by"`
}

// apiEvent is an entry of the event log (§4).
type apiEvent struct {
	Seq     int64                         `json:"seq"`
	Type    string                        `json:"type"`
	TaskID  int64                         `json:"task_id"`
	Source  string                        `json:"source"`
	Actor   string                        `json:"actor"`
	Time    string                        `json:"time"`
	Task    *apiTask                      `json:"task"`
	Changes map[string][2]json.RawMessage `json:"changes"`
}

type taskPage struct {
	Tasks      []apiTask `json:"tasks"`
	NextCursor string    `json:"next_cursor"`
}

type eventPage struct {
	Events  []apiEvent `json:"events"`
	LastSeq int64      `json:"last_seq"`
}

// chunked is a request body sent without Content-Length (Transfer-Encoding: chunked).
type chunked string

// hdr is the request headers of a call to do.
type hdr map[string]string

// jsonCT is the header of a JSON request body.
var jsonCT = hdr{"Content-Type": "application/json"}

// patchCT is the header of a JSON merge patch, optionally conditional on etag.
func patchCT(etag string) hdr {
	h := hdr{"Content-Type": "application/merge-patch+json"}
	if etag != "" {
		h["If-Match"] = etag
	}
	return h
}

// server is a TaskHub API over a real SQLite file, served over real HTTP.
type server struct {
	*httptest.Server
}

// newServer starts the API over a fresh database in t.TempDir, with logs discarded.
func newServer(t *testing.T) *server {
	t.Helper()
	return newServerWithLogger(t, slog.New(slog.DiscardHandler))
}

func newServerWithLogger(t *testing.T, logger *slog.Logger) *server {
	t.Helper()
	return startServer(t, logger, false)
}

// newFullServer is newServer with the event stream and the dashboard mounted, as
// taskhub serve mounts them.
func newFullServer(t *testing.T) *server {
	t.Helper()
	return startServer(t, slog.New(slog.DiscardHandler), true)
}

// openDB opens a database in a new file of t's, closed when t ends: after the
// cleanups registered later, such as those of the servers on it.
func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "taskhub.db"))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	})
	return db
}

func startServer(t *testing.T, logger *slog.Logger, full bool) *server {
	t.Helper()
	// Cleanups run last in, first out: the server stops, then the hub, then the
	// database closes.
	db := openDB(t)
	cfg := api.Config{Service: tasks.NewService(db), Logger: logger}
	if full {
		hub := startHub(t, db, logger)
		cfg.Stream, cfg.Debug, cfg.Web = hub, hub.Debug(), http.FileServerFS(web.FS())
	}
	ts := httptest.NewServer(api.New(cfg))
	t.Cleanup(ts.Close)
	return &server{ts}
}

// startHub runs a hub fed by a tailer of store's log, as taskhub serve runs them,
// until t ends.
func startHub(t *testing.T, store tasks.Store, logger *slog.Logger) *broadcaster.Hub {
	t.Helper()
	hub := broadcaster.New(broadcaster.Config{Log: tasklog.Log{Store: store}, Vocabulary: api.StreamVocabulary(), Logger: logger})
	tailer, err := tasks.NewTailer(context.Background(), store, tasks.TailerConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Prime(context.Background(), tailer.Seq()); err != nil {
		t.Fatal(err)
	}
	tailer.Listen(tasklog.Publish(hub))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { hub.Run(ctx) })
	wg.Go(func() { tailer.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return hub
}

// send makes one request and reads the whole response. It is do without a *testing.T,
// for goroutines other than the test's own.
func (s *server) send(method, path string, body any, h hdr) (int, http.Header, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case chunked:
		r = struct{ io.Reader }{strings.NewReader(string(b))} // hides the length
	default:
		return 0, nil, nil, fmt.Errorf("unsupported body type %T", body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if _, ok := body.(chunked); ok {
		req.ContentLength = -1
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response of %s %s: %w", method, path, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// do makes one request and returns the status, headers and body of the response.
// body is nil, a string or []byte (sent with Content-Length), or chunked.
func (s *server) do(t testing.TB, method, path string, body any, h hdr) (int, http.Header, []byte) {
	t.Helper()
	status, header, b, err := s.send(method, path, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, header, b
}

// decode unmarshals a JSON response body, failing the test if it is not one.
func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, truncate(body), err)
	}
	return v
}

func truncate(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// wantStatus fails the test unless the response has status want.
func wantStatus(t testing.TB, method, path string, got, want int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("%s %s: status = %d, want %d; body %s", method, path, got, want, truncate(body))
	}
}

// create posts body as a new task and returns it, failing the test unless it is 201.
func (s *server) create(t testing.TB, body string) apiTask {
	t.Helper()
	status, _, b := s.do(t, "POST", "/api/tasks", body, jsonCT)
	wantStatus(t, "POST", "/api/tasks", status, http.StatusCreated, b)
	return decode[apiTask](t, b)
}

// createTitled creates a task with only a title.
func (s *server) createTitled(t testing.TB, title string) apiTask {
	t.Helper()
	return s.create(t, fmt.Sprintf(`{"title": %q}`, title))
}

// get returns the task with id, failing the test unless it is 200.
func (s *server) get(t testing.TB, id int64) apiTask {
	t.Helper()
	path := taskPath(id)
	status, _, b := s.do(t, "GET", path, nil, nil)
	wantStatus(t, "GET", path, status, http.StatusOK, b)
	return decode[apiTask](t, b)
}

// patch applies a merge patch to the task with id and returns the result, failing the
// test unless it is 200.
func (s *server) patch(t testing.TB, id int64, body string) apiTask {
	t.Helper()
	path := taskPath(id)
	status, _, b := s.do(t, "PATCH", path, body, patchCT(""))
	wantStatus(t, "PATCH", path, status, http.StatusOK, b)
	return decode[apiTask](t, b)
}

// list returns the page of GET /api/tasks?query, failing the test unless it is 200.
func (s *server) list(t testing.TB, query string) taskPage {
	t.Helper()
	return getOK[taskPage](t, s, "/api/tasks?"+query)
}

// events returns GET /api/events?query, failing the test unless it is 200.
func (s *server) events(t testing.TB, query string) eventPage {
	t.Helper()
	return getOK[eventPage](t, s, "/api/events?"+query)
}

// getOK returns the body of GET path as a T, failing the test unless it is 200.
func getOK[T any](t testing.TB, s *server, path string) T {
	t.Helper()
	status, _, b := s.do(t, "GET", path, nil, nil)
	wantStatus(t, "GET", path, status, http.StatusOK, b)
	return decode[T](t, b)
}

// taskEvents returns the history of the task with id.
func (s *server) taskEvents(t testing.TB, id int64) []apiEvent {
	t.Helper()
	path := taskPath(id) + "/events"
	status, _, b := s.do(t, "GET", path, nil, nil)
	wantStatus(t, "GET", path, status, http.StatusOK, b)
	return decode[struct {
		Events []apiEvent `json:"events"`
	}](t, b).Events
}

// lastSeq returns the seq of the newest event in the log.
func (s *server) lastSeq(t testing.TB) int64 {
	t.Helper()
	return s.events(t, "after=9223372036854775807&limit=1").LastSeq
}

// eventsAfter returns every event after seq, following last_seq.
func (s *server) eventsAfter(t testing.TB, seq int64) []apiEvent {
	t.Helper()
	var all []apiEvent
	for {
		page := s.events(t, fmt.Sprintf("after=%d&limit=1000", seq))
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		seq = page.LastSeq
	}
}

func taskPath(id int64) string { return fmt.Sprintf("/api/tasks/%d", id) }

func etag(version int64) string { return fmt.Sprintf(`"v%d"`, version) }

func ids(list []apiTask) []int64 {
	out := make([]int64, len(list))
	for i, t := range list {
		out[i] = t.ID
	}
	return out
}

// wantError checks that a response is the contract's error: the status, a JSON body
// that is exactly {"error": {"code", "message", "field"}} with a message, the code and
// the field ("" for none, which may then be left out).
func wantError(t testing.TB, status int, header http.Header, body []byte, wantStatus int, wantCode, wantField string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status = %d, want %d; body %s", status, wantStatus, truncate(body))
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	outer := decode[map[string]json.RawMessage](t, body)
	if got := slices.Sorted(maps.Keys(outer)); !slices.Equal(got, []string{"error"}) {
		t.Errorf("body has members %v, want only error; body %s", got, truncate(body))
	}
	inner := decode[map[string]json.RawMessage](t, outer["error"])
	for k := range inner {
		if k != "code" && k != "message" && k != "field" {
			t.Errorf("error has member %q, want only code, message, field", k)
		}
	}
	e := decode[struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	}](t, outer["error"])
	if e.Code != wantCode {
		t.Errorf("error code = %q, want %q (message %q)", e.Code, wantCode, e.Message)
	}
	if e.Field != wantField {
		t.Errorf("error field = %q, want %q (message %q)", e.Field, wantField, e.Message)
	}
	if e.Message == "" {
		t.Errorf("error message is empty")
	}
}

// errorMessage returns the message of an error response.
func errorMessage(t testing.TB, body []byte) string {
	t.Helper()
	return decode[struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}](t, body).Error.Message
}

// state is everything a client can see of some tasks and of the event log, to check
// that a request changed nothing.
type state struct {
	tasks   map[int64]string // GET body and ETag of each task
	list    string           // GET /api/tasks
	lastSeq int64
}

func (s *server) state(t testing.TB, taskIDs ...int64) state {
	t.Helper()
	st := state{tasks: map[int64]string{}, lastSeq: s.lastSeq(t)}
	for _, id := range taskIDs {
		status, h, b := s.do(t, "GET", taskPath(id), nil, nil)
		st.tasks[id] = fmt.Sprintf("%d %s %s", status, h.Get("ETag"), b)
	}
	_, _, b := s.do(t, "GET", "/api/tasks?limit=500", nil, nil)
	st.list = string(b)
	return st
}

// wantUnchanged fails the test if any task of before, the task list or the event log
// differs from now.
func (s *server) wantUnchanged(t testing.TB, before state) {
	t.Helper()
	after := s.state(t, slices.Collect(maps.Keys(before.tasks))...)
	for id, was := range before.tasks {
		if now := after.tasks[id]; now != was {
			t.Errorf("task %d changed:\nbefore %s\nafter  %s", id, was, now)
		}
	}
	if after.list != before.list {
		t.Errorf("task list changed:\nbefore %s\nafter  %s", before.list, after.list)
	}
	if evs := s.eventsAfter(t, before.lastSeq); len(evs) > 0 {
		t.Errorf("%d new events after seq %d, want none; first: %+v", len(evs), before.lastSeq, evs[0])
	}
}
