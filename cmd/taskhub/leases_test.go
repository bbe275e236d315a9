package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestClaimLeaseFlag(t *testing.T) {
	db := filepath.Join(t.TempDir(), "taskhub.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"zero", nil, []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--claim-lease", "0s"}},
		{"negative", nil, []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--claim-lease", "-1m"}},
		{"from env", map[string]string{"TASKHUB_CLAIM_LEASE": "0"}, []string{"serve", "--addr", "127.0.0.1:0", "--db", db}},
		{"mcp", nil, []string{"mcp", "--db", db, "--claim-lease", "0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), "--claim-lease must be positive") {
				t.Errorf("exit %d; stderr %q; want 2 and a word on --claim-lease", code, stderr.String())
			}
		})
	}
	cfg := DefaultConfig()
	if err := serveFlags(&cfg, []string{"--claim-lease", "2s"}, &bytes.Buffer{}); err != nil || cfg.ClaimLease != 2*time.Second {
		t.Errorf("--claim-lease 2s: %s, %v", cfg.ClaimLease, err)
	}
	t.Setenv("TASKHUB_CLAIM_LEASE", "90s")
	cfg = DefaultConfig()
	if err := serveFlags(&cfg, nil, &bytes.Buffer{}); err != nil || cfg.ClaimLease != 90*time.Second {
		t.Errorf("TASKHUB_CLAIM_LEASE=90s: %s, %v", cfg.ClaimLease, err)
	}
}

// leaseTask is the part of a task the lease tests look at.
type leaseTask struct {
	ID             int64   `json:"id"`
	Status         string  `json:"status"`
	Assignee       string  `json:"assignee"`
	Version        int64   `json:"version"`
	LeaseExpiresAt *string `json:"lease_expires_at"`
}

// logEvent is the part of an event the lease tests look at.
type logEvent struct {
	Seq     int64                         `json:"seq"`
	Type    string                        `json:"type"`
	TaskID  int64                         `json:"task_id"`
	Source  string                        `json:"source"`
	Actor   string                        `json:"actor"`
	Time    time.Time                     `json:"time"`
	Reason  string                        `json:"reason"`
	Changes map[string][2]json.RawMessage `json:"changes"`
	Task    leaseTask                     `json:"task"`
}

func allEventsOf(t *testing.T, url string) []logEvent {
	t.Helper()
	var page struct{ Events []logEvent }
	call(t, http.MethodGet, url+"/api/events?limit=1000", "", http.StatusOK, &page)
	return page.Events
}

// claimNext calls claim_task for the next ready task of project, as c; it returns the
// task, or nil when nothing is ready. It may run on any goroutine.
func claimNext(c *client.Client, project string) (*leaseTask, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = "claim_task"
	req.Params.Arguments = map[string]any{"project": project, "lease_seconds": 600}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, err
	}
	if text := fmt.Sprint(res.Content); res.IsError && strings.Contains(text, "no task is ready") {
		return nil, nil
	} else if res.IsError {
		return nil, fmt.Errorf("claim_task: %s", text)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var task leaseTask
	return &task, json.Unmarshal(b, &task)
}

