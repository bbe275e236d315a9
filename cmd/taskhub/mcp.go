package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"taskhub/broadcaster"
	"taskhub/mcptools"
	"taskhub/tasks"
)

// mcpStdio is `taskhub mcp`: one MCP client over stdin and stdout, on the same
// database file a `taskhub serve` may be using. Its changes reach the server's
// subscribers through the file (the server's tailer watches the WAL), and the
// changes of others reach its resource subscriptions the same way. Logs go to stderr:
// stdout carries the protocol.
func mcpStdio(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskhub mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := fs.String("db", "./taskhub.db", "SQLite database `file`, created if missing, or postgres:// URL: the same as taskhub serve's")
	logLevel := fs.String("log-level", "warn", "log `level` on stderr: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	setup := fs.Bool("setup", false, "print how to add TaskHub to Claude Code (for --url and --db), and exit")
	serverURL := fs.String("url", "http://127.0.0.1:8080", "with --setup: the `URL` of the running taskhub serve")
	claimLease := fs.Duration("claim-lease", tasks.DefaultClaimLease, "the lease of a claim that asks for none, as taskhub serve's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkClaimLease(*claimLease); err != nil {
		return err
	}
	if *setup {
		return printSetup(stdout, *serverURL, *dbPath)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	store, closeStore, err := openStore(ctx, *dbPath, logger)
	if err != nil {
		return err
	}
	defer closeStore()

	defaults := DefaultConfig()
	waits := broadcaster.NewWaits(broadcaster.WaitsConfig{MaxPerOwner: defaults.MaxWaitsPerToken, Max: defaults.MaxWaits})
	service := tasks.NewService(store, tasks.WithClaimLease(*claimLease))
	server := mcptools.New(mcptools.Config{Service: service, Logger: logger.With("component", "mcp"), Version: version, Waits: waits})
	// A tailer follows the log, for resource subscriptions and wait_for_events: no
	// hub, since stdio has no event streams. Leases expire here too: the claims made
	// over stdio may have no server to expire them, and beside one, each lease still
	// expires once.
	bgCtx, stop := context.WithCancel(context.Background())
	var background sync.WaitGroup
	defer func() { stop(); background.Wait() }()
	defer waits.Close()
	tailer, err := tailLog(ctx, bgCtx, &background, store, nil, waits, server.TaskChanged, logger.With("component", "tailer"))
	if err != nil {
		return err
	}
	expireLeases(bgCtx, &background, service, tailer, logger.With("component", "leases"))

	err = server.ServeStdio(ctx, stdin, stdout)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // a signal: a clean stop
	}
	return err
}

// printSetup prints the Claude Code commands and .mcp.json for a server at base and
// the database at db, ready to paste.
func printSetup(w io.Writer, base, db string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: --url %q is not an http(s) URL", errUsage, base)
	}
	endpoint := strings.TrimSuffix(u.String(), "/") + "/mcp"
	abs := db // a postgres:// URL as it is
	if !isPostgres(db) {
		if abs, err = filepath.Abs(db); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, `# Claude Code, over HTTP to the running server:
claude mcp add --transport http taskhub %[1]s
# the same, with a token:
claude mcp add --transport http taskhub %[1]s --header "Authorization: Bearer $TASKHUB_TOKEN"
# over stdio, on the database itself:
claude mcp add taskhub -- taskhub mcp --db %[2]s

# or .mcp.json in a repository (Claude Code expands ${TASKHUB_TOKEN}):
{
  "mcpServers": {
    "taskhub": {
      "type": "http",
      "url": %[3]q,
      "headers": { "Authorization": "Bearer ${TASKHUB_TOKEN}" }
    }
  }
}
`, endpoint, shellQuote(abs), endpoint)
	return err
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
