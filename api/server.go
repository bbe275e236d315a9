// Package api is TaskHub's HTTP server on echo: the REST API of tasks and events, error
// mapping, limits, and the mounting of the other HTTP parts. Handlers only translate
// between HTTP and tasks.Service; every rule lives in the Service.
package api

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"taskhub/tasks"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Config is what the server is built from.
type Config struct {
	Service *tasks.Service
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
	if cfg.WriteRate > 0 {
		e.Use(writeLimit(cfg.WriteRate))
	}

	h := &handlers{svc: cfg.Service}
	// HEAD wherever GET: net/http sends the headers and drops the body.
	get := func(path string, fn echo.HandlerFunc) { e.Match([]string{http.MethodGet, http.MethodHead}, path, fn) }
	get("/healthz", h.health)
	e.POST("/api/tasks", h.createTask)
	get("/api/tasks", h.listTasks)
	get("/api/tasks/:id", h.getTask)
	e.PATCH("/api/tasks/:id", h.updateTask)
	e.DELETE("/api/tasks/:id", h.deleteTask)
	get("/api/tasks/:id/events", h.taskEvents)
	get("/api/events", h.events)
	get("/api/vocabulary", h.vocabulary)
	if cfg.Stream != nil {
		e.GET("/events/stream", echo.WrapHandler(cfg.Stream))
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
		web := echo.WrapHandler(cfg.Web)
		get("/*", func(c echo.Context) error {
			if isAPIPath(c.Request().URL.Path) {
				return echo.ErrNotFound // answered in the API's JSON shape
			}
			return web(c)
		})
	}
	return e
}

// loopbackHost refuses a request that does not name a loopback host: a server without
// tokens trusts whoever reaches it, and a web page can reach 127.0.0.1 under its own
// name by rebinding that name in DNS, but cannot make the browser send another Host.
func loopbackHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		host := c.Request().Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
			return next(c)
		}
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(
			"Host %q is not this server: a server without tokens answers only to 127.0.0.1, [::1] or localhost", c.Request().Host)}
	}
}

// apiPrefixes are the paths of machine clients, whose unknown paths get a JSON 404
// rather than the dashboard's.
var apiPrefixes = []string{"/api/", "/events/", "/mcp/", "/.well-known/"}

// isAPIPath reports whether p is one of apiPrefixes or under one, however a client
// spelt it: //api/tasks and /API/tasks are a machine client's mistakes too.
func isAPIPath(p string) bool {
	p = strings.ToLower(path.Clean("/" + p))
	for _, prefix := range apiPrefixes {
		if p+"/" == prefix || strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// mcpCORS answers the CORS preflight requests of the allowed origins on /mcp and
// lets them read the answers, the token's challenge and the MCP session id included.
func mcpCORS(origins []string) echo.MiddlewareFunc {
	allowed := make([]string, 0, len(origins))
	for _, o := range origins {
		allowed = append(allowed, strings.TrimSuffix(strings.ToLower(o), "/"))
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return p != "/mcp" && !strings.HasPrefix(p, "/mcp/")
		},
		AllowOriginFunc: func(origin string) (bool, error) {
			return slices.Contains(allowed, strings.TrimSuffix(strings.ToLower(origin), "/")), nil
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
