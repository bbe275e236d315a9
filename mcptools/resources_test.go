package mcptools_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
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

// TestSubscriptions: a session is told of changes to the tasks it subscribed to, once
// each, and of no others. Each session also subscribes to a last task, changed after
// the others: its notification, which comes after any a session got for the tasks
// changed before it, is the sign that nothing else is on its way.
func TestSubscriptions(t *testing.T) {
	for _, version := range []string{mcp.ProtocolVersion20250326, mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			s, svc := newServer(t)
			var ids []int64
			for _, title := range []string{"a", "b", "last"} {
				task, err := svc.Create(context.Background(), tasks.Update{Title: tasks.Value(title)})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, task.ID)
			}
			a, b, last := ids[0], ids[1], ids[2]

			sub := connectVersion(t, s, "subscriber", version)
			subUpdates := subscribe(t, sub, version, a, last)
			other := connectVersion(t, s, "bystander", version)
			otherUpdates := subscribe(t, other, version, last)

			s.TaskChanged(b) // no one subscribed to it
			s.TaskChanged(a)
			s.TaskChanged(last)
			for _, tc := range []struct {
				name    string
				updates <-chan string
				want    []string
			}{
				{"subscriber", subUpdates, []string{mcptools.TaskURI(a), mcptools.TaskURI(last)}},
				{"bystander", otherUpdates, []string{mcptools.TaskURI(last)}},
			} {
				var got []string
				for len(got) == 0 || got[len(got)-1] != mcptools.TaskURI(last) {
					select {
					case uri := <-tc.updates:
						got = append(got, uri)
					case <-time.After(5 * time.Second):
						t.Fatalf("%s: updated %v, then nothing within 5s", tc.name, got)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: updated %v, want %v", tc.name, got, tc.want)
				}
			}
		})
	}
}

// subscribe subscribes c to the tasks with ids and returns the URIs of the
// resources/updated notifications it then gets. On protocol 2026-07-28 it opens the
// subscriptions/listen stream and returns once the server has acknowledged it; a
// subscription of the handshake era is in place when its request returns.
func subscribe(t *testing.T, c *client.Client, version string, ids ...int64) <-chan string {
	t.Helper()
	uris := make(chan string, 16)
	acked := make(chan struct{})
	ack := sync.OnceFunc(func() { close(acked) })
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		switch n.Method {
		case mcp.MethodNotificationResourceUpdated:
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			select {
			case uris <- uri:
			default:
			}
		case mcp.MethodNotificationSubscriptionsAcknowledged:
			ack()
		}
	})
	for _, id := range ids {
		req := mcp.SubscribeRequest{}
		req.Params.URI = mcptools.TaskURI(id)
		//lint:ignore SA1019 resources/subscribe of the handshake era, or the filter of the next Listen
		if err := c.Subscribe(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if version == mcp.ProtocolVersion20260728 {
		stop, err := c.ListenAsync(context.Background(), c.PendingSubscriptionFilter(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		select {
		case <-acked:
		case <-time.After(5 * time.Second):
			t.Fatal("subscriptions/listen not acknowledged within 5s")
		}
	}
	return uris
}
