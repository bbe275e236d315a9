package mcptools_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"taskhub/mcptools"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// connectVersion is connect with the protocol version pinned.
func connectVersion(t *testing.T, s *mcptools.Server, name, version string) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClientWithOptions(s.MCPServer(), client.WithProtocolVersion(version))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	if _, err := c.Initialize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return c
}

// updates returns a channel of the URIs of the resources/updated notifications c gets.
func updates(c *client.Client) <-chan string {
	ch := make(chan string, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationResourceUpdated {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			select {
			case ch <- uri:
			default:
			}
		}
	})
	return ch
}

func TestReadResource(t *testing.T) {
	s, svc := newServer(t)
	task, err := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("read me")})
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, s, "reader")
	templates, err := c.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
	if err != nil || len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate.Raw() != "taskhub://tasks/{id}" {
		t.Fatalf("templates %+v, %v", templates, err)
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = mcptools.TaskURI(task.ID)
	res, err := c.ReadResource(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := res.Contents[0].(mcp.TextResourceContents)
	if !ok || tc.MIMEType != "application/json" {
		t.Fatalf("contents %+v", res.Contents)
	}
	var got tasks.Task
	if err := json.Unmarshal([]byte(tc.Text), &got); err != nil || got.ID != task.ID || got.Title != "read me" {
		t.Errorf("read %s: %v", tc.Text, err)
	}
	req.Params.URI = "taskhub://tasks/99"
	if _, err := c.ReadResource(context.Background(), req); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing task: %v", err)
	}
}

func TestSubscriptions(t *testing.T) {
	for _, version := range []string{mcp.ProtocolVersion20250326, mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			s, svc := newServer(t)
			a, _ := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("a")})
			b, _ := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("b")})

			sub := connectVersion(t, s, "subscriber", version)
			subUpdates := updates(sub)
			other := connectVersion(t, s, "bystander", version)
			otherUpdates := updates(other)

			req := mcp.SubscribeRequest{}
			req.Params.URI = mcptools.TaskURI(a.ID)
			//lint:ignore SA1019 resources/subscribe of the handshake era, or the filter of the next Listen
			if err := sub.Subscribe(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if version == mcp.ProtocolVersion20260728 {
				stop, err := sub.ListenAsync(context.Background(), sub.PendingSubscriptionFilter(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
				time.Sleep(100 * time.Millisecond) // the listen request reaches the server
			}
			s.TaskChanged(b.ID) // not subscribed to
			s.TaskChanged(a.ID)
			select {
			case uri := <-subUpdates:
				if uri != mcptools.TaskURI(a.ID) {
					t.Errorf("updated %s, want %s", uri, mcptools.TaskURI(a.ID))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no resources/updated within 5s")
			}
			select {
			case uri := <-subUpdates:
				t.Errorf("also updated %s", uri)
			case uri := <-otherUpdates:
				t.Errorf("an unsubscribed session got %s", uri)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}
