package mcptools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/mcptools"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// newServer returns a Server over a fresh database, and its Service.
func newServer(t testing.TB) (*mcptools.Server, *tasks.Service) {
	return newServerFor(t, "")
}

// newServerFor is newServer on a server whose authentication names every caller
// caller (none when it is empty), as the API does with a token's name.
func newServerFor(t testing.TB, caller string) (*mcptools.Server, *tasks.Service) {
	t.Helper()
	if caller == "" {
		return newServerWith(t, nil)
	}
	return newServerWith(t, func(context.Context) (string, bool) { return caller, true })
}

// openDB opens a database in a new file of t's, closed when t ends, after the
// cleanups registered later.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "taskhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newServerWith is newServer on a server whose authentication is caller (nil: none).
func newServerWith(t testing.TB, caller func(context.Context) (string, bool)) (*mcptools.Server, *tasks.Service) {
	t.Helper()
	db := openDB(t)
	svc := tasks.NewService(db)
	waits := broadcaster.NewWaits(broadcaster.WaitsConfig{})
	follow(t, db, tasklog.Wake(waits))
	return mcptools.New(mcptools.Config{Service: svc, Caller: caller, Waits: waits}), svc
}

// follow runs a tailer of store's log that hands each event to listeners, as taskhub
// serve runs one, until t ends.
func follow(t testing.TB, store tasks.Store, listeners ...func(*tasks.Record)) {
	t.Helper()
	tailer, err := tasks.NewTailer(context.Background(), store, tasks.TailerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listeners {
		tailer.Listen(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { tailer.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// connect returns an initialized in-process client that calls itself name.
func connect(t testing.TB, s *mcptools.Server, name string) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(s.MCPServer())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	initialize(t, c, name)
	return c
}

func initialize(t testing.TB, c *client.Client, name string) *mcp.InitializeResult {
	t.Helper()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	res, err := c.Initialize(ctx, req)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return res
}

// callTool calls name with args (JSON) and returns the result; a protocol error fails t.
func callTool(t testing.TB, c *client.Client, name, args string) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	var a any
	if err := json.Unmarshal([]byte(args), &a); err != nil {
		t.Fatalf("args %s: %v", args, err)
	}
	req.Params.Arguments = a
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", name, args, err)
	}
	return res
}

func text(r *mcp.CallToolResult) string {
	var parts []string
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// ok returns the structured content of a successful result, decoded into T.
func ok[T any](t testing.TB, r *mcp.CallToolResult) T {
	t.Helper()
	var v T
	if r.IsError {
		t.Fatalf("isError: %s", text(r))
	}
	b, err := json.Marshal(r.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	if text(r) == "" {
		t.Error("no text content")
	}
	return v
}

// failed checks that r is an isError result whose message contains each of want.
func failed(t testing.TB, r *mcp.CallToolResult, want ...string) {
	t.Helper()
	if !r.IsError {
		t.Fatalf("not an error: %s", text(r))
	}
	for _, w := range want {
		if !strings.Contains(text(r), w) {
			t.Errorf("message %q does not contain %q", text(r), w)
		}
	}
}

func TestToolsList(t *testing.T) {
	s, _ := newServer(t)
	c := connect(t, s, "lister")
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ readOnly, destructive, idempotent bool }
	wants := map[string]want{
		"create_task": {}, "get_task": {readOnly: true, idempotent: true}, "list_tasks": {readOnly: true, idempotent: true},
		"update_task": {destructive: true, idempotent: true}, "update_task_status": {idempotent: true},
		"delete_task": {destructive: true, idempotent: true}, "claim_task": {}, "list_events": {readOnly: true, idempotent: true},
		"add_note": {}, "list_notes": {readOnly: true, idempotent: true},
		"heartbeat_task": {}, "release_task": {idempotent: true}, "report_progress": {idempotent: true},
		"wait_for_events": {readOnly: true, idempotent: true},
	}
	if len(res.Tools) != len(wants) {
		t.Errorf("%d tools, want %d", len(res.Tools), len(wants))
	}
	for _, tool := range res.Tools {
		w, known := wants[tool.Name]
		if !known {
			t.Errorf("unexpected tool %s", tool.Name)
			continue
		}
		a := tool.Annotations
		if a.ReadOnlyHint == nil || *a.ReadOnlyHint != w.readOnly || a.DestructiveHint == nil || *a.DestructiveHint != w.destructive ||
			a.IdempotentHint == nil || *a.IdempotentHint != w.idempotent || a.OpenWorldHint == nil || *a.OpenWorldHint {
			t.Errorf("%s: annotations %+v, want %+v and not open-world", tool.Name, a, w)
		}
		b, _ := json.Marshal(tool)
		var schemas struct {
			InputSchema  map[string]any `json:"inputSchema"`
			OutputSchema map[string]any `json:"outputSchema"`
		}
		json.Unmarshal(b, &schemas)
		if schemas.InputSchema["additionalProperties"] != false || schemas.InputSchema["type"] != "object" {
			t.Errorf("%s: input schema %v is not strict", tool.Name, schemas.InputSchema)
		}
		if schemas.OutputSchema["type"] != "object" {
			t.Errorf("%s: output schema %v", tool.Name, schemas.OutputSchema)
		}
	}
}

func TestInitialize(t *testing.T) {
	s, _ := newServer(t)
	c, err := client.NewInProcessClient(s.MCPServer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := initialize(t, c, "x")
	if res.ServerInfo.Name != "taskhub" || !strings.Contains(res.Instructions, "claim_task") ||
		res.Capabilities.Resources == nil || !res.Capabilities.Resources.Subscribe {
		t.Errorf("initialize result %+v", res)
	}
}

func TestToolsSucceed(t *testing.T) {
	s, svc := newServer(t)
	c := connect(t, s, "claude-code")

	dep := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"first","project":"p"}`))
	task := ok[tasks.Task](t, callTool(t, c, "create_task",
		`{"title":" Write docs ","priority":"high","labels":["docs","a","docs"],"depends_on":[1],"project":"p","due_at":"2026-12-01T10:00:00+01:00"}`))
	if task.Title != "Write docs" || task.Priority != "high" || fmt.Sprint(task.Labels) != "[a docs]" ||
		fmt.Sprint(task.DependsOn) != fmt.Sprint([]int64{dep.ID}) || task.CreatedBy != "claude-code" || task.DueAt == nil {
		t.Errorf("created %+v", task)
	}

	got := ok[tasks.Task](t, callTool(t, c, "get_task", fmt.Sprintf(`{"task_id":%d}`, task.ID)))
	if got.Version != 1 || got.Title != "Write docs" {
		t.Errorf("get %+v", got)
	}

	page := ok[tasks.Page](t, callTool(t, c, "list_tasks", `{"project":"p","status":["todo"],"limit":1}`))
	if len(page.Tasks) != 1 || page.Tasks[0].ID != dep.ID || page.NextCursor == "" {
		t.Errorf("list %+v", page)
	}
	page = ok[tasks.Page](t, callTool(t, c, "list_tasks", fmt.Sprintf(`{"cursor":%q}`, page.NextCursor)))
	if len(page.Tasks) != 1 || page.Tasks[0].ID != task.ID || page.NextCursor != "" {
		t.Errorf("second page %+v", page)
	}

	upd := ok[tasks.Task](t, callTool(t, c, "update_task", fmt.Sprintf(`{"task_id":%d,"expected_version":1,"description":"d","due_at":null}`, task.ID)))
	if upd.Version != 2 || upd.Description != "d" || upd.DueAt != nil || upd.UpdatedBy != "claude-code" {
		t.Errorf("update %+v", upd)
	}

	// The dependency is not done: the next ready task is the first one.
	claimed := ok[tasks.Task](t, callTool(t, c, "claim_task", `{"project":"p"}`))
	if claimed.ID != dep.ID || claimed.Assignee != "claude-code" || claimed.Status != "in_progress" {
		t.Errorf("claim %+v", claimed)
	}
	done := ok[tasks.Task](t, callTool(t, c, "update_task_status", fmt.Sprintf(`{"task_id":%d,"status":"done","note":"all good"}`, dep.ID)))
	if done.Status != "done" {
		t.Errorf("status %+v", done)
	}
	claimed = ok[tasks.Task](t, callTool(t, c, "claim_task", fmt.Sprintf(`{"task_id":%d}`, task.ID)))
	if claimed.Status != "in_progress" {
		t.Errorf("claim by id %+v", claimed)
	}

	type eventsOut struct {
		Events  []tasks.Event `json:"events"`
		LastSeq int64         `json:"last_seq"`
	}
	ev := ok[eventsOut](t, callTool(t, c, "list_events", `{"after":0}`))
	if len(ev.Events) != 6 || ev.LastSeq != ev.Events[5].Seq {
		t.Fatalf("events %+v", ev)
	}
	for _, e := range ev.Events {
		if e.Source != tasks.SourceMCP || e.Actor != "claude-code" {
			t.Errorf("event %d by %s/%s", e.Seq, e.Source, e.Actor)
		}
	}
	if ev.Events[4].Note != "all good" {
		t.Errorf("note %q", ev.Events[4].Note)
	}
	ev = ok[eventsOut](t, callTool(t, c, "list_events", fmt.Sprintf(`{"task_id":%d,"after":1,"limit":1}`, task.ID)))
	if len(ev.Events) != 1 || ev.Events[0].TaskID != task.ID {
		t.Errorf("task events %+v", ev)
	}
	ev = ok[eventsOut](t, callTool(t, c, "list_events", `{"types":["task_created"],"source":["mcp_tool"],"project":"p"}`))
	if len(ev.Events) != 2 || ev.Events[0].Type != tasks.EventTaskCreated || ev.Events[1].Type != tasks.EventTaskCreated {
		t.Errorf("filtered events %+v", ev)
	}
	ev = ok[eventsOut](t, callTool(t, c, "list_events", `{"source":["rest_api"]}`))
	if len(ev.Events) != 0 {
		t.Errorf("rest events %+v", ev)
	}
	// The stream's filters, on the values before the change too.
	for _, tc := range []struct{ args, want string }{
		{`{"assignee":"claude-code"}`, "[4 5 6]"},
		{`{"status":["in_progress"]}`, "[4 5 6]"},
		{`{"label":"docs"}`, "[2 3 6]"},
		{`{"status":["done"],"assignee":"claude-code","project":"p","types":["task_updated"]}`, "[5]"},
		{`{"label":"none"}`, "[]"},
	} {
		ev = ok[eventsOut](t, callTool(t, c, "list_events", tc.args))
		var seqs []int64
		for _, e := range ev.Events {
			seqs = append(seqs, e.Seq)
		}
		if got := fmt.Sprint(seqs); got != tc.want && !(tc.want == "[]" && seqs == nil) {
			t.Errorf("list_events %s: seqs %s, want %s", tc.args, got, tc.want)
		}
	}

	del := callTool(t, c, "delete_task", fmt.Sprintf(`{"task_id":%d}`, task.ID))
	if out := ok[map[string]any](t, del); out["deleted"] != true {
		t.Errorf("delete %v", out)
	}
	if _, err := svc.Get(context.Background(), task.ID); tasks.ErrorCode(err) != tasks.ENotFound {
		t.Errorf("after delete: %v", err)
	}
}

func TestToolsFail(t *testing.T) {
	s, svc := newServer(t)
	c := connect(t, s, "agent")
	ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"base"}`))
	ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"dependent","depends_on":[1]}`))
	ok[tasks.Task](t, callTool(t, c, "claim_task", `{"task_id":1}`))
	_, before, _ := svc.Events(context.Background(), 0, 1000)

	for _, tc := range []struct {
		tool, args string
		want       []string
	}{
		{"create_task", `{}`, []string{"title"}},
		{"create_task", `{"title":"   "}`, []string{"title"}},
		{"create_task", `{"title":"x","status":"doing"}`, []string{"status"}},
		{"create_task", `{"title":"x","priority":"asap"}`, []string{"priority"}},
		{"create_task", `{"title":"x","colour":"red"}`, []string{"colour"}},
		{"create_task", `{"title":"x","depends_on":[99]}`, []string{"depends_on", "99"}},
		{"create_task", `{"title":"x","parent_id":99}`, []string{"parent_id"}},
		{"create_task", `{"title":"x","labels":[""]}`, []string{"labels"}},
		{"create_task", `{"title":"x","due_at":"tomorrow"}`, []string{"due_at"}},
		{"get_task", `{}`, []string{"task_id"}},
		{"get_task", `{"task_id":"1"}`, []string{"task_id"}},
		{"get_task", `{"task_id":99}`, []string{"task_id", "not found"}},
		{"list_tasks", `{"limit":0}`, []string{"limit"}},
		{"list_tasks", `{"status":["nope"]}`, []string{"status"}},
		{"list_tasks", `{"cursor":"bogus"}`, []string{"cursor"}},
		{"update_task", `{"task_id":1}`, []string{"at least one field"}},
		{"update_task", `{"task_id":1,"expected_version":1,"title":"y"}`, []string{"expected_version", "version 2"}},
		{"update_task", `{"task_id":1,"depends_on":[2]}`, []string{"depends_on", "cycle"}},
		{"update_task", `{"task_id":99,"title":"y"}`, []string{"task_id"}},
		{"update_task_status", `{"task_id":1}`, []string{"status"}},
		{"update_task_status", `{"task_id":1,"status":"finished"}`, []string{"status"}},
		{"delete_task", `{"task_id":1}`, []string{"task_id", "depends"}},
		{"delete_task", `{"task_id":2,"expected_version":5}`, []string{"expected_version"}},
		{"claim_task", `{"task_id":2}`, []string{"task_id", "not ready"}},
		{"claim_task", `{"project":"none"}`, []string{"project", "no task is ready"}},
		{"claim_task", `{"task_id":0}`, []string{"task_id"}},
		{"list_events", `{"after":-1}`, []string{"after"}},
		{"list_events", `{"limit":5000}`, []string{"limit"}},
		{"list_events", `{"types":["task_moved"]}`, []string{"types"}},
		{"list_events", `{"source":"mcp_tool"}`, []string{"source"}},
		{"list_events", `{"status":["doing"]}`, []string{"status"}},
		{"list_events", `{"assignee":7}`, []string{"assignee"}},
	} {
		t.Run(tc.tool+" "+tc.args, func(t *testing.T) {
			failed(t, callTool(t, c, tc.tool, tc.args), tc.want...)
		})
	}
	// Someone else holds task 1.
	other := connect(t, s, "other-agent")
	failed(t, callTool(t, other, "claim_task", `{"task_id":1}`), "task_id", "already claimed by agent")

	if _, after, _ := svc.Events(context.Background(), 0, 1000); after != before {
		t.Errorf("failed calls changed something: last seq %d, was %d", after, before)
	}
}

func TestUnnamedClient(t *testing.T) {
	s, _ := newServer(t)
	c := connect(t, s, "")
	task := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"anonymous"}`))
	if task.CreatedBy != mcptools.UnnamedClient {
		t.Errorf("created by %q, want %q", task.CreatedBy, mcptools.UnnamedClient)
	}
}

