package mcptools

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// subscriptions tracks which session subscribed to which resource: mcp-go's own
// sessions keep none. Sessions of the initialize handshake subscribe with
// resources/subscribe and are told by session id; on protocol 2026-07-28 a client
// names its resources in a subscriptions/listen request instead, whose stream is the
// session until it ends. A session's subscriptions end with it.
type subscriptions struct {
	mu    sync.Mutex
	byURI map[string]map[server.ClientSession]bool // uri → session → on a listen stream
}

func newSubscriptions(hooks *server.Hooks) *subscriptions {
	s := &subscriptions{byURI: map[string]map[server.ClientSession]bool{}}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.add(session, false, req.Params.URI)
		}
	})
	hooks.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.remove(session, req.Params.URI)
		}
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) { s.drop(session) })
	hooks.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.add(session, true, req.Params.Notifications.ResourceSubscriptions...)
		}
	})
	hooks.AddAfterSubscriptionsListen(func(ctx context.Context, _ any, _ *mcp.SubscriptionsListenRequest, _ *mcp.SubscriptionsListenResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.drop(session)
		}
	})
	hooks.AddOnError(func(ctx context.Context, _ any, method mcp.MCPMethod, _ any, _ error) {
		if method == mcp.MethodSubscriptionsListen {
			if session := server.ClientSessionFromContext(ctx); session != nil {
				s.drop(session)
			}
		}
	})
	return s
}

func (s *subscriptions) add(session server.ClientSession, listen bool, uris ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, uri := range uris {
		if s.byURI[uri] == nil {
			s.byURI[uri] = map[server.ClientSession]bool{}
		}
		s.byURI[uri][session] = listen
	}
}

func (s *subscriptions) remove(session server.ClientSession, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byURI[uri], session)
	if len(s.byURI[uri]) == 0 {
		delete(s.byURI, uri)
	}
}

func (s *subscriptions) drop(session server.ClientSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uri, sessions := range s.byURI {
		delete(sessions, session)
		if len(sessions) == 0 {
			delete(s.byURI, uri)
		}
	}
}

func (s *subscriptions) sessions(uri string) map[server.ClientSession]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byURI[uri])
}

// taskURIPrefix starts the URI of a task resource: taskhub://tasks/{id}.
const taskURIPrefix = "taskhub://tasks/"

// TaskURI returns the resource URI of the task with id.
func TaskURI(id int64) string { return taskURIPrefix + strconv.FormatInt(id, 10) }

// parseTaskURI returns the id in a task resource URI.
func parseTaskURI(uri string) (int64, bool) {
	rest, ok := strings.CutPrefix(uri, taskURIPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0 && strconv.FormatInt(id, 10) == rest
}

// TaskChanged tells the sessions subscribed to the task with id that it changed. It
// never blocks: a session whose queue is full misses the notification. Call it for
// every committed change, whoever made it (the broadcaster's events).
func (s *Server) TaskChanged(id int64) {
	uri := TaskURI(id)
	params := map[string]any{"uri": uri}
	for session, listen := range s.subs.sessions(uri) {
		var err error
		if listen {
			// The listen stream's session is known only to its request.
			select {
			case session.NotificationChannel() <- mcp.JSONRPCNotification{
				JSONRPC:      mcp.JSONRPC_VERSION,
				Notification: mcp.Notification{Method: mcp.MethodNotificationResourceUpdated, Params: mcp.NotificationParams{AdditionalFields: params}},
			}:
			default:
				err = server.ErrNotificationChannelBlocked
			}
		} else {
			err = s.mcp.SendNotificationToSpecificClient(session.SessionID(), mcp.MethodNotificationResourceUpdated, params)
		}
		if err != nil {
			s.logger.Debug("resource update not sent", "session", session.SessionID(), "uri", uri, "err", err)
		}
	}
}

// uris lists the resources the session id subscribed to, sorted.
func (s *subscriptions) uris(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []string{}
	for uri, sessions := range s.byURI {
		for session := range sessions {
			if session.SessionID() == id {
				list = append(list, uri)
				break
			}
		}
	}
	slices.Sort(list)
	return list
}
