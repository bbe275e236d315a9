// Package api is TaskHub's HTTP server on echo: the REST API of tasks and events, error
// mapping, limits, and the mounting of the other HTTP parts. Handlers only translate
// between HTTP and tasks.Service; every rule lives in the Service.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"taskhub/broadcaster"
	"taskhub/tasks"
	"taskhub/webhooks"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Config is what the server is built from.
type Config struct {
	Service *tasks.Service
	// Webhooks serves /api/webhooks (admin scope); not served when nil.
	Webhooks *webhooks.Service
	// Health, if set, tells /healthz whether the database answers: an error makes it
	// 503 unavailable.
	Health  func(context.Context) error
	Logger  *slog.Logger
	Stream  http.Handler // GET /events/stream; not served when nil
	Debug   http.Handler // GET /events/debug; not served when nil
	Metrics http.Handler // GET /metrics; not served when nil
	MCP     http.Handler // /mcp and everything below it; not served when nil
	Web     http.Handler // the dashboard: GET of any path no other route takes; not served when nil
	// Auth checks tokens on /api, /events, /mcp and /metrics; nil, with OAuth nil too,
	// leaves everything open.
	Auth *Auth
	// OAuth, when set, also lets in the access tokens of its issuer, and serves the
	// protected resource metadata at ProtectedResourcePath.
	OAuth *OAuth
	// CORSOrigins are the browser origins, besides the server's own, that may call /mcp:
	// they get CORS headers, and their preflight requests an answer without a token.
	CORSOrigins []string
	// LoopbackHostOnly refuses, with 403, every request whose Host is not a loopback
	// address or localhost.
	LoopbackHostOnly bool
	// WriteRate, when above 0, limits changes (and MCP requests) to this many per
	// second per token, or per client IP address without tokens.
	WriteRate float64
	// Waits, fed by the tailer (tasklog.Wake), holds the long polls of GET
	// /api/events?wait=…; nil refuses a wait.
	Waits *broadcaster.Waits
}

// New returns the HTTP handler of the whole server.
func New(cfg Config) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	// Panics are logged like every other internal error: echo's own logger would
	// write them to stdout, which carries only the listening line.
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			cfg.Logger.Error("handler panicked", "method", c.Request().Method, "path", c.Request().URL.Path,
				"err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(requestLog(cfg.Logger))
	// Limits every body, before any handler reads it. (Middleware given to a Group
	// would make echo answer 404 instead of 405 for a wrong method under it.)
	e.Use(middleware.BodyLimit("1MiB"))
	if cfg.LoopbackHostOnly {
		e.Use(loopbackHost)
	}
	if len(cfg.CORSOrigins) > 0 {
		e.Use(mcpCORS(cfg.CORSOrigins)) // before auth: a preflight carries no token
	}
	if cfg.Auth != nil || cfg.OAuth != nil {
		e.Use(authenticate(cfg.Auth, cfg.OAuth))
	}
	if cfg.Web != nil {
		e.Use(unknownPaths(cfg.Web))
	}
	if cfg.WriteRate > 0 {
		e.Use(writeLimit(cfg.WriteRate))
	}

	h := &handlers{svc: cfg.Service, healthy: cfg.Health, waits: cfg.Waits}
	// HEAD wherever GET: net/http sends the headers and drops the body.
	get := func(path string, fn echo.HandlerFunc) { e.Match([]string{http.MethodGet, http.MethodHead}, path, fn) }
	get("/healthz", h.health)
	e.POST("/api/tasks", h.createTask)
	get("/api/tasks", h.listTasks)
	get("/api/tasks/:id", h.getTask)
	e.PATCH("/api/tasks/:id", h.updateTask)
	e.DELETE("/api/tasks/:id", h.deleteTask)
	get("/api/tasks/:id/events", h.taskEvents)
	e.POST("/api/tasks/:id/notes", h.addNote)
	get("/api/tasks/:id/notes", h.listNotes)
	e.POST("/api/tasks/claim", h.claimNext)
	e.POST("/api/tasks/:id/claim", h.claimTask)
	e.POST("/api/tasks/:id/heartbeat", h.heartbeat)
	e.POST("/api/tasks/:id/release", h.release)
	get("/api/events", h.events)
	get("/api/vocabulary", h.vocabulary)
	if cfg.Webhooks != nil {
		mountWebhooks(e, cfg.Webhooks)
	}
	if cfg.Stream != nil {
		e.GET("/events/stream", echo.WrapHandler(cfg.Stream))
		e.HEAD("/events/stream", streamHead)
	}
	if cfg.Debug != nil {
		get("/events/debug", echo.WrapHandler(cfg.Debug))
	}
	if cfg.Metrics != nil {
		get("/metrics", echo.WrapHandler(cfg.Metrics))
	}
	if cfg.MCP != nil {
		e.Any("/mcp", echo.WrapHandler(cfg.MCP))
		e.Any("/mcp/*", echo.WrapHandler(cfg.MCP))
	}
	if cfg.OAuth != nil {
		cfg.OAuth.mount(e)
	}
	if cfg.Web != nil {
		get("/*", dashboard(cfg.Web))
	}
	return e
}

