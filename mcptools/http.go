package mcptools

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"taskhub/broadcaster"

	"github.com/mark3labs/mcp-go/server"
)

// HTTPConfig is how Handler serves MCP over HTTP.
type HTTPConfig struct {
	// Heartbeat is the interval of pings on the Streamable HTTP GET stream and of
	// keepalives on the SSE transport's stream; 0 means 15s.
	Heartbeat time.Duration
	// AllowedOrigins are the browser origins (scheme://host[:port]) that may call,
	// besides the server's own.
	AllowedOrigins []string
}

// Paths of the HTTP transports.
const (
	PathStreamable = "/mcp"
	PathSSE        = "/mcp/sse"
	PathMessage    = "/mcp/message"
)

// Handler serves Streamable HTTP at /mcp and the older SSE transport at /mcp/sse
// (stream) and /mcp/message (client messages). A request that carries an Origin other
// than the server's own or an allowed one is refused with 403: a web page must not
// drive a local MCP server (DNS rebinding, cross-site requests).
func (s *Server) Handler(cfg HTTPConfig) http.Handler {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	streamable := server.NewStreamableHTTPServer(s.mcp,
		server.WithEndpointPath(PathStreamable),
		server.WithHeartbeatInterval(cfg.Heartbeat),
		server.WithSessionIdleTTL(time.Hour),
	)
	sse := server.NewSSEServer(s.mcp,
		server.WithStaticBasePath(PathStreamable),
		server.WithSSEEndpoint("/sse"),
		server.WithMessageEndpoint("/message"),
		server.WithUseFullURLForMessageEndpoint(false),
		server.WithKeepAliveInterval(cfg.Heartbeat),
	)
	s.mu.Lock()
	s.shutdowns = append(s.shutdowns, func(ctx context.Context) {
		_ = streamable.Shutdown(ctx) // stops its session sweeper and closes its sessions
		sse.CloseSessions()
	})
	s.mu.Unlock()
	allowed := broadcaster.NewOrigins(cfg.AllowedOrigins)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !allowed.Allows(origin, r) {
			broadcaster.WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("origin %s is not allowed to use MCP; start the server with --cors-origin %s to allow it", origin, origin), "")
			return
		}
		// Streams (GET) end when the server closes, not only when their clients go;
		// a tool call (POST) in progress finishes.
		if r.Method == http.MethodGet {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			defer context.AfterFunc(s.closing, cancel)()
			untrack, ok := s.track(ctx, cancel)
			if !ok {
				broadcaster.WriteError(w, http.StatusUnauthorized, "unauthorized", "the token this stream was opened with has just been revoked", "")
				return
			}
			defer untrack()
			r = r.WithContext(ctx)
		}
		switch r.URL.Path {
		case PathStreamable:
			streamable.ServeHTTP(w, r)
		case PathSSE, PathMessage:
			sse.ServeHTTP(w, r)
		default:
			broadcaster.WriteError(w, http.StatusNotFound, "not_found", "no MCP endpoint at "+r.URL.Path+"; use "+PathStreamable+" (Streamable HTTP) or "+PathSSE+" (SSE)", "")
		}
	})
}
