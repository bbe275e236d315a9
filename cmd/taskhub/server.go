package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"taskhub/api"
	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/mcptools"
	"taskhub/tasks"
	"taskhub/web"
	"taskhub/webhooks"
)

// Config is what a Server is built from: everything `taskhub serve` takes from its
// flags and the environment. DefaultConfig gives serve's defaults.
type Config struct {
	// Addr is the host:port to listen on; port 0 picks a free one. Empty is
	// 127.0.0.1:8080 or, when another server holds that port, the next free one up to
	// 8099.
	Addr string
	// DB is the SQLite database file, created if missing, or the postgres:// (or
	// postgresql://) URL of a PostgreSQL database, which several servers may share.
	DB string
	// Insecure allows a non-loopback Addr without tokens.
	Insecure bool
	// Token is the one token clients must send, with every scope. Not with TokensFile.
	Token string
	// TokensFile is a JSON list of tokens, reloaded when it changes.
	TokensFile string
	// WriteRate is the changes per second allowed per token (per client address
	// without tokens); 0: no limit.
	WriteRate float64
	// MaxStreamsPerToken bounds one token's open event streams; 0: no limit.
	MaxStreamsPerToken int
	// MaxWaitsPerToken bounds the calls one caller (a token's name, or an MCP
	// client's) may have waiting for events at once, MaxWaits everyone's; 0: no limit.
	MaxWaitsPerToken int
	MaxWaits         int
	// Keepalive is the silence after which a stream gets a keepalive comment.
	Keepalive time.Duration
	// StreamQueue is how many events one stream may have queued before it is dropped.
	StreamQueue int
	// EventRetention is how long events are kept; 0 keeps them all.
	EventRetention time.Duration
	// CORSOrigins are the browser origins allowed to call /mcp besides the server's own.
	CORSOrigins []string
	// MCPSessionIdle ends a Streamable HTTP MCP session after this long idle.
	MCPSessionIdle time.Duration
	// MaxMCPSessions bounds the open Streamable HTTP MCP sessions; with a tokens file
	// or OAuth, one caller may hold half of them (mcpSessionShare).
	MaxMCPSessions int
	// Watch are directories whose files' changes become file_changed events.
	Watch []string
	// ClaimLease is the lease of a claim that asks for none.
	ClaimLease time.Duration
	// OAuthIssuer, when set, makes the server an OAuth 2.1 resource server for the
	// access tokens of that authorization server; PublicURL is then the server's own
	// external URL (their audience), and OAuthActorClaim the claim that names the
	// actor of a token's changes ("" is api.DefaultActorClaim).
	OAuthIssuer     string
	PublicURL       string
	OAuthActorClaim string
	// WebhooksAllowPrivate lets webhook endpoints target loopback, link-local and
	// private addresses.
	WebhooksAllowPrivate bool
	// Logger gets the server's logs; nil discards them.
	Logger *slog.Logger
	// ShutdownGrace bounds how long Close waits for the requests in flight before it
	// closes their connections.
	ShutdownGrace time.Duration
}

// DefaultConfig returns the configuration of `taskhub serve` without flags.
func DefaultConfig() Config {
	return Config{
		DB:                 "./taskhub.db",
		MaxStreamsPerToken: 100,
		MaxWaitsPerToken:   1000,
		MaxWaits:           10000,
		Keepalive:          broadcaster.DefaultKeepalive,
		StreamQueue:        broadcaster.DefaultQueueCap,
		MCPSessionIdle:     mcptools.DefaultSessionIdle,
		MaxMCPSessions:     mcptools.DefaultMaxSessions,
		EventRetention:     7 * 24 * time.Hour,
		ShutdownGrace:      10 * time.Second,
		ClaimLease:         tasks.DefaultClaimLease,
	}
}

// The default address: its port or, when that is taken, the next free one up to
// lastDefaultPort.
const (
	defaultHost      = "127.0.0.1"
	firstDefaultPort = 8080
	lastDefaultPort  = 8099
)