// TestClaimRace has 8 clients claim at once from a project with 3 ready tasks.
func TestClaimRace(t *testing.T) {
	s, _ := newServer(t)
	setup := connect(t, s, "setup")
	for i := range 3 {
		ok[tasks.Task](t, callTool(t, setup, "create_task", fmt.Sprintf(`{"title":"t%d","project":"race"}`, i)))
	}
	blocked := ok[tasks.Task](t, callTool(t, setup, "create_task", `{"title":"later","project":"race","depends_on":[1]}`))
	clients := make([]*client.Client, 8)
	for i := range clients {
		clients[i] = connect(t, s, fmt.Sprintf("agent-%d", i))
	}
	var wg sync.WaitGroup
	results := make([]*mcp.CallToolResult, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			req := mcp.CallToolRequest{}
			req.Params.Name = "claim_task"
			req.Params.Arguments = map[string]any{"project": "race"}
			results[i], _ = c.CallTool(context.Background(), req)
		})
	}
	wg.Wait()
	winners := map[int64]string{}
	for i, r := range results {
		if r == nil {
			t.Fatalf("agent-%d: no result", i)
		}
		if r.IsError {
			if !strings.Contains(text(r), "no task is ready") {
				t.Errorf("agent-%d: %s", i, text(r))
			}
			continue
		}
		task := ok[tasks.Task](t, r)
		if prev, dup := winners[task.ID]; dup {
			t.Errorf("task %d won by %s and agent-%d", task.ID, prev, i)
		}
		winners[task.ID] = task.Assignee
		if task.ID == blocked.ID {
			t.Errorf("the blocked task was claimed")
		}
	}
	if len(winners) != 3 {
		t.Errorf("%d winners, want 3: %v", len(winners), winners)
	}
}

