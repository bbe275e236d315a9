package mcptools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"taskhub/mcptools"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// A session id as mcp-go mints them: well formed, but of no session of this server.
const madeUpSession = "mcp-session-0f8fad5b-d9cb-469f-a165-70867728950e"

const pingBody = `{"jsonrpc":"2.0","id":2,"method":"ping"}`

func initializeBody(client string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":%q,"version":"1"}}}`,
		mcp.ProtocolVersion20250618, client)
}

// mcpRequest is a request to the Streamable HTTP endpoint at url, in session (none
// when empty), with body (none when empty).
func mcpRequest(t testing.TB, method, url, session, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	return req
}

// errorCode returns the code of the JSON error in resp's body, failing t when the
// body is not the JSON error shape.
func errorCode(t testing.TB, resp *http.Response) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil || resp.Header.Get("Content-Type") != "application/json" || body.Error.Message == "" {
		t.Errorf("%d %s, Content-Type %q: not the JSON error shape", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	return body.Error.Code
}

// logBuffer is a log that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newLoggedServer is newServerWith, logging at debug level into the returned buffer.
func newLoggedServer(t testing.TB, caller func(context.Context) (string, bool)) (*mcptools.Server, *tasks.Service, *logBuffer) {
	t.Helper()
	_, svc := newServer(t)
	log := &logBuffer{}
	s := mcptools.New(mcptools.Config{Service: svc, Caller: caller,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	return s, svc, log
}

type sessionList struct {
	Sessions []mcptools.SessionInfo
}

func listSessions(t testing.TB, do func(*http.Request) (*http.Response, error), base string) sessionList {
	t.Helper()
	resp, err := do(mcpRequest(t, http.MethodGet, base+mcptools.PathSessions, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list sessionList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", mcptools.PathSessions, resp.StatusCode, err)
	}
	return list
}

// TestSessionRules: over real HTTP, a session exists from its initialize until its
// DELETE; a request must name one (400), and one that is not open is 404. A DELETE
// closes the session's GET stream. The stateless revision needs none.
func TestSessionRules(t *testing.T) {
	s, _ := newServer(t)
	srv := httptest.NewServer(s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour}))
	defer srv.Close()
	defer s.Close()
	url := srv.URL + mcptools.PathStreamable
	send := func(method, session, body string) *http.Response {
		t.Helper()
		resp, err := srv.Client().Do(mcpRequest(t, method, url, session, body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	open := func() string {
		t.Helper()
		resp := send(http.MethodPost, "", initializeBody("rules"))
		id := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != http.StatusOK || id == "" {
			t.Fatalf("initialize: %d, session %q", resp.StatusCode, id)
		}
		return id
	}
	id := open()

	for _, tc := range []struct {
		name, method, session, body string
		status                      int
		code                        string
	}{
		{"ping in the session", http.MethodPost, id, pingBody, http.StatusOK, ""},
		{"ping in a made-up session", http.MethodPost, madeUpSession, pingBody, http.StatusNotFound, "not_found"},
		{"ping without a session", http.MethodPost, "", pingBody, http.StatusBadRequest, "invalid_argument"},
		{"notification without a session", http.MethodPost, "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, http.StatusBadRequest, "invalid_argument"},
		{"GET without a session", http.MethodGet, "", "", http.StatusBadRequest, "invalid_argument"},
		{"GET of a made-up session", http.MethodGet, madeUpSession, "", http.StatusNotFound, "not_found"},
		{"DELETE without a session", http.MethodDelete, "", "", http.StatusBadRequest, "invalid_argument"},
		{"DELETE of a made-up session", http.MethodDelete, madeUpSession, "", http.StatusNotFound, "not_found"},
		{"PUT", http.MethodPut, id, pingBody, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"HEAD, a probe", http.MethodHead, "", "", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(tc.method, tc.session, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
			}
			if tc.code != "" {
				if code := errorCode(t, resp); code != tc.code {
					t.Errorf("code %q, want %q", code, tc.code)
				}
			}
		})
	}

	t.Run("DELETE ends the session and its stream", func(t *testing.T) {
		stream := send(http.MethodGet, id, "")
		if stream.StatusCode != http.StatusOK {
			t.Fatalf("GET stream: %d", stream.StatusCode)
		}
		ended := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, stream.Body); ended <- err }()
		if resp := send(http.MethodDelete, id, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the session's GET stream is still open after its DELETE")
		}
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			resp := send(method, id, pingBody)
			if resp.StatusCode != http.StatusNotFound || errorCode(t, resp) != "not_found" {
				t.Errorf("%s in the ended session: %d, want 404", method, resp.StatusCode)
			}
		}
		if resp := send(http.MethodPost, open(), pingBody); resp.StatusCode != http.StatusOK {
			t.Errorf("ping in a new session: %d", resp.StatusCode)
		}
	})

	t.Run("the stateless revision", func(t *testing.T) {
		tr, err := transport.NewStreamableHTTP(url)
		if err != nil {
			t.Fatal(err)
		}
		c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20260728))
		defer c.Close()
		initialize(t, c, "stateless")
		if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
			t.Fatalf("list tools: %v", err)
		}
		for _, info := range listSessions(t, srv.Client().Do, srv.URL).Sessions {
			if info.Client == "stateless" {
				t.Errorf("a stateless client has a session: %+v", info)
			}
		}
	})
}

