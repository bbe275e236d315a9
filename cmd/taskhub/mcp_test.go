package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// mcpConnect initializes c as name, at version ("" for the newest).
func mcpConnect(t *testing.T, c *client.Client, name, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil { // its stream lives as long as c
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	res, err := c.Initialize(ctx, req)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if res.ServerInfo.Name != "taskhub" {
		t.Errorf("server name %q", res.ServerInfo.Name)
	}
}

func mcpCall(t *testing.T, c *client.Client, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return res
}

type mcpTask struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	Assignee  string `json:"assignee"`
	CreatedBy string `json:"created_by"`
}

func structured(t *testing.T, r *mcp.CallToolResult) mcpTask {
	t.Helper()
	if r.IsError {
		t.Fatalf("isError: %+v", r.Content)
	}
	b, _ := json.Marshal(r.StructuredContent)
	var task mcpTask
	if err := json.Unmarshal(b, &task); err != nil {
		t.Fatal(err)
	}
	return task
}

// exercise lists the tools and creates, claims and finishes a task through c, whose
// client calls itself name; the server at url must see every change as name's.
func exercise(t *testing.T, c *client.Client, url, name string) {
	t.Helper()
	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	if len(tools.Tools) != 14 {
		t.Fatalf("%d tools, want 14", len(tools.Tools))
	}
	task := structured(t, mcpCall(t, c, "create_task", map[string]any{"title": "over " + name, "project": name}))
	if task.CreatedBy != name {
		t.Errorf("created by %q, want %q", task.CreatedBy, name)
	}
	claimed := structured(t, mcpCall(t, c, "claim_task", map[string]any{"project": name}))
	if claimed.ID != task.ID || claimed.Assignee != name || claimed.Status != "in_progress" {
		t.Errorf("claimed %+v", claimed)
	}
	structured(t, mcpCall(t, c, "update_task_status", map[string]any{"task_id": task.ID, "status": "done", "note": "ok"}))
	bad := mcpCall(t, c, "get_task", map[string]any{"task_id": "one"})
	if !bad.IsError {
		t.Error("a bad argument is not an error")
	}

	var events struct {
		Events []struct {
			Source, Actor string
			Note          string
		}
	}
	call(t, http.MethodGet, fmt.Sprintf("%s/api/tasks/%d/events", url, task.ID), "", http.StatusOK, &events)
	if len(events.Events) != 3 {
		t.Fatalf("%d events, want 3", len(events.Events))
	}
	for _, e := range events.Events {
		if e.Source != "mcp_tool" || e.Actor != name {
			t.Errorf("event by %s/%s, want mcp_tool/%s", e.Source, e.Actor, name)
		}
	}
	if events.Events[2].Note != "ok" {
		t.Errorf("note %q", events.Events[2].Note)
	}
}

func TestMCPStreamableHTTP(t *testing.T) {
	url, _ := startServer(t)
	for _, version := range []string{"", mcp.ProtocolVersion20250326, mcp.ProtocolVersion20250618, mcp.ProtocolVersion20251125} {
		t.Run("version "+version, func(t *testing.T) {
			opts := []client.ClientOption{}
			if version != "" {
				opts = append(opts, client.WithProtocolVersion(version))
			}
			tr, err := transport.NewStreamableHTTP(url + "/mcp")
			if err != nil {
				t.Fatal(err)
			}
			c := client.NewClient(tr, opts...)
			name := "http-agent-" + strings.ReplaceAll(version, "-", "")
			mcpConnect(t, c, name, version)
			exercise(t, c, url, name)
		})
	}
}

func TestMCPSSE(t *testing.T) {
	url, _ := startServer(t)
	c, err := client.NewSSEMCPClient(url + "/mcp/sse")
	if err != nil {
		t.Fatal(err)
	}
	mcpConnect(t, c, "sse-agent", mcp.ProtocolVersion20241105)
	exercise(t, c, url, "sse-agent")
}