// check refuses a configuration the server cannot run with. The messages name the
// flags, which the fields mirror.
func (c *Config) check() error {
	switch {
	case c.Token != "" && c.TokensFile != "":
		return fmt.Errorf("%w: give --token (TASKHUB_TOKEN) or --tokens-file, not both", errUsage)
	case c.WriteRate < 0 || c.MaxStreamsPerToken < 0:
		return fmt.Errorf("%w: --write-rate and --max-streams-per-token must not be negative", errUsage)
	case c.MaxWaitsPerToken < 0 || c.MaxWaits < 0:
		return fmt.Errorf("%w: --max-waits-per-token and --max-waits must not be negative", errUsage)
	case c.Keepalive <= 0:
		return fmt.Errorf("%w: --keepalive must be positive, got %s", errUsage, c.Keepalive)
	case c.EventRetention < 0:
		return fmt.Errorf("%w: --event-retention must not be negative, got %s", errUsage, c.EventRetention)
	case c.StreamQueue < 1:
		return fmt.Errorf("%w: --stream-queue must be at least 1, got %d", errUsage, c.StreamQueue)
	case c.MCPSessionIdle <= 0:
		return fmt.Errorf("%w: --mcp-session-idle must be positive, got %s", errUsage, c.MCPSessionIdle)
	case c.MaxMCPSessions < 1:
		return fmt.Errorf("%w: --max-mcp-sessions must be at least 1, got %d", errUsage, c.MaxMCPSessions)
	case c.ShutdownGrace < 0:
		return fmt.Errorf("the shutdown grace must not be negative, got %s", c.ShutdownGrace)
	}
	return checkClaimLease(c.ClaimLease)
}

// mcpSessionShare is how many MCP sessions one caller may hold: half of them when
// several callers can come (a tokens file, OAuth), so that one leaking client leaves
// room for the others; else no share but the whole (0).
func (c *Config) mcpSessionShare() int {
	if c.TokensFile == "" && c.OAuthIssuer == "" {
		return 0
	}
	return (c.MaxMCPSessions + 1) / 2
}

// Server is TaskHub's server: the database, the event hub, MCP and the HTTP API
// wired together. Run starts it, Close stops it.
type Server struct {
	cfg    Config
	logger *slog.Logger

	store    store
	tailer   *tasks.Tailer
	webhooks *webhooks.Service
	hub      *broadcaster.Hub
	waits    *broadcaster.Waits
	mcp      *mcptools.Server
	http     *http.Server
	ln       net.Listener
	served   chan struct{} // closed when http.Serve has returned, with serveErr
	serveErr error
	conns    sync.WaitGroup // the connections being served: see countConn

	// The background loops (tailer, pruning, watchers) stop, and are waited for,
	// before the store closes.
	stopBackground context.CancelFunc
	background     sync.WaitGroup
	closers        []func() error // run by Close in reverse order, after the background

	closeOnce sync.Once
	closeErr  error
}

// NewServer returns a Server for cfg; Run starts it.
func NewServer(cfg Config) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, logger: logger}
}

