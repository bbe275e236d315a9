package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// longPoll sends GET /api/events?query with token on its own goroutine; it sends
// the status and body of the answer.
func longPoll(url, token, query string) <-chan string {
	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, url+"/api/events?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}()
	return done
}

// waiting returns once s has n calls waiting.
func waiting(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.waits.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls waiting, want %d", s.waits.Waiting(), n)
		}
		runtime.Gosched()
	}
}

// TestMaxWaitsPerToken: REST long polls and MCP wait_for_events count together
// against --max-waits-per-token of the token; one over is 429 on REST, a
// rate_limited tool error on MCP.
func TestMaxWaitsPerToken(t *testing.T) {
	cfg := DefaultConfig()
	if err := serveFlags(&cfg, []string{"--token", "s3cret", "--max-waits-per-token", "1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := runServer(t, testConfig(t, cfg))
	first := longPoll(s.URL(), "s3cret", "wait=30s")
	waiting(t, s, 1)
	resp, b := send(t, http.MethodGet, s.URL()+"/api/events?wait=30s", "s3cret", "", nil)
	if resp.StatusCode != http.StatusTooManyRequests || errorCode(b) != "rate_limited" {
		t.Errorf("a second long poll: %d %s", resp.StatusCode, b)
	}
	tr, err := transport.NewStreamableHTTP(s.URL()+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	mcpConnect(t, c, "agent", "")
	if res := mcpCall(t, c, "wait_for_events", map[string]any{"timeout_seconds": 30}); !res.IsError || !strings.Contains(fmt.Sprint(res.Content), "rate_limited") {
		t.Errorf("wait_for_events over the token's bound: %+v", res.Content)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/tasks", strings.NewReader(`{"title":"wake"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", resp, err)
	}
	if got := <-first; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"task_created"`) {
		t.Errorf("the first long poll: %s", got)
	}
}

// TestShutdownAnswersLongPolls: a server that stops answers the long polls it holds
// at once, with what the log has, rather than holding its shutdown for them.
func TestShutdownAnswersLongPolls(t *testing.T) {
	s := NewServer(testConfig(t, DefaultConfig()))
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	answer := longPoll(s.URL(), "", "after=0&wait=60s")
	waiting(t, s, 1)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-answer; got != `200 {"events":[],"last_seq":0}` {
		t.Errorf("the long poll at shutdown: %s", got)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopping took %s", took)
	}
}

// TestMCPStdioWait: wait_for_events over stdio is woken by a change that the server
// beside it, on the same database, makes: the stdio process's tailer sees it.
func TestMCPStdioWait(t *testing.T) {
	url, db := startServer(t)
	id := createTask(t, url, `{"title":"watched"}`)
	c, err := client.NewStdioMCPClient(os.Args[0], []string{"RUN_AS_TASKHUB=1"}, "mcp", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	mcpConnect(t, c, "stdio-waiter", "")
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "wait_for_events"
		req.Params.Arguments = map[string]any{"after": 1, "task_id": id, "status": []string{"done"}, "timeout_seconds": 30}
		res, err := c.CallTool(context.Background(), req)
		if err != nil {
			res = mcp.NewToolResultError(err.Error())
		}
		done <- res
	}()
	// Nothing from the other process says that its call waits: give it the time to.
	// The first change does not match, so whenever the call read the log, only the
	// second one can end it.
	time.Sleep(300 * time.Millisecond)
	patchTask(t, url, id, `{"status":"review"}`)
	patchTask(t, url, id, `{"status":"done"}`)
	changed := time.Now()
	select {
	case res := <-done:
		var out struct {
			Events []struct {
				Seq  int64
				Task struct{ Status string }
			}
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &out); err != nil || res.IsError || len(out.Events) != 1 || out.Events[0].Seq != 3 || out.Events[0].Task.Status != "done" {
			t.Errorf("wait_for_events: %s %+v", b, res.Content)
		}
		if late := time.Since(changed); late > 2*time.Second {
			t.Errorf("returned %s after the server's change", late)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("wait_for_events did not return within 20s of the change")
	}
}