// TestMCPSubscriptionFromREST subscribes over SSE and over Streamable HTTP (with the
// handshake, and with subscriptions/listen of 2026-07-28); a change made through REST
// must notify each, and only for the subscribed task.
func TestMCPSubscriptionFromREST(t *testing.T) {
	url, _ := startServer(t)
	watched := createTask(t, url, `{"title":"watched"}`)
	other := createTask(t, url, `{"title":"other"}`)

	for _, tc := range []struct {
		name, version string
		sse           bool
	}{
		{"sse", mcp.ProtocolVersion20241105, true},
		{"streamable", mcp.ProtocolVersion20251125, false},
		{"streamable-listen", mcp.ProtocolVersion20260728, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// ready closes when the server will route a notification to c: for SSE
			// once Start has returned, the stream being open; for the handshake era's
			// Streamable HTTP once its GET stream is answered; for
			// subscriptions/listen once the server acknowledges the listen.
			ready := make(chan struct{})
			signal := sync.OnceFunc(func() { close(ready) })
			var c *client.Client
			switch {
			case tc.sse:
				var err error
				if c, err = client.NewSSEMCPClient(url + "/mcp/sse"); err != nil {
					t.Fatal(err)
				}
				signal()
			case tc.version == mcp.ProtocolVersion20260728:
				tr, err := transport.NewStreamableHTTP(url + "/mcp")
				if err != nil {
					t.Fatal(err)
				}
				c = client.NewClient(tr, client.WithProtocolVersion(tc.version))
			default:
				tr, err := transport.NewStreamableHTTP(url+"/mcp",
					//lint:ignore SA1019 clients of the handshake era are served too
					transport.WithContinuousListening(),
					transport.WithHTTPBasicClient(&http.Client{Transport: getStreamOpened(signal)}))
				if err != nil {
					t.Fatal(err)
				}
				c = client.NewClient(tr, client.WithProtocolVersion(tc.version))
			}
			got := make(chan string, 8)
			c.OnNotification(func(n mcp.JSONRPCNotification) {
				switch n.Method {
				case mcp.MethodNotificationResourceUpdated:
					got <- fmt.Sprint(n.Params.AdditionalFields["uri"])
				case mcp.MethodNotificationSubscriptionsAcknowledged:
					signal()
				}
			})
			mcpConnect(t, c, tc.name, tc.version)
			req := mcp.SubscribeRequest{}
			req.Params.URI = fmt.Sprintf("taskhub://tasks/%d", watched)
			//lint:ignore SA1019 resources/subscribe of the handshake era, or the filter of the next Listen
			if err := c.Subscribe(context.Background(), req); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			if tc.version == mcp.ProtocolVersion20260728 {
				stop, err := c.ListenAsync(context.Background(), c.PendingSubscriptionFilter(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			}
			select {
			case <-ready:
			case <-time.After(within):
				t.Fatalf("the notification stream did not open within %s", within)
			}
			patchTask(t, url, other, fmt.Sprintf(`{"title":"other, %s"}`, tc.name))
			patchTask(t, url, watched, fmt.Sprintf(`{"title":"watched, %s"}`, tc.name))
			select {
			case uri := <-got:
				if uri != req.Params.URI {
					t.Errorf("updated %s, want %s", uri, req.Params.URI)
				}
			case <-time.After(within):
				t.Fatalf("no resources/updated within %s", within)
			}
		})
	}
}

func TestMCPOrigin(t *testing.T) {
	url, _ := startServer(t, "--cors-origin", "https://allowed.example")
	post := func(path, origin string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path, origin string
		want         int
	}{
		{"/mcp", "", http.StatusOK},
		{"/mcp", url, http.StatusOK},
		{"/mcp", "https://allowed.example", http.StatusOK},
		{"/mcp", "https://evil.example", http.StatusForbidden},
		{"/mcp", "null", http.StatusForbidden},
		{"/mcp", strings.Replace(url, "http:", "https:", 1), http.StatusForbidden},
		{"/mcp/message?sessionId=x", "https://evil.example", http.StatusForbidden},
	} {
		code, body := post(tc.path, tc.origin)
		if code != tc.want {
			t.Errorf("%s with Origin %q: %d %s, want %d", tc.path, tc.origin, code, body, tc.want)
		}
		if tc.want == http.StatusForbidden && !strings.Contains(body, `"code":"forbidden"`) {
			t.Errorf("403 body %s", body)
		}
	}
	var nf struct{ Error struct{ Code string } }
	call(t, http.MethodGet, url+"/mcp/nope", "", http.StatusNotFound, &nf)
	if nf.Error.Code != "not_found" {
		t.Errorf("unknown MCP path: %+v", nf)
	}
}

// TestMCPSessions: over the server, --max-mcp-sessions bounds the open Streamable HTTP
// sessions (one more initialize is 503 in the JSON error shape, logged), a session's
// DELETE makes room again, and GET /mcp/sessions lists them. With a tokens file one
// token may hold half (429).
func TestMCPSessions(t *testing.T) {
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"capped","version":"1"}}}`
	mcpHeaders := map[string]string{"Accept": "application/json, text/event-stream"}
	t.Run("cap", func(t *testing.T) {
		url, log := startServerLogged(t, "--max-mcp-sessions", "2")
		var ids []string
		for range 2 {
			resp, b := send(t, http.MethodPost, url+"/mcp", "", initialize, mcpHeaders)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
				t.Fatalf("initialize: %d %s", resp.StatusCode, b)
			}
			ids = append(ids, resp.Header.Get("Mcp-Session-Id"))
		}
		resp, b := send(t, http.MethodPost, url+"/mcp", "", initialize, mcpHeaders)
		if resp.StatusCode != http.StatusServiceUnavailable || errorCode(b) != "unavailable" {
			t.Fatalf("initialize over the cap: %d %s", resp.StatusCode, b)
		}
		if !strings.Contains(log.String(), "MCP session refused") {
			t.Errorf("the refusal is not logged:\n%s", log)
		}
		var list struct {
			Sessions []struct{ ID, Client string }
		}
		call(t, http.MethodGet, url+"/mcp/sessions", "", http.StatusOK, &list)
		if len(list.Sessions) != 2 || list.Sessions[0].Client != "capped" {
			t.Errorf("GET /mcp/sessions: %+v", list)
		}
		if resp, b := send(t, http.MethodDelete, url+"/mcp", "", "", map[string]string{"Mcp-Session-Id": ids[0]}); resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE: %d %s", resp.StatusCode, b)
		}
		if resp, b := send(t, http.MethodPost, url+"/mcp", "", initialize, mcpHeaders); resp.StatusCode != http.StatusOK {
			t.Errorf("initialize once one ended: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("a token's share", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		writeTokens(t, path, tokenEntry{"alice", "alice-secret", []string{"write"}}, tokenEntry{"bob", "bob-secret", []string{"write"}})
		url, _ := startServer(t, "--tokens-file", path, "--max-mcp-sessions", "4")
		for i, tc := range []struct {
			token string
			want  int
		}{
			{"alice-secret", http.StatusOK},
			{"alice-secret", http.StatusOK},
			{"alice-secret", http.StatusTooManyRequests},
			{"bob-secret", http.StatusOK},
		} {
			resp, b := send(t, http.MethodPost, url+"/mcp", tc.token, initialize, mcpHeaders)
			if resp.StatusCode != tc.want {
				t.Fatalf("initialize %d: %d %s, want %d", i, resp.StatusCode, b, tc.want)
			}
			if tc.want == http.StatusTooManyRequests && errorCode(b) != "rate_limited" {
				t.Errorf("over the share: %s", b)
			}
		}
	})
}

// TestMCPStdioCrossProcess runs `taskhub mcp` on the database of a running server: a
// task created over stdio reaches the server's stream subscribers.
func TestMCPStdioCrossProcess(t *testing.T) {
	url, db := startServer(t)
	s := openStream(t, url+"/events/stream", nil)
	c, err := client.NewStdioMCPClient(os.Args[0], []string{"RUN_AS_TASKHUB=1"}, "mcp", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	mcpConnect(t, c, "stdio-agent", "")
	task := structured(t, mcpCall(t, c, "create_task", map[string]any{"title": "from stdio"}))
	created := time.Now()
	m := s.nextEvent(t, within)
	e := m.events(t)[0]
	if e.Type != "task_created" || e.TaskID != task.ID || e.Source != "mcp_tool" {
		t.Errorf("got %+v", e)
	}
	if late := time.Since(created); late > time.Second {
		t.Errorf("delivered %s after the stdio process wrote", late)
	}
	var got struct {
		CreatedBy string `json:"created_by"`
	}
	call(t, http.MethodGet, fmt.Sprintf("%s/api/tasks/%d", url, task.ID), "", http.StatusOK, &got)
	if got.CreatedBy != "stdio-agent" {
		t.Errorf("created by %q", got.CreatedBy)
	}
}

func TestMCPArguments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"bad origin", []string{"serve", "--cors-origin", "example.com"}, 2, "not an origin"},
		{"origin with a path", []string{"serve", "--cors-origin", "https://example.com/app"}, 2, "not an origin"},
		{"no idle sessions", []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "x.db"), "--mcp-session-idle", "0s"}, 2, "--mcp-session-idle must be positive"},
		{"no sessions", []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "x.db"), "--max-mcp-sessions", "0"}, 2, "--max-mcp-sessions must be at least 1"},
		{"negative waits", []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "x.db"), "--max-waits", "-1"}, 2, "--max-waits-per-token and --max-waits must not be negative"},
		{"mcp help", []string{"mcp", "-h"}, 0, "-db file"},
		{"mcp stray argument", []string{"mcp", "extra"}, 2, `unexpected argument "extra"`},
		{"mcp unusable database", []string{"mcp", "--db", t.TempDir()}, 1, "open database"},
		{"mcp setup", []string{"mcp", "--setup", "--url", "http://127.0.0.1:9000/", "--db", "/srv/task hub.db"}, 0,
			"claude mcp add --transport http taskhub http://127.0.0.1:9000/mcp\n"},
		{"mcp setup stdio", []string{"mcp", "--setup", "--db", "/srv/task hub.db"}, 0, "-- taskhub mcp --db '/srv/task hub.db'\n"},
		{"mcp setup json", []string{"mcp", "--setup"}, 0, `"url": "http://127.0.0.1:8080/mcp"`},
		{"mcp setup bad url", []string{"mcp", "--setup", "--url", "localhost:8080"}, 2, "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.output) {
				t.Errorf("exit %d, want %d; output:\n%s%s\nwant it to contain %q", code, tc.code, stdout.String(), stderr.String(), tc.output)
			}
		})
	}
}

// TestMCPShutdown stops a server while MCP clients hold streams open (SSE, and the GET
// stream of Streamable HTTP): it must still stop at once, with status 0.
func TestMCPShutdown(t *testing.T) {
	url, stop := serveAt(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "taskhub.db"))
	sse, err := client.NewSSEMCPClient(url + "/mcp/sse")
	if err != nil {
		t.Fatal(err)
	}
	mcpConnect(t, sse, "sse", mcp.ProtocolVersion20241105)
	opened := make(chan struct{})
	tr, err := transport.NewStreamableHTTP(url+"/mcp",
		//lint:ignore SA1019 the GET stream of the handshake era
		transport.WithContinuousListening(),
		transport.WithHTTPBasicClient(&http.Client{Transport: getStreamOpened(sync.OnceFunc(func() { close(opened) }))}))
	if err != nil {
		t.Fatal(err)
	}
	streamable := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	mcpConnect(t, streamable, "streamable", mcp.ProtocolVersion20251125)
	select {
	case <-opened: // both streams are open: the SSE one since mcpConnect returned
	case <-time.After(within):
		t.Fatalf("the GET stream did not open within %s", within)
	}
	start := time.Now()
	stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopping took %s", took)
	}
}

// getStreamOpened returns a transport for an MCP client that calls opened when a GET
// on it is answered 200: the handshake era's notification stream is open, and the
// server, which registers the stream's session before it answers, routes the
// session's notifications to it from then on.
func getStreamOpened(opened func()) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil && req.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
			opened()
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestMCPInteropTypeScript runs mcptools/interop/interop.mjs: the official MCP
// TypeScript SDK against this server over Streamable HTTP, SSE and stdio. `make test`
// installs the SDK (npm ci) and sets TASKHUB_INTEROP=1, which makes a missing node or
// SDK a failure instead of a skip.
func TestMCPInteropTypeScript(t *testing.T) {
	dir := filepath.Join("..", "..", "mcptools", "interop")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	}
	if err != nil {
		if os.Getenv("TASKHUB_INTEROP") == "1" {
			t.Fatalf("node and the SDK are needed: %v", err)
		}
		t.Skipf("needs node and the SDK (make test runs npm ci in %s): %v", dir, err)
	}
	// Heartbeats every 100ms: the SDK must answer the pings on every stream.
	url, db := startServer(t, "--keepalive", "100ms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "interop.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TASKHUB_URL="+url, "TASKHUB_DB="+db, "TASKHUB_CMD="+os.Args[0], "TASKHUB_CMD_ENV=RUN_AS_TASKHUB=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("interop: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "interop: ok") {
		t.Fatalf("interop output:\n%s", out)
	}
	t.Logf("%s", out)
}

// TestMCPHeartbeat: the SSE transport's stream carries a ping every --keepalive.
func TestMCPHeartbeat(t *testing.T) {
	url, _ := startServer(t, "--keepalive", "100ms")
	s := openStream(t, url+"/mcp/sse", nil)
	if m := s.nextEvent(t, within); m.Event != "endpoint" || !strings.HasPrefix(m.Data, "/mcp/message?sessionId=") {
		t.Fatalf("first event %+v", m)
	}
	m := s.nextEvent(t, within)
	if m.Event != "message" || !strings.Contains(m.Data, `"method":"ping"`) {
		t.Errorf("heartbeat %+v", m)
	}
}

// TestMCPClaimRaceHTTP has 8 agents, each its own Streamable HTTP client, claim at
// once from a project with 3 ready tasks (and one waiting on another): exactly 3 win,
// each a different task, and the others are told that nothing is ready.
func TestMCPClaimRaceHTTP(t *testing.T) {
	url, _ := startServer(t)
	first := createTask(t, url, `{"title":"r1","project":"race"}`)
	createTask(t, url, `{"title":"r2","project":"race"}`)
	createTask(t, url, `{"title":"r3","project":"race"}`)
	blocked := createTask(t, url, fmt.Sprintf(`{"title":"later","project":"race","depends_on":[%d]}`, first))

	clients := make([]*client.Client, 8)
	for i := range clients {
		tr, err := transport.NewStreamableHTTP(url + "/mcp")
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = client.NewClient(tr)
		mcpConnect(t, clients[i], fmt.Sprintf("agent-%d", i), "")
	}
	results := make([]*mcp.CallToolResult, len(clients))
	errs := make([]error, len(clients))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			<-start
			req := mcp.CallToolRequest{}
			req.Params.Name = "claim_task"
			req.Params.Arguments = map[string]any{"project": "race"}
			results[i], errs[i] = c.CallTool(context.Background(), req)
		})
	}
	close(start)
	wg.Wait()
	won := map[int64]string{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("agent-%d: %v", i, errs[i])
		}
		if r.IsError {
			if text := fmt.Sprint(r.Content); !strings.Contains(text, "no task is ready") {
				t.Errorf("agent-%d: %s", i, text)
			}
			continue
		}
		task := structured(t, r)
		if prev, dup := won[task.ID]; dup {
			t.Errorf("task %d won by %s and agent-%d", task.ID, prev, i)
		}
		won[task.ID] = task.Assignee
		if task.ID == blocked || task.Assignee != fmt.Sprintf("agent-%d", i) {
			t.Errorf("agent-%d won %+v", i, task)
		}
	}
	if len(won) != 3 {
		t.Errorf("%d winners, want 3: %v", len(won), won)
	}
}