// Run opens the database, starts the background work and listens. It returns once
// the server is serving, or with the reason it could not start, having undone what it
// had started. ctx bounds the start only; the server runs until Close.
func (s *Server) Run(ctx context.Context) (err error) {
	cfg := &s.cfg
	if err := cfg.check(); err != nil {
		return err
	}
	auth, err := s.auth()
	if err != nil {
		return err
	}
	var oauth *api.OAuth
	if cfg.OAuthIssuer != "" {
		oauth, err = api.NewOAuth(ctx, api.OAuthConfig{Issuer: cfg.OAuthIssuer, PublicURL: cfg.PublicURL,
			ActorClaim: cfg.OAuthActorClaim, Logger: s.logger.With("component", "oauth")})
		if err != nil {
			return fmt.Errorf("--oauth-issuer: %w", err)
		}
	}
	if err := checkLoopback(cmp.Or(cfg.Addr, defaultHost+":0"), cfg.Insecure || auth != nil || oauth != nil); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	bgCtx, stopBackground := context.WithCancel(context.Background())
	s.stopBackground = stopBackground

	if s.store, err = openDB(ctx, cfg.DB, s.logger); err != nil {
		return err
	}
	s.closers = append(s.closers, s.store.Close)

	metrics := api.NewMetrics()
	// The streams of static tokens end when their token is revoked.
	var track func(context.Context, func()) (func(), bool)
	if auth != nil {
		track = auth.Track
	}
	s.hub = broadcaster.New(broadcaster.Config{
		Log:        tasklog.Log{Store: s.store},
		Vocabulary: api.StreamVocabulary(),
		Logger:     s.logger.With("component", "broadcaster"),
		Keepalive:  cfg.Keepalive,
		QueueCap:   cfg.StreamQueue,
		Observe:    metrics.ObserveDelivery,
		Node:       s.node,
		// Streams are owned by tokens; without tokens the limit has nothing to count.
		MaxStreamsPerOwner: cfg.MaxStreamsPerToken,
		Track:              track,
	})
	metrics.WatchHub(s.hub.Stats)
	s.waits = broadcaster.NewWaits(broadcaster.WaitsConfig{MaxPerOwner: cfg.MaxWaitsPerToken, Max: cfg.MaxWaits})
	metrics.WatchWaits(s.waits.Waiting)
	service := tasks.NewService(s.store, tasks.WithClaimLease(cfg.ClaimLease))
	s.webhooks = webhooks.NewService(webhooks.Config{Store: s.store, Vocabulary: api.StreamVocabulary(), AllowPrivate: cfg.WebhooksAllowPrivate})
	s.mcp = mcptools.New(mcptools.Config{Service: service, Logger: s.logger.With("component", "mcp"), Version: version, Caller: api.Caller, Track: track, Waits: s.waits})
	// Before anything can change the log: the file watchers below, or a client.
	if err := s.followLog(ctx, bgCtx); err != nil {
		return err
	}
	expireLeases(bgCtx, &s.background, service, s.tailer, s.logger.With("component", "leases"))

	if err := s.deliverWebhooks(bgCtx, metrics); err != nil {
		return err
	}

	if cfg.EventRetention > 0 {
		s.background.Go(func() { prune(bgCtx, s.store, cfg.EventRetention, s.logger.With("component", "retention")) })
	}
	if cfg.TokensFile != "" {
		tokensLog := s.logger.With("component", "auth")
		watcher, err := api.NewTokensWatcher(cfg.TokensFile, auth, tokensLog, nil)
		if err != nil {
			return err
		}
		s.background.Go(func() { watcher.Run(bgCtx) })
	}
	if err := startWatchers(bgCtx, &s.background, cfg.Watch, service, s.logger.With("component", "watch")); err != nil {
		return err
	}

	ln, err := s.listen()
	if err != nil {
		return err
	}
	s.ln = errorShapeListener{ln.(*net.TCPListener)} // what net.Listen("tcp", …) returns
	mcpHandler := s.mcp.Handler(mcptools.HTTPConfig{Heartbeat: cfg.Keepalive, AllowedOrigins: cfg.CORSOrigins,
		SessionIdle: cfg.MCPSessionIdle, MaxSessions: cfg.MaxMCPSessions, MaxSessionsPerCaller: cfg.mcpSessionShare()})
	s.http = &http.Server{
		Handler: api.New(api.Config{
			Service:     service,
			Webhooks:    s.webhooks,
			Health:      health(s.store),
			Logger:      s.logger.With("component", "api"),
			Stream:      s.hub,
			Debug:       s.hub.Debug(),
			Metrics:     metrics.Handler(),
			MCP:         mcpHandler,
			Web:         http.FileServerFS(web.FS()),
			Auth:        auth,
			OAuth:       oauth,
			WriteRate:   cfg.WriteRate,
			CORSOrigins: cfg.CORSOrigins,
			Waits:       s.waits,
			// Without tokens the server is on loopback (checkLoopback): a request that
			// names another host there is a web page that rebound its name (DNS rebinding).
			LoopbackHostOnly: auth == nil && oauth == nil && !cfg.Insecure,
		}),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.With("component", "http").Handler(), slog.LevelWarn),
		ConnState:         s.countConn,
	}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		s.serveErr = s.http.Serve(s.ln)
	}()
	s.logger.Info("serving", "addr", ln.Addr().String(), "db", cfg.DB, "version", version)
	return nil
}

// listen listens on the configured address. Without one, it takes the default port
// or, when another server holds it, the next free one, and says so: `make run` beside
// a running server still starts.
func (s *Server) listen() (net.Listener, error) {
	if s.cfg.Addr != "" {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if addrInUse(err) {
			return nil, fmt.Errorf("%w: is another taskhub running there? Pass another --addr (--addr 127.0.0.1:0 picks a free port)", err)
		}
		return ln, err
	}
	for port := firstDefaultPort; port <= lastDefaultPort; port++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(defaultHost, strconv.Itoa(port)))
		if err == nil {
			if port != firstDefaultPort {
				s.logger.Warn("the default port is in use, perhaps by another taskhub: listening on the next free one",
					"in_use", fmt.Sprintf("%s:%d-%d", defaultHost, firstDefaultPort, port-1), "addr", ln.Addr().String())
			}
			return ln, nil
		}
		if !addrInUse(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("listen: the ports %d to %d of %s are all in use; pass --addr (--addr 127.0.0.1:0 picks a free port)",
		firstDefaultPort, lastDefaultPort, defaultHost)
}

// followLog carries the events committed to the log, by this process or another on
// the same file, to their readers: the hub, which streams them, and MCP's resource
// subscriptions. It carries every event committed from now on: ctx bounds reading
// where the log ends, bgCtx how long the events are carried.
func (s *Server) followLog(ctx, bgCtx context.Context) error {
	tailer, err := tailLog(ctx, bgCtx, &s.background, s.store, s.hub, s.waits, s.mcp.TaskChanged, s.logger.With("component", "tailer"))
	s.tailer = tailer
	return err
}

