package mcptools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"taskhub/mcptools"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestStreamsOutliveReadTimeout: the SSE stream and a subscriptions/listen stream stay
// up past the HTTP server's read timeout (serve sets one), which is for reading
// requests: net/http lifts it once a request is read.
func TestStreamsOutliveReadTimeout(t *testing.T) {
	s, svc := newServer(t)
	task, err := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("watched")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour}))
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	defer s.Close()

	sseTransport, err := transport.NewSSE(srv.URL + "/mcp/sse")
	if err != nil {
		t.Fatal(err)
	}
	sse := client.NewClient(sseTransport, client.WithProtocolVersion(mcp.ProtocolVersion20241105))
	tr, err := transport.NewStreamableHTTP(srv.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	listen := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20260728))
	uri := mcptools.TaskURI(task.ID)
	for name, c := range map[string]*client.Client{"sse": sse, "listen": listen} {
		t.Run(name, func(t *testing.T) {
			got := make(chan string, 4)
			c.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == mcp.MethodNotificationResourceUpdated {
					got <- fmt.Sprint(n.Params.AdditionalFields["uri"])
				}
			})
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := mcp.InitializeRequest{}
			req.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
			if _, err := c.Initialize(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			sub := mcp.SubscribeRequest{}
			sub.Params.URI = uri
			//lint:ignore SA1019 resources/subscribe of the handshake era, or the filter of the next Listen
			if err := c.Subscribe(context.Background(), sub); err != nil {
				t.Fatal(err)
			}
			if name == "listen" {
				stop, err := c.ListenAsync(context.Background(), c.PendingSubscriptionFilter(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			}
			time.Sleep(time.Second) // five read timeouts
			s.TaskChanged(task.ID)
			select {
			case u := <-got:
				if u != uri {
					t.Errorf("updated %s", u)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the stream did not outlive the read timeout")
			}
		})
	}
}

// TestCloseStopsTransports: the transports' background work (mcp-go's session sweeper)
// ends with Close, however many handlers were made.
func TestCloseStopsTransports(t *testing.T) {
	s, _ := newServer(t)
	before := runtime.NumGoroutine()
	s.Handler(mcptools.HTTPConfig{})
	s.Handler(mcptools.HTTPConfig{})
	if runtime.NumGoroutine() <= before {
		t.Fatal("the handlers started nothing to stop: this test checks nothing")
	}
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before the handlers", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTrack: every HTTP stream is tracked while it is open, and ends when its end is
// called (its token revoked); a stream whose tracking is refused is not served.
func TestTrack(t *testing.T) {
	db := openDB(t)
	ends := make(chan func(), 1)
	refuse := false
	s := mcptools.New(mcptools.Config{Service: tasks.NewService(db),
		Track: func(_ context.Context, end func()) (func(), bool) {
			if refuse {
				return nil, false
			}
			ends <- end
			return func() {}, true
		}})
	srv := httptest.NewServer(s.Handler(mcptools.HTTPConfig{Heartbeat: time.Hour}))
	defer srv.Close()
	defer s.Close()
	resp, err := http.Get(srv.URL + "/mcp/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("event: endpoint"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "event: endpoint" {
		t.Fatalf("SSE stream starts %q, %v", first, err)
	}
	(<-ends)() // the token is revoked
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); ended <- err }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after its end was called")
	}

	refuse = true
	resp, err = http.Get(srv.URL + "/mcp/sse")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("a refused stream: %d %s, want a JSON 401", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestHTTPErrors checks that the handler's own refusals have the API's error shape,
// and which origins it lets through: its own, and the allowed ones however a browser
// spells them.
func TestHTTPErrors(t *testing.T) {
	s, _ := newServer(t)
	srv := httptest.NewServer(s.Handler(mcptools.HTTPConfig{AllowedOrigins: []string{"https://Board.example:8443/"}}))
	defer srv.Close()
	defer s.Close()
	for _, tc := range []struct {
		name, path, origin string
		status             int
		code               string
	}{
		{"foreign origin", "/mcp", "https://evil.example", http.StatusForbidden, "forbidden"},
		{"own host on another scheme", "/mcp", "https://" + srv.Listener.Addr().String(), http.StatusForbidden, "forbidden"},
		{"unknown path", "/mcp/nope", "", http.StatusNotFound, "not_found"},
		{"own origin", "/mcp/nope", srv.URL, http.StatusNotFound, "not_found"},
		{"allowed origin", "/mcp/nope", "https://board.example:8443", http.StatusNotFound, "not_found"},
		{"allowed origin in capitals", "/mcp/nope", "HTTPS://BOARD.EXAMPLE:8443", http.StatusNotFound, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			e := body["error"]
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" ||
				len(body) != 1 || e["code"] != tc.code || e["message"] == "" {
				t.Errorf("status %d, Content-Type %q, body %v; want %d and the error %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
			}
		})
	}
}
