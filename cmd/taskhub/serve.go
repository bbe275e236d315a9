package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"taskhub/api"
	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/mcptools"
	"taskhub/tasks"
	"taskhub/web"
)

// shutdownTimeout bounds how long a stopping server waits for requests in flight.
const shutdownTimeout = 10 * time.Second

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskhub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to listen on; port 0 picks a free one")
	dbPath := fs.String("db", "./taskhub.db", "SQLite database `file`, created if missing")
	insecure := fs.Bool("insecure", false, "allow listening on a non-loopback address without tokens")
	token := fs.String("token", "", "the one `token` clients must send (Authorization: Bearer), with every scope; its changes are by \""+api.SingleTokenName+"\"")
	tokensFile := fs.String("tokens-file", "", "JSON `file` of tokens: [{\"name\", \"sha256\", \"scopes\"}], reloaded when it changes")
	writeRate := fs.Float64("write-rate", 0, "at most this many changes per `second` per token (per IP without tokens); 0: no limit")
	maxStreams := fs.Int("max-streams-per-token", 100, "open event streams one token may have at once; 0: no limit")
	keepalive := fs.Duration("keepalive", broadcaster.DefaultKeepalive, "send a keepalive comment on event streams after this much `silence`")
	retention := fs.Duration("event-retention", 7*24*time.Hour, "keep events this `long`; 0 keeps them all (a client asking for older ones gets a reset event)")
	streamQueue := fs.Int("stream-queue", broadcaster.DefaultQueueCap, "events queued for one stream before it is dropped as too slow (its client reconnects and replays)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	var corsOrigins originsFlag
	fs.Var(&corsOrigins, "cors-origin", "a browser `origin` (scheme://host:port) allowed to call /mcp besides the server's own; repeat, or give a comma list")
	var watchDirs dirsFlag
	fs.Var(&watchDirs, "watch", "report changes to the files under this `directory` as file_changed events; repeat, or give a comma list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	if *token != "" && *tokensFile != "" {
		return fmt.Errorf("%w: give --token (TASKHUB_TOKEN) or --tokens-file, not both", errUsage)
	}
	if *writeRate < 0 || *maxStreams < 0 {
		return fmt.Errorf("%w: --write-rate and --max-streams-per-token must not be negative", errUsage)
	}
	if *keepalive <= 0 {
		return fmt.Errorf("%w: --keepalive must be positive, got %s", errUsage, *keepalive)
	}
	if *retention < 0 {
		return fmt.Errorf("%w: --event-retention must not be negative, got %s", errUsage, *retention)
	}
	if *streamQueue < 1 {
		return fmt.Errorf("%w: --stream-queue must be at least 1, got %d", errUsage, *streamQueue)
	}
	var auth *api.Auth
	switch {
	case *token != "":
		auth = api.NewAuth(api.SingleToken(*token))
	case *tokensFile != "":
		tokens, err := api.LoadTokens(*tokensFile)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if tokens.Len() == 0 {
			logger.Warn("the tokens file lists no token: every request but /healthz and the dashboard's files is refused", "path", *tokensFile)
		}
		auth = api.NewAuth(tokens)
	}
	if err := checkLoopback(*addr, *insecure || auth != nil); err != nil {
		return err
	}

	store, closeStore, err := openStore(ctx, *dbPath, logger)
	if err != nil {
		return err
	}
	defer closeStore()

	metrics := api.NewMetrics()
	var stillValid func(context.Context) bool
	if auth != nil {
		stillValid = auth.StillValid
	}
	hub := broadcaster.New(broadcaster.Config{
		Log:        tasklog.Log{Store: store},
		Vocabulary: api.StreamVocabulary(),
		Logger:     logger.With("component", "broadcaster"),
		Keepalive:  *keepalive,
		QueueCap:   *streamQueue,
		Observe:    metrics.ObserveDelivery,
		// Streams are owned by tokens; without tokens the limit has nothing to count.
		MaxStreamsPerOwner: *maxStreams,
		StillValid:         stillValid,
	})
	metrics.WatchHub(hub.Stats)
	// The background loops stop, and are waited for, before the store closes.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	defer func() { stopBackground(); background.Wait() }()
	if *retention > 0 {
		background.Go(func() { prune(bgCtx, store, *retention, logger.With("component", "retention")) })
	}
	service := tasks.NewService(store)
	mcpServer := mcptools.New(mcptools.Config{Service: service, Logger: logger.With("component", "mcp"), Version: version, Caller: api.Caller})
	if *tokensFile != "" {
		tokensLog := logger.With("component", "auth")
		watcher, err := api.NewTokensWatcher(*tokensFile, auth, tokensLog, func(old, next *api.Tokens) {
			revoked := func(name string) bool { return next.Revoked(old, name) }
			if n := hub.CloseOwned(revoked) + mcpServer.CloseOwned(revoked); n > 0 {
				tokensLog.Info("closed the streams of revoked tokens", "streams", n)
			}
		})
		if err != nil {
			return err
		}
		background.Go(func() { watcher.Run(bgCtx) })
	}

	// Before anything can change the log: every change from here on reaches the hub.
	if _, err := followLog(bgCtx, &background, store, hub, mcpServer.TaskChanged, logger.With("component", "tailer")); err != nil {
		return err
	}
	if err := startWatchers(bgCtx, &background, watchDirs, service, logger.With("component", "watch")); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: api.New(api.Config{
			Service:     service,
			Logger:      logger.With("component", "api"),
			Stream:      hub,
			Debug:       hub.Debug(),
			Metrics:     metrics.Handler(),
			MCP:         mcpServer.Handler(mcptools.HTTPConfig{Heartbeat: *keepalive, AllowedOrigins: corsOrigins}),
			Web:         http.FileServerFS(web.FS()),
			Auth:        auth,
			WriteRate:   *writeRate,
			CORSOrigins: corsOrigins,
			// Without tokens the server is on loopback (checkLoopback): a request that
			// names another host there is a web page that rebound its name (DNS rebinding).
			LoopbackHostOnly: auth == nil && !*insecure,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "db", *dbPath, "version", version)
	fmt.Fprintf(stdout, "taskhub listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	// End the event streams first: Shutdown waits for every request, and a stream
	// would not end by itself.
	stopBackground()
	mcpServer.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
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

// originsFlag is the repeatable --cors-origin: each value may also be a comma list
// (as its environment form is), and each item must be an origin.
type originsFlag []string

func (l *originsFlag) String() string { return strings.Join(*l, ",") }

func (l *originsFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			if u, err := url.Parse(part); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
				return fmt.Errorf("%q is not an origin such as https://example.com:8443", part)
			}
			*l = append(*l, part)
		}
	}
	return nil
}

// checkLoopback refuses an address other machines can reach, unless insecure (which
// tokens imply): without tokens, anyone who can connect can change every task.
func checkLoopback(addr string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, addr, err)
	}
	if insecure || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: --addr %s is not a loopback address, and without tokens anyone who reaches it can change every task; pass --insecure to serve it anyway",
		errUsage, addr)
}
