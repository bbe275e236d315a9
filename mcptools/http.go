package mcptools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"taskhub/broadcaster"

	"github.com/mark3labs/mcp-go/mcp"
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
	// SessionIdle ends a Streamable HTTP session after this long without a request or
	// a message on its GET stream (checked every half of it); 0 means
	// DefaultSessionIdle.
	SessionIdle time.Duration
	// MaxSessions bounds the open Streamable HTTP sessions; 0 means
	// DefaultMaxSessions.
	MaxSessions int
	// MaxSessionsPerCaller bounds those of one caller (Config.Caller's name); 0: only
	// MaxSessions does.
	MaxSessionsPerCaller int
}

// Paths of the HTTP transports.
const (
	PathStreamable = "/mcp"
	PathSSE        = "/mcp/sse"
	PathMessage    = "/mcp/message"
	// PathSessions lists the open Streamable HTTP sessions, for an admin.
	PathSessions = "/mcp/sessions"
)

// Handler serves Streamable HTTP at /mcp and the older SSE transport at /mcp/sse
// (stream) and /mcp/message (client messages). A request that carries an Origin other
// than the server's own or an allowed one is refused with 403: a web page must not
// drive a local MCP server (DNS rebinding, cross-site requests).
//
// Streamable HTTP sessions of the handshake era are tracked (see serveStreamable);
// GET /mcp/sessions lists them. Requests of the stateless revision (2026-07-28) have
// no session and pass untouched.
func (s *Server) Handler(cfg HTTPConfig) http.Handler {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	table := newSessionTable(cfg.MaxSessions, cfg.MaxSessionsPerCaller, cfg.SessionIdle)
	streamable := server.NewStreamableHTTPServer(s.mcp,
		server.WithEndpointPath(PathStreamable),
		server.WithHeartbeatInterval(cfg.Heartbeat),
		// mcp-go's sweeper ends the idle sessions, through the table's Terminate.
		server.WithSessionIdleTTL(cfg.SessionIdle),
		server.WithSessionIdManagerResolver(table),
		server.WithStreamableHTTPLogger(s.logger),
	)
	sse := server.NewSSEServer(s.mcp,
		server.WithStaticBasePath(PathStreamable),
		server.WithSSEEndpoint("/sse"),
		server.WithMessageEndpoint("/message"),
		server.WithUseFullURLForMessageEndpoint(false),
		server.WithKeepAliveInterval(cfg.Heartbeat),
	)
	s.mu.Lock()
	s.tables = append(s.tables, table)
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
			s.serveStreamable(w, r, table, streamable)
		case PathSessions:
			s.serveSessions(w, r, table)
		case PathSSE, PathMessage:
			sse.ServeHTTP(w, r)
		default:
			broadcaster.WriteError(w, http.StatusNotFound, "not_found", "no MCP endpoint at "+r.URL.Path+"; use "+PathStreamable+" (Streamable HTTP) or "+PathSSE+" (SSE)", "")
		}
	})
}

// serveStreamable keeps the session rules of Streamable HTTP before next (mcp-go's
// transport) serves r: an initialize opens a session if the table has room; any other
// POST, a GET or a DELETE must name an open session of its caller (400 without one,
// 404 for one that is unknown, ended or another caller's, after which a client
// initializes again). A GET stream is the session's until the session ends. Requests
// of the stateless revision pass untouched.
func (s *Server) serveStreamable(w http.ResponseWriter, r *http.Request, t *sessionTable, next http.Handler) {
	if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		next.ServeHTTP(w, r)
		return
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			broadcaster.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("the request body could not be read: %v", err), "")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		// A body that is not one JSON-RPC message is mcp-go's to refuse, once a
		// session is named.
		if json.Unmarshal(body, &msg) == nil && mcp.IsModernProtocol(msg.Params.Meta.ProtocolVersion()) {
			next.ServeHTTP(w, r)
			return
		}
	case http.MethodGet, http.MethodDelete:
	case http.MethodHead: // a probe: mcp-go answers it, in no session
		next.ServeHTTP(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		broadcaster.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" "+PathStreamable+" is not allowed; use POST, GET or DELETE", "")
		return
	}
	caller, _ := s.caller(r.Context())
	if r.Method == http.MethodPost && msg.Method == string(mcp.MethodInitialize) {
		sess, err := t.reserve(caller, time.Now())
		if err != nil {
			s.refuseSession(w, caller, t, err)
			return
		}
		defer t.release(sess)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reservedKey{}, sess)))
		return
	}
	id := r.Header.Get(server.HeaderKeySessionID)
	if id == "" {
		broadcaster.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("%s %s needs the %s header with the id the initialize response gave; send initialize first", r.Method, PathStreamable, server.HeaderKeySessionID),
			server.HeaderKeySessionID)
		return
	}
	sess, err := t.use(id, caller, time.Now())
	if err == nil && r.Method == http.MethodGet {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		unregister, ok := t.stream(sess, cancel)
		if !ok {
			err = errUnknownSession // ended since use
		} else {
			defer unregister()
			r = r.WithContext(ctx)
		}
	}
	if err != nil {
		broadcaster.WriteError(w, http.StatusNotFound, "not_found",
			"session "+id+" is not open (it ended, expired or never was); send initialize without a session id to open a new one", server.HeaderKeySessionID)
		return
	}
	defer func() { t.touch(sess, time.Now()) }()
	next.ServeHTTP(w, r)
}

// refuseSession answers an initialize the table has no room for: 503 when the server
// is full, 429 when the caller has its share.
func (s *Server) refuseSession(w http.ResponseWriter, caller string, t *sessionTable, err error) {
	open, mine := t.count(caller)
	s.logger.Warn("MCP session refused", "reason", err.Error(), "caller", caller, "open", open, "caller_open", mine)
	if errors.Is(err, errCallerShare) {
		broadcaster.WriteError(w, http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("%q has %d MCP sessions open, its share; end unused ones (DELETE %s) or let them expire after %s idle", caller, mine, PathStreamable, t.idle), "")
		return
	}
	broadcaster.WriteError(w, http.StatusServiceUnavailable, "unavailable",
		fmt.Sprintf("the server has %d MCP sessions open, its limit; try again once some end (DELETE %s) or expire after %s idle", open, PathStreamable, t.idle), "")
}