func TestCallerWins(t *testing.T) {
	s, _ := newServerFor(t, "token-ci")
	c := connect(t, s, "claude-code")
	task := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"by token"}`))
	if task.CreatedBy != "token-ci" {
		t.Errorf("created by %q, want the token's name", task.CreatedBy)
	}
}

// TestSchemasPortable walks every tool's input and output schema: none has a type
// list ("type": ["string", "null"]), which clients that map schemas onto a
// single-type dialect reject (the MCP Inspector's schema portability check warns of
// it). Nullable fields are an anyOf of a type and null.
func TestSchemasPortable(t *testing.T) {
	s, _ := newServer(t)
	c := connect(t, s, "walker")
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res.Tools)
	if err != nil {
		t.Fatal(err)
	}
	var tools []struct {
		Name                      string
		InputSchema, OutputSchema any
	}
	if err := json.Unmarshal(b, &tools); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, node any) int
	walk = func(path string, node any) (nodes int) {
		switch n := node.(type) {
		case map[string]any:
			if _, list := n["type"].([]any); list {
				t.Errorf("%s: type list %v; use anyOf with one type in each branch", path, n["type"])
			}
			for k, v := range n {
				nodes += walk(path+"."+k, v)
			}
			return nodes + 1
		case []any:
			for i, v := range n {
				nodes += walk(fmt.Sprintf("%s[%d]", path, i), v)
			}
		}
		return nodes
	}
	for _, tool := range tools {
		if walk(tool.Name+".inputSchema", tool.InputSchema) < 2 || walk(tool.Name+".outputSchema", tool.OutputSchema) < 2 {
			t.Errorf("%s: a schema is missing", tool.Name)
		}
	}
	if len(tools) != 14 {
		t.Errorf("%d tools walked, want 14", len(tools))
	}
}

// TestNullClears: update_task still takes null for parent_id and due_at, which clears
// them, and says so in their descriptions; a value of neither type is refused with a
// message naming the argument and both types.
func TestNullClears(t *testing.T) {
	s, svc := newServer(t)
	c := connect(t, s, "clearer")
	parent := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"parent"}`))
	child := ok[tasks.Task](t, callTool(t, c, "create_task",
		fmt.Sprintf(`{"title":"child","parent_id":%d,"due_at":"2026-12-01T10:00:00Z"}`, parent.ID)))
	if child.ParentID == nil || child.DueAt == nil {
		t.Fatalf("created %+v", child)
	}
	cleared := ok[tasks.Task](t, callTool(t, c, "update_task", fmt.Sprintf(`{"task_id":%d,"parent_id":null,"due_at":null}`, child.ID)))
	if cleared.ParentID != nil || cleared.DueAt != nil {
		t.Errorf("after null: parent_id %v, due_at %v", cleared.ParentID, cleared.DueAt)
	}

	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		if tool.Name != "update_task" {
			continue
		}
		b, err := json.Marshal(tool)
		if err != nil {
			t.Fatal(err)
		}
		var listed struct {
			InputSchema struct {
				Properties map[string]struct{ Description string }
			}
		}
		if err := json.Unmarshal(b, &listed); err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"parent_id", "due_at"} {
			if d := listed.InputSchema.Properties[field].Description; !strings.Contains(d, "null clears it") {
				t.Errorf("update_task's %s: description %q does not say that null clears it", field, d)
			}
		}
	}

	_, before, _ := svc.Events(context.Background(), 0, 1000)
	for _, tc := range []struct{ args, want string }{
		{`"due_at":5`, "argument due_at: got number, want string or null"},
		{`"parent_id":"1"`, "argument parent_id: got string, want integer or null"},
		{`"parent_id":0`, "argument parent_id: minimum"},
		{`"due_at":"tomorrow"`, "due_at must be an RFC 3339 time"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			failed(t, callTool(t, c, "update_task", fmt.Sprintf(`{"task_id":%d,%s}`, child.ID, tc.args)), tc.want)
		})
	}
	if _, after, _ := svc.Events(context.Background(), 0, 1000); after != before {
		t.Errorf("refused calls changed something: last seq %d, was %d", after, before)
	}
}
