package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"taskhub/api"
)

// serve is `taskhub serve`: the server configured by its flags, until ctx ends.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	if err := serveFlags(&cfg, args, stderr); err != nil {
		return err
	}
	s := NewServer(cfg)
	if err := s.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "taskhub listening on %s\n", s.URL())
	select {
	case <-ctx.Done():
	case <-s.Stopped():
	}
	return s.Close()
}

// serveFlags parses the flags of `taskhub serve` (and their environment forms) into
// cfg, whose values are their defaults, and builds cfg's logger on stderr.
func serveFlags(cfg *Config, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskhub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "`host:port` to listen on; port 0 picks a free one (default 127.0.0.1:8080 or, when that port is taken, the next free one up to 8099)")
	fs.StringVar(&cfg.DB, "db", cfg.DB, "SQLite database `file`, created if missing; or a postgres:// URL, which several servers may share")
	fs.BoolVar(&cfg.Insecure, "insecure", cfg.Insecure, "allow listening on a non-loopback address without tokens")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "the one `token` clients must send (Authorization: Bearer), with every scope; its changes are by \""+api.SingleTokenName+"\"")
	fs.StringVar(&cfg.TokensFile, "tokens-file", cfg.TokensFile, "JSON `file` of tokens: [{\"name\", \"sha256\", \"scopes\"}], reloaded when it changes")
	fs.Float64Var(&cfg.WriteRate, "write-rate", cfg.WriteRate, "at most this many changes per `second` per token (per IP without tokens); 0: no limit")
	fs.IntVar(&cfg.MaxStreamsPerToken, "max-streams-per-token", cfg.MaxStreamsPerToken, "open event streams one token may have at once; 0: no limit")
	fs.IntVar(&cfg.MaxWaitsPerToken, "max-waits-per-token", cfg.MaxWaitsPerToken, "calls one token (or MCP client) may have waiting for events at once (long polls, wait_for_events); 0: no limit")
	fs.IntVar(&cfg.MaxWaits, "max-waits", cfg.MaxWaits, "calls waiting for events at once, everyone's together; 0: no limit")
	fs.DurationVar(&cfg.Keepalive, "keepalive", cfg.Keepalive, "send a keepalive comment on event streams after this much `silence`")
	fs.DurationVar(&cfg.EventRetention, "event-retention", cfg.EventRetention, "keep events this `long`; 0 keeps them all (a client asking for older ones gets a reset event)")
	fs.IntVar(&cfg.StreamQueue, "stream-queue", cfg.StreamQueue, "events queued for one stream before it is dropped as too slow (its client reconnects and replays)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	fs.DurationVar(&cfg.MCPSessionIdle, "mcp-session-idle", cfg.MCPSessionIdle, "end an MCP session (Streamable HTTP) after this `long` without a request; its client then initializes again")
	fs.IntVar(&cfg.MaxMCPSessions, "max-mcp-sessions", cfg.MaxMCPSessions, "open MCP sessions (Streamable HTTP) at most; with a tokens file or OAuth, one token may hold half")
	fs.Var((*originsFlag)(&cfg.CORSOrigins), "cors-origin", "a browser `origin` (scheme://host:port) allowed to call /mcp besides the server's own; repeat, or give a comma list")
	fs.StringVar(&cfg.OAuthIssuer, "oauth-issuer", cfg.OAuthIssuer, "accept OAuth 2.1 access tokens (JWTs) from the authorization server at this issuer `URL`; needs --public-url")
	fs.StringVar(&cfg.PublicURL, "public-url", cfg.PublicURL, "this server's external `URL` (scheme://host[:port]): the audience of OAuth access tokens")
	fs.StringVar(&cfg.OAuthActorClaim, "oauth-actor-claim", cfg.OAuthActorClaim, "the access token's `claim` that names the actor of its changes (default "+api.DefaultActorClaim+")")
	fs.BoolVar(&cfg.WebhooksAllowPrivate, "webhooks-allow-private", cfg.WebhooksAllowPrivate, "let webhook endpoints target loopback, link-local and private addresses (refused by default, at creation and at every connection)")
	fs.DurationVar(&cfg.ClaimLease, "claim-lease", cfg.ClaimLease, "the lease of a claim that asks for none: its task goes back to todo after this `long` without a renewal")
	fs.Var((*dirsFlag)(&cfg.Watch), "watch", "report changes to the files under this `directory` as file_changed events; repeat, or give a comma list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	return nil
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
