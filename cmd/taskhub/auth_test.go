package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taskhub/broadcaster"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// tokenEntry is one token of a test's tokens file, with its secret.
type tokenEntry struct {
	name, secret string
	scopes       []string
}

// writeTokens writes the tokens file at path as a deploy tool would: a temporary file
// renamed over the old one.
func writeTokens(t *testing.T, path string, tokens ...tokenEntry) {
	t.Helper()
	type entry struct {
		Name   string   `json:"name"`
		SHA256 string   `json:"sha256"`
		Scopes []string `json:"scopes"`
	}
	list := []entry{}
	for _, tok := range tokens {
		sum := sha256.Sum256([]byte(tok.secret))
		list = append(list, entry{tok.name, hex.EncodeToString(sum[:]), tok.scopes})
	}
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, data)
}

func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var (
	reader = tokenEntry{"reader", "read-secret", []string{"read"}}
	writer = tokenEntry{"writer", "write-secret", []string{"read", "write"}}
	admin  = tokenEntry{"ops", "admin-secret", []string{"admin"}}
)

// send makes one request with token (none when "") and returns the response with its
// body read (a stream's only up to its head).
func send(t *testing.T, method, url, token, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp, nil
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// errorCode returns the code of an error response.
func errorCode(b []byte) string {
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestAuthMatrix sends every route with no token, a wrong one, and tokens of each
// scope, and checks each status, the 401's challenge and the errors' codes.
func TestAuthMatrix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, path, reader, writer, admin)
	url, _ := startServer(t, "--tokens-file", path)

	newTask := func() int64 {
		_, b := send(t, http.MethodPost, url+"/api/tasks", writer.secret, `{"title":"matrix"}`, nil)
		var task struct{ ID int64 }
		if err := json.Unmarshal(b, &task); err != nil || task.ID == 0 {
			t.Fatalf("create: %s", b)
		}
		return task.ID
	}
	id := newTask()
	mcpInit := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"matrix","version":"1"}}}`
	mcpHeader := map[string]string{"Accept": "application/json, text/event-stream"}

	const unauth, forbid = 401, 403
	type route struct {
		method, path, body string
		header             map[string]string
		ok                 int // the status of a request allowed through
		need               string
	}
	routes := []route{
		{"GET", "/healthz", "", nil, 200, ""},
		{"HEAD", "/healthz", "", nil, 200, ""},
		{"GET", "/", "", nil, 200, ""},
		{"GET", "/app.js", "", nil, 200, ""},
		{"GET", "/.well-known/oauth-authorization-server", "", nil, 404, ""},
		{"POST", "/api/tasks", `{"title":"x"}`, nil, 201, "write"},
		{"GET", "/api/tasks", "", nil, 200, "read"},
		{"HEAD", "/api/tasks", "", nil, 200, "read"},
		{"GET", "/api/tasks/{id}", "", nil, 200, "read"},
		{"PATCH", "/api/tasks/{id}", `{"assignee":"x"}`, nil, 200, "write"},
		{"DELETE", "/api/tasks/{new}", "", nil, 204, "write"},
		{"GET", "/api/tasks/{id}/events", "", nil, 200, "read"},
		{"GET", "/api/events", "", nil, 200, "read"},
		{"GET", "/api/nothing", "", nil, 404, "read"},
		{"GET", "/events/stream", "", nil, 200, "read"},
		{"GET", "/events/debug", "", nil, 200, "admin"},
		{"GET", "/metrics", "", nil, 200, "admin"},
		{"GET", "/mcp/sessions", "", nil, 200, "admin"},
		{"POST", "/mcp", mcpInit, mcpHeader, 200, "write"},
	}
	tokens := []struct {
		name, secret string
		scopes       []string
	}{
		{"no token", "", nil},
		{"wrong token", "not-a-token", nil},
		{"read", reader.secret, reader.scopes},
		{"write", writer.secret, writer.scopes},
		{"admin", admin.secret, admin.scopes},
	}
	for _, r := range routes {
		for _, tok := range tokens {
			t.Run(r.method+" "+r.path+" "+tok.name, func(t *testing.T) {
				want := r.ok
				switch {
				case r.need == "":
				case tok.secret == "" || tok.scopes == nil:
					want = unauth
				case !contains(tok.scopes, r.need):
					want = forbid
				}
				p := strings.ReplaceAll(r.path, "{id}", fmt.Sprint(id))
				if strings.Contains(p, "{new}") {
					p = strings.ReplaceAll(p, "{new}", fmt.Sprint(newTask()))
				}
				resp, body := send(t, r.method, url+p, tok.secret, r.body, r.header)
				if resp.StatusCode != want {
					t.Fatalf("%s %s: %d %s, want %d", r.method, p, resp.StatusCode, body, want)
				}
				challenge := resp.Header.Get("WWW-Authenticate")
				switch want {
				case unauth:
					if !strings.HasPrefix(challenge, "Bearer") {
						t.Errorf("WWW-Authenticate %q, want Bearer", challenge)
					}
					if r.method != "HEAD" && errorCode(body) != "unauthorized" {
						t.Errorf("body %s, want code unauthorized", body)
					}
				case forbid:
					if r.method != "HEAD" && errorCode(body) != "forbidden" {
						t.Errorf("body %s, want code forbidden", body)
					}
				default:
					if challenge != "" {
						t.Errorf("WWW-Authenticate %q on a %d", challenge, want)
					}
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// must sends a request with token and fails the test unless it gets want.
func must(t *testing.T, method, url, token, body string, want int) []byte {
	t.Helper()
	resp, b := send(t, method, url, token, body, nil)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	return b
}

// openStreamWith opens url's stream with the token as a Bearer header.
func openStreamWith(t *testing.T, url, token string) *sseStream {
	t.Helper()
	return openStream(t, url, http.Header{"Authorization": {"Bearer " + token}})
}

// TestAccessTokenOnlyOnStream: ?access_token= opens the stream, and is refused
// everywhere else, even when valid.
func TestAccessTokenOnlyOnStream(t *testing.T) {
	url, _ := startServer(t, "--token", "s3cret")
	s := openStream(t, url+"/events/stream?access_token=s3cret", nil)
	must(t, http.MethodPost, url+"/api/tasks", "s3cret", `{"title":"seen"}`, http.StatusCreated)
	if m := s.nextEvent(t, within); m.Event != "task_created" {
		t.Fatalf("stream got %+v", m)
	}
	for _, path := range []string{"/events/stream?access_token=wrong", "/api/tasks?access_token=s3cret",
		"/api/events?access_token=s3cret", "/events/debug?access_token=s3cret", "/metrics?access_token=s3cret"} {
		resp, b := send(t, http.MethodGet, url+path, "", "", nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
	resp, b := send(t, http.MethodPost, url+"/api/tasks?access_token=s3cret", "", `{"title":"no"}`, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "GET /events/stream") {
		t.Errorf("POST with access_token: %d %s", resp.StatusCode, b)
	}
}

// startServerLogged is startServer with the server's log at info level in a buffer.
func startServerLogged(t *testing.T, flags ...string) (url string, log *syncBuffer) {
	t.Helper()
	cfg := DefaultConfig()
	if err := serveFlags(&cfg, flags, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg = testConfig(t, cfg)
	log = newSyncBuffer()
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	return runServer(t, cfg).URL(), log
}

// TestTokensReload rewrites the tokens file by rename while streams are open: the
// revoked token is refused within a second and its stream is closed, the admin's
// stream goes on receiving, and a broken file changes nothing.
func TestTokensReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	boss := tokenEntry{"boss", "boss-secret", []string{"read", "write", "admin"}}
	doomed := tokenEntry{"doomed", "doomed-secret", []string{"read", "write"}}
	writeTokens(t, path, boss, doomed)
	url, log := startServerLogged(t, "--tokens-file", path)

	bossStream := openStreamWith(t, url+"/events/stream", boss.secret)
	doomedStream := openStream(t, url+"/events/stream?access_token="+doomed.secret, nil)
	must(t, http.MethodGet, url+"/api/tasks", doomed.secret, "", http.StatusOK)

	newcomer := tokenEntry{"newcomer", "new-secret", []string{"read"}}
	writeTokens(t, path, boss, newcomer)
	start := time.Now()
	for {
		resp, _ := send(t, http.MethodGet, url+"/api/tasks", doomed.secret, "", nil)
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the revoked token still gets %d after %s", resp.StatusCode, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revoked after %s", time.Since(start))
	must(t, http.MethodGet, url+"/api/tasks", newcomer.secret, "", http.StatusOK)
	select {
	case <-doomedStream.done:
	case <-time.After(time.Second):
		t.Fatal("the revoked token's stream is still open")
	}
	log.await(t, "log of the closed stream", func(s string) bool { return strings.Contains(s, "closed the streams of revoked tokens") })

	must(t, http.MethodPost, url+"/api/tasks", boss.secret, `{"title":"after reload"}`, http.StatusCreated)
	if m := bossStream.nextEvent(t, within); m.Event != "task_created" || !strings.Contains(m.Data, "after reload") {
		t.Fatalf("admin stream got %+v", m)
	}
	snap := debugSnapshotWith(t, url, boss.secret)
	if len(snap.Subscribers) != 1 || snap.Subscribers[0].Owner != "boss" {
		t.Errorf("subscribers after the reload: %+v", snap.Subscribers)
	}

	// A broken file: everything stays as it was, and the log says why.
	replaceFile(t, path, []byte(`[{"name":"x","sha256":"zz","scopes":["read"]}]`))
	log.await(t, "log of the broken file", func(s string) bool {
		return strings.Contains(s, "tokens file not reloaded") && strings.Contains(s, "sha256")
	})
	must(t, http.MethodGet, url+"/api/tasks", newcomer.secret, "", http.StatusOK)
	must(t, http.MethodGet, url+"/api/tasks", doomed.secret, "", http.StatusUnauthorized)
	must(t, http.MethodPost, url+"/api/tasks", boss.secret, `{"title":"after the broken file"}`, http.StatusCreated)
	if m := bossStream.nextEvent(t, within); !strings.Contains(m.Data, "after the broken file") {
		t.Fatalf("admin stream got %+v", m)
	}
	if strings.Contains(log.String(), "secret") {
		t.Errorf("a token is in the log:\n%s", log.String())
	}
}

func debugSnapshotWith(t *testing.T, url, token string) broadcaster.Snapshot {
	t.Helper()
	var snap broadcaster.Snapshot
	if err := json.Unmarshal(must(t, http.MethodGet, url+"/events/debug", token, "", http.StatusOK), &snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestWriteRate: over --write-rate, changes get 429 with Retry-After, per token, and
// reads are not limited; without tokens, per client address.
func TestWriteRate(t *testing.T) {
	t.Run("per token", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		writeTokens(t, path, writer, tokenEntry{"other", "other-secret", []string{"read", "write"}})
		url, _ := startServer(t, "--tokens-file", path, "--write-rate", "0.5")
		must(t, http.MethodPost, url+"/api/tasks", writer.secret, `{"title":"one"}`, http.StatusCreated)
		resp, b := send(t, http.MethodPost, url+"/api/tasks", writer.secret, `{"title":"two"}`, nil)
		if resp.StatusCode != http.StatusTooManyRequests || errorCode(b) != "rate_limited" || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("second change: %d %s, Retry-After %q", resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		must(t, http.MethodGet, url+"/api/tasks", writer.secret, "", http.StatusOK)
		must(t, http.MethodPost, url+"/api/tasks", "other-secret", `{"title":"other"}`, http.StatusCreated)
	})
	t.Run("per address", func(t *testing.T) {
		url, _ := startServer(t, "--write-rate", "1")
		createTask(t, url, `{"title":"one"}`)
		resp, b := send(t, http.MethodPost, url+"/api/tasks", "", `{"title":"two"}`, nil)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("second change: %d %s, Retry-After %q", resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
	})
}

// TestMaxStreamsPerToken: one stream over the cap is refused with 429; closing one
// makes room.
func TestMaxStreamsPerToken(t *testing.T) {
	url, _ := startServer(t, "--token", "s3cret", "--max-streams-per-token", "2")
	first := openStreamWith(t, url+"/events/stream", "s3cret")
	openStreamWith(t, url+"/events/stream", "s3cret")
	resp, b := send(t, http.MethodGet, url+"/events/stream", "s3cret", "", nil)
	if resp.StatusCode != http.StatusTooManyRequests || errorCode(b) != "rate_limited" || !strings.Contains(string(b), "2 open event streams") {
		t.Fatalf("third stream: %d %s", resp.StatusCode, b)
	}
	first.close()
	deadline := time.Now().Add(within)
	for {
		if len(debugSnapshotWith(t, url, "s3cret").Subscribers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed stream is still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	openStreamWith(t, url+"/events/stream", "s3cret")
}

// TestActorIsTokenName: changes through REST and MCP (Streamable HTTP and SSE) are
// attributed to the token's name, on the event and on the task.
func TestActorIsTokenName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	alice := tokenEntry{"alice", "alice-secret", []string{"read", "write"}}
	bot := tokenEntry{"ci-bot", "bot-secret", []string{"write"}}
	writeTokens(t, path, alice, bot)
	url, _ := startServer(t, "--tokens-file", path)

	var task struct {
		ID        int64  `json:"id"`
		CreatedBy string `json:"created_by"`
		UpdatedBy string `json:"updated_by"`
	}
	if err := json.Unmarshal(must(t, http.MethodPost, url+"/api/tasks", alice.secret, `{"title":"rest"}`, http.StatusCreated), &task); err != nil {
		t.Fatal(err)
	}
	if task.CreatedBy != "alice" {
		t.Errorf("REST created_by %q", task.CreatedBy)
	}

	header := map[string]string{"Authorization": "Bearer " + bot.secret}
	tr, err := transport.NewStreamableHTTP(url+"/mcp", transport.WithHTTPHeaders(header))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	mcpConnect(t, c, "claude-code", "")
	if got := structured(t, mcpCall(t, c, "create_task", map[string]any{"title": "mcp"})); got.CreatedBy != "ci-bot" {
		t.Errorf("MCP (Streamable HTTP) created_by %q", got.CreatedBy)
	}
	sse, err := client.NewSSEMCPClient(url+"/mcp/sse", transport.WithHeaders(header))
	if err != nil {
		t.Fatal(err)
	}
	mcpConnect(t, sse, "sse-agent", mcp.ProtocolVersion20241105)
	if got := structured(t, mcpCall(t, sse, "create_task", map[string]any{"title": "mcp sse"})); got.CreatedBy != "ci-bot" {
		t.Errorf("MCP (SSE) created_by %q", got.CreatedBy)
	}

	var page struct {
		Events []struct {
			Source, Actor string
		}
	}
	if err := json.Unmarshal(must(t, http.MethodGet, url+"/api/events", alice.secret, "", http.StatusOK), &page); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Events {
		got = append(got, e.Source+"/"+e.Actor)
	}
	if want := "rest_api/alice mcp_tool/ci-bot mcp_tool/ci-bot"; strings.Join(got, " ") != want {
		t.Errorf("events by %v, want %s", got, want)
	}
}

// TestAuthArguments: tokens let serve listen on any address; --token and
// --tokens-file together, or a broken tokens file, are refused at the start.
func TestAuthArguments(t *testing.T) {
	if err := checkLoopback("0.0.0.0:8080", false); err == nil {
		t.Error("a public address without tokens is allowed")
	}
	if err := checkLoopback("0.0.0.0:8080", true); err != nil {
		t.Errorf("a public address with tokens: %v", err)
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`[{"name":"a","sha256":"00","scopes":["read"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "taskhub.db")
	for _, tc := range []struct {
		name   string
		args   []string
		output string
	}{
		{"both", []string{"--token", "x", "--tokens-file", broken}, "not both"},
		{"broken file", []string{"--tokens-file", broken}, "sha256 must be 64 hex digits"},
		{"missing file", []string{"--tokens-file", filepath.Join(dir, "none.json")}, "read tokens file"},
		{"negative rate", []string{"--write-rate", "-1"}, "--write-rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, tc.args...), &out, &out)
			if code != 2 || !strings.Contains(out.String(), tc.output) {
				t.Errorf("exit %d, output %q; want 2 and %q", code, out.String(), tc.output)
			}
		})
	}
}