// TestSessionReinitialize: mcp-go's client, whose session the server ended, is told
// so (404) and carries on in a new session once it initializes again.
func TestSessionReinitialize(t *testing.T) {
	s, _ := newServer(t)
	srv := httptest.NewServer(s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour}))
	defer srv.Close()
	defer s.Close()
	tr, err := transport.NewStreamableHTTP(srv.URL + mcptools.PathStreamable)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	defer c.Close()
	initialize(t, c, "again")
	first := tr.GetSessionId()
	resp, err := srv.Client().Do(mcpRequest(t, http.MethodDelete, srv.URL+mcptools.PathStreamable, first, ""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Fatalf("list tools in the ended session: %v, want %v", err, transport.ErrSessionTerminated)
	}
	initialize(t, c, "again")
	if second := tr.GetSessionId(); second == "" || second == first {
		t.Fatalf("session %q after initializing again, was %q", second, first)
	}
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
		t.Fatalf("list tools in the new session: %v", err)
	}
}

// TestSessionsAdmin: GET /mcp/sessions shows each session's client, revision,
// subscriptions and last activity; a session that ends takes its subscriptions along.
func TestSessionsAdmin(t *testing.T) {
	s, svc, log := newLoggedServer(t, nil)
	task, err := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("watched")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour}))
	defer srv.Close()
	defer s.Close()
	tr, err := transport.NewStreamableHTTP(srv.URL + mcptools.PathStreamable)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	before := time.Now()
	initialize(t, c, "watcher")
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = mcptools.TaskURI(task.ID)
	//lint:ignore SA1019 resources/subscribe of the handshake era
	if err := c.Subscribe(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	list := listSessions(t, srv.Client().Do, srv.URL).Sessions
	if len(list) != 1 {
		t.Fatalf("%d sessions listed, want 1: %+v", len(list), list)
	}
	got := list[0]
	if got.ID != tr.GetSessionId() || got.Client != "watcher" || got.Protocol != mcp.ProtocolVersion20251125 ||
		len(got.Subscriptions) != 1 || got.Subscriptions[0] != sub.Params.URI || got.LastActiveAt.Before(before) {
		t.Errorf("listed %+v", got)
	}
	resp, err := srv.Client().Do(mcpRequest(t, http.MethodPost, srv.URL+mcptools.PathSessions, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || errorCode(t, resp) != "method_not_allowed" {
		t.Errorf("POST %s: %d", mcptools.PathSessions, resp.StatusCode)
	}
	resp.Body.Close()

	c.Close() // DELETE
	if list := listSessions(t, srv.Client().Do, srv.URL).Sessions; len(list) != 0 {
		t.Errorf("listed after the client's DELETE: %+v", list)
	}
	s.TaskChanged(task.ID) // to nobody: a session still subscribed would log that it was not sent
	if strings.Contains(log.String(), "resource update not sent") {
		t.Errorf("the ended session is still subscribed:\n%s", log)
	}
}

// TestSessionLimits: at most MaxSessions are open, and MaxSessionsPerCaller of one
// caller; one more initialize is 429 (the caller's share) or 503 (the server's), in
// the JSON error shape, and logged. A session that ends makes room.
func TestSessionLimits(t *testing.T) {
	type callerKey struct{}
	s, _, log := newLoggedServer(t, func(ctx context.Context) (string, bool) {
		name, ok := ctx.Value(callerKey{}).(string)
		return name, ok
	})
	h := s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour, MaxSessions: 3, MaxSessionsPerCaller: 2})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, r.Header.Get("X-Caller"))))
	}))
	defer srv.Close()
	defer s.Close()
	send := func(caller, method, session, body string) *http.Response {
		t.Helper()
		req := mcpRequest(t, method, srv.URL+mcptools.PathStreamable, session, body)
		req.Header.Set("X-Caller", caller)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	opened := map[string][]string{}
	for _, tc := range []struct {
		caller string
		status int
		code   string
	}{
		{"alice", http.StatusOK, ""},
		{"alice", http.StatusOK, ""},
		{"alice", http.StatusTooManyRequests, "rate_limited"},
		{"bob", http.StatusOK, ""},
		{"carol", http.StatusServiceUnavailable, "unavailable"},
	} {
		resp := send(tc.caller, http.MethodPost, "", initializeBody(tc.caller))
		if resp.StatusCode != tc.status {
			t.Fatalf("initialize by %s: %d, want %d", tc.caller, resp.StatusCode, tc.status)
		}
		if tc.code != "" {
			if code := errorCode(t, resp); code != tc.code {
				t.Errorf("initialize by %s: code %q, want %q", tc.caller, code, tc.code)
			}
			continue
		}
		opened[tc.caller] = append(opened[tc.caller], resp.Header.Get("Mcp-Session-Id"))
	}
	if got := log.String(); !strings.Contains(got, "MCP session refused") || !strings.Contains(got, "caller=carol") {
		t.Errorf("the refusals are not logged:\n%s", got)
	}
	if resp := send("bob", http.MethodPost, opened["alice"][0], pingBody); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob in alice's session: %d, want 404", resp.StatusCode)
	}
	if resp := send("alice", http.MethodDelete, opened["alice"][0], ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if resp := send("carol", http.MethodPost, "", initializeBody("carol")); resp.StatusCode != http.StatusOK {
		t.Errorf("initialize by carol once a session ended: %d", resp.StatusCode)
	}
}