// dashboard serves the dashboard's files. A path that is none of them is the JSON 404
// of every unknown path, not the file server's text.
func dashboard(web http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		w := &notFoundCatcher{ResponseWriter: c.Response()}
		web.ServeHTTP(w, c.Request())
		if w.notFound {
			return echo.ErrNotFound
		}
		return nil
	}
}

// unknownPaths makes a path that no route serves a 404 whatever the method: since the
// dashboard's route takes GET of every path, echo would answer any other method with
// 405. A file of the dashboard keeps its 405.
func unknownPaths(web http.Handler) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if c.Path() == "/*" && r.Method != http.MethodGet && r.Method != http.MethodHead && !serves(web, r) {
				return echo.ErrNotFound
			}
			return next(c)
		}
	}
}

// serves reports whether web has a response other than 404 for a HEAD of r's path.
func serves(web http.Handler, r *http.Request) bool {
	probe := r.Clone(r.Context())
	probe.Method, probe.Body, probe.ContentLength = http.MethodHead, http.NoBody, 0
	w := &statusOnly{header: http.Header{}, status: http.StatusOK}
	web.ServeHTTP(w, probe)
	return w.status != http.StatusNotFound
}

// notFoundCatcher passes a response on unless its status is 404, which it drops with
// its body, so that the JSON 404 can be sent instead.
type notFoundCatcher struct {
	http.ResponseWriter
	notFound bool
}

func (w *notFoundCatcher) WriteHeader(status int) {
	if status == http.StatusNotFound {
		w.notFound = true
		w.Header().Del(echo.HeaderContentType) // the file server's text/plain
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *notFoundCatcher) Write(b []byte) (int, error) {
	if w.notFound {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *notFoundCatcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusOnly is a response writer that keeps only the status.
type statusOnly struct {
	header http.Header
	status int
	wrote  bool
}

func (w *statusOnly) Header() http.Header { return w.header }

func (w *statusOnly) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
}

func (w *statusOnly) Write(b []byte) (int, error) {
	w.wrote = true
	return len(b), nil
}

// streamHead answers HEAD /events/stream as GET would, with the same checks of the
// request and the stream's headers, but opens no stream: the stream's handler takes its
// connection over and writes the body at once.
func streamHead(c echo.Context) error {
	r := c.Request()
	if _, err := broadcaster.ParseStreamRequest(r.URL.RawQuery, r.Header.Get("Last-Event-ID"), StreamVocabulary(), "access_token"); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	return c.NoContent(http.StatusOK)
}

// loopbackHost refuses a request that does not name a loopback host: a server without
// tokens trusts whoever reaches it, and a web page can reach 127.0.0.1 under its own
// name by rebinding that name in DNS, but cannot make the browser send another Host.
func loopbackHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if IsLoopbackHost(c.Request().Host) {
			return next(c)
		}
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(
			"Host %q is not this server: a server without tokens answers only to 127.0.0.1, [::1] or localhost", c.Request().Host)}
	}
}

// IsLoopbackHost reports whether host, with or without a port, names the loopback
// interface: localhost (in any case) or a loopback address such as 127.0.0.1 or
// [::1]. It is the one such test, for the Host of a request and for the address a
// server without tokens may listen on.
func IsLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}

// mcpCORS answers the CORS preflight requests of the allowed origins on /mcp and
// lets them read the answers, the token's challenge and the MCP session id included.
func mcpCORS(origins []string) echo.MiddlewareFunc {
	allowed := broadcaster.NewOrigins(origins)
	return middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return p != "/mcp" && !strings.HasPrefix(p, "/mcp/")
		},
		AllowOriginFunc: func(origin string) (bool, error) {
			return allowed.Contains(origin), nil
		},
		AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowHeaders:  []string{"Authorization", "Content-Type", "Accept", "Last-Event-ID", "Mcp-Session-Id", "Mcp-Protocol-Version"},
		ExposeHeaders: []string{"Mcp-Session-Id", "WWW-Authenticate", "Retry-After"},
		MaxAge:        600,
	})
}

// requestLog logs every request at debug level, so a busy server pays for access logs
// only when asked (--log-level debug).
func requestLog(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !logger.Enabled(c.Request().Context(), slog.LevelDebug) {
				return next(c)
			}
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the response now, so its status is logged
			}
			r := c.Request()
			logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", c.Response().Status,
				"bytes", c.Response().Size, "duration", time.Since(start), "remote_addr", r.RemoteAddr)
			return nil
		}
	}
}