// TestLeaseRace: two agents race for the tasks of a project, claiming again whenever
// nothing is ready, while a third agent's claim on the most urgent one runs out. No
// task is held by two; the expired one is claimed again, by one of the two; and the
// log holds exactly the creates, the claims and the one expiry, by the system, within
// a second of the lease's end.
func TestLeaseRace(t *testing.T) {
	url, _ := startServer(t, "--claim-lease", "1500ms")
	agents := map[string]*client.Client{}
	for _, name := range []string{"agent-a", "agent-b", "agent-c"} {
		tr, err := transport.NewStreamableHTTP(url + "/mcp")
		if err != nil {
			t.Fatal(err)
		}
		agents[name] = client.NewClient(tr)
		mcpConnect(t, agents[name], name, "")
	}
	c := agents["agent-c"]
	const n = 6
	ids := make([]int64, n)
	for i := range n {
		priority := "medium"
		if i == 0 {
			priority = "urgent"
		}
		ids[i] = structured(t, mcpCall(t, c, "create_task", map[string]any{"title": fmt.Sprint("task ", i), "project": "race", "priority": priority})).ID
	}
	expiring := ids[0]
	res := mcpCall(t, c, "claim_task", map[string]any{"task_id": expiring})
	if res.IsError {
		t.Fatalf("agent-c claims task %d: %v", expiring, res.Content)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var held leaseTask
	if err := json.Unmarshal(b, &held); err != nil || held.LeaseExpiresAt == nil {
		t.Fatalf("agent-c's claim: %s, %v", b, err)
	}
	leaseEnd, err := time.Parse(time.RFC3339Nano, *held.LeaseExpiresAt)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	holders := map[int64]string{}
	var claimed atomic.Int64
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for _, name := range []string{"agent-a", "agent-b"} {
		wg.Go(func() {
			for claimed.Load() < n && time.Now().Before(deadline) {
				task, err := claimNext(agents[name], "race")
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				if task == nil {
					time.Sleep(20 * time.Millisecond) // an agent asking again, as agents do
					continue
				}
				mu.Lock()
				if other, ok := holders[task.ID]; ok {
					t.Errorf("task %d claimed by %s and %s", task.ID, other, name)
				}
				holders[task.ID] = name
				mu.Unlock()
				if task.ID == expiring && time.Now().Before(leaseEnd) {
					t.Errorf("%s claimed task %d before agent-c's lease ran out at %s", name, task.ID, leaseEnd)
				}
				claimed.Add(1)
			}
		})
	}
	wg.Wait()
	if len(holders) != n {
		t.Fatalf("%d of the %d tasks claimed by the racing agents: %v", len(holders), n, holders)
	}

	events := allEventsOf(t, url)
	if len(events) != 2*n+2 {
		t.Errorf("%d events, want %d: %d creates, agent-c's claim, its expiry, %d claims", len(events), 2*n+2, n, n)
	}
	perTask := map[int64][]logEvent{}
	for _, e := range events {
		perTask[e.TaskID] = append(perTask[e.TaskID], e)
	}
	for _, id := range ids {
		es := perTask[id]
		var who []string
		for _, e := range es {
			who = append(who, e.Type+"/"+e.Actor)
		}
		want := []string{"task_created/agent-c", "task_updated/" + holders[id]}
		if id == expiring {
			want = []string{"task_created/agent-c", "task_updated/agent-c", "task_updated/system", "task_updated/" + holders[id]}
		}
		if fmt.Sprint(who) != fmt.Sprint(want) {
			t.Errorf("task %d: events %v, want %v", id, who, want)
		}
	}
	if es := perTask[expiring]; len(es) == 4 {
		e := es[2]
		if e.Source != "system" || e.Reason != "lease_expired" || string(e.Changes["assignee"][0]) != `"agent-c"` ||
			string(e.Changes["status"][1]) != `"todo"` || string(e.Changes["lease_expires_at"][1]) != "null" {
			t.Errorf("expiry event %+v", e)
		}
		if late := e.Time.Sub(leaseEnd); late < 0 || late >= time.Second {
			t.Errorf("expired %s after the lease ran out, want within a second", late)
		}
	}
	// agent-c lost its claim: its heartbeat says who holds the task now.
	beat := mcpCall(t, c, "heartbeat_task", map[string]any{"task_id": expiring})
	if !beat.IsError || !strings.Contains(fmt.Sprint(beat.Content), "held by "+holders[expiring]) {
		t.Errorf("agent-c's heartbeat after its lease ran out: %v", beat.Content)
	}
}

// TestLeaseExpiresAtStart: a lease that runs out while no server runs expires as the
// next one starts.
func TestLeaseExpiresAtStart(t *testing.T) {
	cfg := testConfig(t, DefaultConfig())
	cfg.ClaimLease = 2 * time.Second
	first := NewServer(cfg)
	if err := first.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := createTask(t, first.URL(), `{"title": "left behind"}`)
	var task leaseTask
	call(t, http.MethodPost, fmt.Sprintf("%s/api/tasks/%d/claim", first.URL(), id), "", http.StatusOK, &task)
	before := allEventsOf(t, first.URL())
	lastSeq := before[len(before)-1].Seq
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	leaseEnd, err := time.Parse(time.RFC3339Nano, *task.LeaseExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(leaseEnd)) // no server runs: nothing else can tell the time has come

	started := time.Now()
	second := runServer(t, cfg)
	s := openStream(t, second.URL()+"/events/stream", http.Header{"Last-Event-Id": {fmt.Sprint(lastSeq)}})
	m := s.nextEvent(t, 10*time.Second)
	var e logEvent
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		t.Fatal(err)
	}
	if e.TaskID != id || e.Reason != "lease_expired" || e.Task.Status != "todo" {
		t.Fatalf("first event after the restart: %s", m.Data)
	}
	if d := e.Time.Sub(started); d < 0 || d >= time.Second {
		t.Errorf("expired %s after the server started, want within a second", d)
	}
}

// TestMCPStdioExpiresLeases: `taskhub mcp` expires the leases of its claims itself,
// with no server on the file.
func TestMCPStdioExpiresLeases(t *testing.T) {
	db := filepath.Join(t.TempDir(), "taskhub.db")
	c, err := client.NewStdioMCPClient(os.Args[0], []string{"RUN_AS_TASKHUB=1"}, "mcp", "--db", db, "--claim-lease", "500ms")
	if err != nil {
		t.Fatal(err)
	}
	// A revision of the handshake era, whose resources/subscribe needs no listen stream.
	mcpConnect(t, c, "stdio-agent", mcp.ProtocolVersion20251125)
	task := structured(t, mcpCall(t, c, "create_task", map[string]any{"title": "over stdio"}))
	updated := make(chan struct{}, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationResourceUpdated {
			select {
			case updated <- struct{}{}:
			default:
			}
		}
	})
	req := mcp.SubscribeRequest{}
	req.Params.URI = fmt.Sprintf("taskhub://tasks/%d", task.ID)
	//lint:ignore SA1019 resources/subscribe of the handshake era
	if err := c.Subscribe(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	claimed := structured(t, mcpCall(t, c, "claim_task", map[string]any{"task_id": task.ID}))
	if claimed.Status != "in_progress" {
		t.Fatalf("claimed %+v", claimed)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-updated:
		case <-timeout:
			t.Fatal("the claim over stdio did not expire within 10 s")
		}
		if got := structured(t, mcpCall(t, c, "get_task", map[string]any{"task_id": task.ID})); got.Status == "todo" && got.Assignee == "" {
			return
		}
	}
}