// TestSessionsBoundedAndIdle opens 10,000 sessions and leaves them: the cap holds
// (1,000 open, the rest refused), the memory they hold is bounded by it, and idle
// ones end after SessionIdle while a session in use goes on. In process, under
// synctest: the idle sweeper's clock is the bubble's.
func TestSessionsBoundedAndIdle(t *testing.T) {
	s, _ := newServer(t)
	synctest.Test(t, func(t *testing.T) {
		const idle = 30 * time.Minute
		h := s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour, SessionIdle: idle})
		defer s.Close()
		do := func(req *http.Request) (*http.Response, error) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Result(), nil
		}
		send := func(method, session, body string) *http.Response {
			resp, _ := do(mcpRequest(t, method, "http://127.0.0.1"+mcptools.PathStreamable, session, body))
			return resp
		}
		var before, after runtime.MemStats
		readMem(&before)
		statuses := map[int]int{}
		var ids []string
		for i := range 10_000 {
			resp := send(http.MethodPost, "", initializeBody(fmt.Sprintf("left-%d", i)))
			statuses[resp.StatusCode]++
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				ids = append(ids, id)
			}
		}
		readMem(&after)
		if statuses[http.StatusOK] != mcptools.DefaultMaxSessions || statuses[http.StatusServiceUnavailable] != 10_000-mcptools.DefaultMaxSessions {
			t.Fatalf("statuses %v, want %d × 200 and the rest 503", statuses, mcptools.DefaultMaxSessions)
		}
		grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("10,000 initialize, %d sessions open: heap grew %.1f MB", len(ids), float64(grown)/(1<<20))
		if grown > 40<<20 {
			t.Errorf("heap grew %d MB for %d sessions", grown>>20, len(ids))
		}

		// The sweeper looks every idle/2: at 15m, 30m (the sessions left are idle
		// 30m: they end), 45m (kept was used at 20m: it stays).
		kept := ids[0]
		time.Sleep(20 * time.Minute)
		if resp := send(http.MethodPost, kept, pingBody); resp.StatusCode != http.StatusOK {
			t.Fatalf("ping after 20m: %d", resp.StatusCode)
		}
		time.Sleep(26 * time.Minute)
		synctest.Wait()
		if resp := send(http.MethodPost, ids[1], pingBody); resp.StatusCode != http.StatusNotFound {
			t.Errorf("a session unused for 46m: %d, want 404", resp.StatusCode)
		}
		if resp := send(http.MethodPost, kept, pingBody); resp.StatusCode != http.StatusOK {
			t.Errorf("a session used 26m ago: %d, want 200", resp.StatusCode)
		}
		if list := listSessions(t, do, "http://127.0.0.1").Sessions; len(list) != 1 || list[0].ID != kept {
			t.Errorf("%d sessions open after the idle ones ended, want only the one in use", len(list))
		}
		if resp := send(http.MethodPost, "", initializeBody("late")); resp.StatusCode != http.StatusOK {
			t.Errorf("initialize once the idle ones ended: %d", resp.StatusCode)
		}
	})
}

// readMem reads the memory statistics after a collection.
func readMem(m *runtime.MemStats) {
	runtime.GC()
	runtime.ReadMemStats(m)
}