// deliverWebhooks starts the delivery of the webhook endpoints, fed by the tailer,
// until bgCtx ends.
func (s *Server) deliverWebhooks(bgCtx context.Context, metrics *api.Metrics) error {
	var engine *webhooks.Engine
	observe := metrics.WatchWebhooks(func() webhooks.Stats { return engine.Stats() })
	engine, err := webhooks.NewEngine(webhooks.EngineConfig{
		Store: s.store, Client: webhooks.NewClient(s.cfg.WebhooksAllowPrivate), Node: s.node().ID,
		Logger: s.logger.With("component", "webhooks"), Observe: observe,
	})
	if err != nil {
		return err
	}
	s.tailer.Listen(engine.Listen)
	s.background.Go(func() { engine.Run(bgCtx) })
	return nil
}

// node says which server this is in /events/debug: its host and process, its store
// and how far its tailer has read.
func (s *Server) node() broadcaster.Node {
	host, _ := os.Hostname()
	n := broadcaster.Node{ID: fmt.Sprintf("%s-%d", host, os.Getpid()), Store: storeName(s.cfg.DB)}
	if s.tailer != nil {
		n.TailerSeq = s.tailer.Seq()
	}
	return n
}

// auth returns the server's token check, or nil when it has no tokens.
func (s *Server) auth() (*api.Auth, error) {
	switch {
	case s.cfg.Token != "":
		return api.NewAuth(api.SingleToken(s.cfg.Token)), nil
	case s.cfg.TokensFile != "":
		tokens, err := api.LoadTokens(s.cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if tokens.Len() == 0 {
			s.logger.Warn("the tokens file lists no token: every request but /healthz and the dashboard's files is refused", "path", s.cfg.TokensFile)
		}
		return api.NewAuth(tokens), nil
	}
	return nil, nil
}

// URL is where the server listens, as http://HOST:PORT. Only after Run.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Stopped is closed when the server stops serving: after Close, or when serving
// failed (Close then says why). Only after Run.
func (s *Server) Stopped() <-chan struct{} { return s.served }

// Close stops the server: it ends the event streams, gives the requests in flight
// ShutdownGrace to finish and then closes the connections still open, stops the
// background work and closes the database, whose queued writes finish first. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	var errs []error
	// The streams end first: Shutdown waits for every request, and a stream would not
	// end by itself.
	if s.stopBackground != nil {
		s.stopBackground()
	}
	if s.waits != nil { // the waiting calls answer now, with what the log has
		s.waits.Close()
	}
	if s.mcp != nil {
		s.mcp.Close()
	}
	if s.http != nil {
		s.logger.Info("shutting down")
		errs = append(errs, s.shutdown())
	}
	s.background.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if s.http != nil {
		s.logger.Info("stopped")
	}
	return nil
}

// shutdown stops serving HTTP. The requests in flight get ShutdownGrace to finish;
// then the connections still open are closed, so that a client slow to send its
// request (a body trickling in) cannot hold the server up. Their handlers are waited
// for all the same: a change the store has taken is finished, and answered if its
// connection still stands, before the store closes.
func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.logger.Warn("closing the connections whose requests did not finish within the shutdown grace", "grace", s.cfg.ShutdownGrace)
		err = s.http.Close()
	}
	if err != nil {
		err = fmt.Errorf("shutdown: %w", err)
	}
	<-s.served
	if !errors.Is(s.serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", s.serveErr))
	}
	s.conns.Wait() // every connection's StateNew was counted before Serve returned
	return err
}

// countConn keeps s.conns: one for each connection net/http is serving, so that
// shutdown can wait for their handlers, which http.Server.Close does not. A connection
// a handler took over (an event stream) is its owner's.
func (s *Server) countConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateHijacked, http.StateClosed:
		s.conns.Done()
	}
}

// prune deletes the events older than retention now and then, until ctx ends.
func prune(ctx context.Context, store tasks.Store, retention time.Duration, logger *slog.Logger) {
	every := min(max(retention/10, 100*time.Millisecond), 10*time.Minute)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		n, err := store.PruneEvents(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("prune events", "err", err)
		case n > 0:
			logger.Info("pruned events", "count", n, "older_than", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// checkLoopback refuses an address other machines can reach, unless insecure (which
// tokens imply): without tokens, anyone who can connect can change every task.
func checkLoopback(addr string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, addr, err)
	}
	if insecure || api.IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%w: --addr %s is not a loopback address, and without tokens anyone who reaches it can change every task; pass --insecure to serve it anyway",
		errUsage, addr)
}
