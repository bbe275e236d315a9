package mcptools

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// subscriptions tracks which session subscribed to which resource: mcp-go's own
// sessions keep none. A session's subscriptions end with it.
type subscriptions struct {
	mu    sync.Mutex
	byURI map[string]map[string]struct{} // uri → session ids
}

func newSubscriptions(hooks *server.Hooks) *subscriptions {
	s := &subscriptions{byURI: map[string]map[string]struct{}{}}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.add(session.SessionID(), req.Params.URI)
		}
	})
	hooks.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.remove(session.SessionID(), req.Params.URI)
		}
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) {
		s.drop(session.SessionID())
	})
	return s
}

func (s *subscriptions) add(session, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byURI[uri] == nil {
		s.byURI[uri] = map[string]struct{}{}
	}
	s.byURI[uri][session] = struct{}{}
}

func (s *subscriptions) remove(session, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byURI[uri], session)
	if len(s.byURI[uri]) == 0 {
		delete(s.byURI, uri)
	}
}

func (s *subscriptions) drop(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uri, sessions := range s.byURI {
		delete(sessions, session)
		if len(sessions) == 0 {
			delete(s.byURI, uri)
		}
	}
}

func (s *subscriptions) sessions(uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.byURI[uri]))
	for id := range s.byURI[uri] {
		ids = append(ids, id)
	}
	return ids
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
	for _, session := range s.subs.sessions(uri) {
		err := s.mcp.SendNotificationToSpecificClient(session, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
		if err != nil {
			s.logger.Debug("resource update not sent", "session", session, "uri", uri, "err", err)
		}
	}
}