// TestMCPCORS: an allowed browser origin's preflight to /mcp is answered without a
// token, and its requests (with one) can be read; another origin gets no CORS headers.
func TestMCPCORS(t *testing.T) {
	url, _ := startServer(t, "--token", "s3cret", "--cors-origin", "https://allowed.example")
	preflight := func(origin string) *http.Response {
		resp, _ := send(t, http.MethodOptions, url+"/mcp", "", "", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization, content-type, mcp-session-id",
		})
		return resp
	}
	resp := preflight("https://allowed.example")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://allowed.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight of the allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin: %d %v", resp.StatusCode, resp.Header)
	}
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"web","version":"1"}}}`
	resp, b := send(t, http.MethodPost, url+"/mcp", "s3cret", init, map[string]string{
		"Origin": "https://allowed.example", "Accept": "application/json, text/event-stream"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://allowed.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id") {
		t.Errorf("POST from the allowed origin: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	resp, _ = send(t, http.MethodPost, url+"/mcp", "", init, map[string]string{"Origin": "https://allowed.example"})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != "https://allowed.example" {
		t.Errorf("POST without a token: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = send(t, http.MethodPost, url+"/mcp", "s3cret", init, map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST from another origin: %d %v", resp.StatusCode, resp.Header)
	}
}
