package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"sync"

	"taskhub/broadcaster"
	"taskhub/mcptools"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

// mcpStdio is `taskhub mcp`: one MCP client over stdin and stdout, on the same
// database file a `taskhub serve` may be using. Its changes reach the server's
// subscribers through the file (the server's tailer watches the WAL), and the
// changes of others reach its resource subscriptions the same way. Logs go to stderr:
// stdout carries the protocol.
func mcpStdio(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskhub mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := fs.String("db", "./taskhub.db", "SQLite database `file`, created if missing; the same file as taskhub serve's")
	logLevel := fs.String("log-level", "warn", "log `level` on stderr: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close database", "err", err)
		}
	}()

	server := mcptools.New(mcptools.Config{Service: tasks.NewService(store), Logger: logger.With("component", "mcp"), Version: version})
	// A hub without streams follows the log, for resource subscriptions.
	hub := broadcaster.New(broadcaster.Config{Log: eventLog{store}, Logger: logger.With("component", "broadcaster")})
	defer hub.Listen(func(e *broadcaster.Event) {
		if e.TaskID != 0 {
			server.TaskChanged(e.TaskID)
		}
	})()
	from, err := store.LastSeq(ctx)
	if err != nil {
		return err
	}
	bgCtx, stop := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { hub.Run(bgCtx, from, store.Committed()) })
	defer func() { stop(); background.Wait() }()

	err = server.ServeStdio(ctx, stdin, stdout)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // a signal: a clean stop
	}
	return err
}
