package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// loopbackIssuer is an authorization server on loopback: its RFC 8414 metadata and a
// JWKS of one RSA key made for the test, with which it mints access tokens.
type loopbackIssuer struct {
	url    string
	signer jose.Signer
}

func newLoopbackIssuer(t *testing.T) *loopbackIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "test-key-1"
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	is := &loopbackIssuer{signer: signer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.url, "jwks_uri": is.url + "/jwks",
			"authorization_endpoint": is.url + "/authorize", "token_endpoint": is.url + "/token",
		})
	})
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}}}
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jwks)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	is.url = ts.URL
	return is
}

// mint returns an access token for sub, with scope, for the audience aud, valid for
// five minutes.
func (is *loopbackIssuer) mint(t *testing.T, sub, scope, aud string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.Signed(is.signer).Claims(map[string]any{
		"iss": is.url, "sub": sub, "aud": aud, "scope": scope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// freeAddr returns a loopback address whose port was free a moment ago: the server's
// public URL, the audience of its tokens, must be known before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestOAuthEndToEnd: an access token minted by an issuer on loopback works for REST,
// the event stream and a real MCP session on the whole server, and the changes are
// its sub's; without a token /mcp is a 401 that points to the resource metadata, and
// with a read-only token a 403 insufficient_scope.
func TestOAuthEndToEnd(t *testing.T) {
	is := newLoopbackIssuer(t)
	addr := freeAddr(t)
	cfg := testConfig(t, DefaultConfig())
	cfg.Addr = addr
	cfg.OAuthIssuer = is.url
	cfg.PublicURL = "http://" + addr
	url := runServer(t, cfg).URL()
	if url != cfg.PublicURL {
		t.Fatalf("server at %s, public URL %s", url, cfg.PublicURL)
	}

	const sub = "user-4711"
	// An MCP client asks for a token for the MCP server's URL (RFC 8707's resource).
	token := is.mint(t, sub, "read write", url+"/mcp")
	stream := openStreamWith(t, url+"/events/stream", token)

	var created struct {
		ID        int64  `json:"id"`
		CreatedBy string `json:"created_by"`
	}
	if err := json.Unmarshal(must(t, http.MethodPost, url+"/api/tasks", token, `{"title":"over REST"}`, http.StatusCreated), &created); err != nil {
		t.Fatal(err)
	}
	if created.CreatedBy != sub {
		t.Errorf("REST created_by %q, want %q (the token's sub)", created.CreatedBy, sub)
	}
	var read struct {
		ID        int64  `json:"id"`
		CreatedBy string `json:"created_by"`
	}
	if err := json.Unmarshal(must(t, http.MethodGet, fmt.Sprintf("%s/api/tasks/%d", url, created.ID), token, "", http.StatusOK), &read); err != nil {
		t.Fatal(err)
	}
	if read != created {
		t.Errorf("GET the task: %+v, want %+v", read, created)
	}
	wantCreated := func(id int64, source string) {
		t.Helper()
		m := stream.nextEvent(t, within)
		if m.Event != "task_created" {
			t.Fatalf("stream got %+v, want task_created of task %d", m, id)
		}
		if e := m.events(t)[0]; e.TaskID != id || e.Source != source {
			t.Errorf("stream event of task %d from %s, want task %d from %s", e.TaskID, e.Source, id, source)
		}
	}
	wantCreated(created.ID, "rest_api")

	c, err := client.NewStreamableHttpClient(url+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	mcpConnect(t, c, "oauth-client", "")
	task := structured(t, mcpCall(t, c, "create_task", map[string]any{"title": "over MCP"}))
	if task.CreatedBy != sub {
		t.Errorf("MCP created_by %q, want %q (the token's sub)", task.CreatedBy, sub)
	}
	wantCreated(task.ID, "mcp_tool")

	mcpInit := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"oauth","version":"1"}}}`
	mcpHeader := map[string]string{"Accept": "application/json, text/event-stream"}
	metadata := url + "/.well-known/oauth-protected-resource/mcp"
	resp, b := send(t, http.MethodPost, url+"/mcp", "", mcpInit, mcpHeader)
	if challenge := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
		!strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `resource_metadata="`+metadata+`"`) {
		t.Errorf("POST /mcp without a token: %d, WWW-Authenticate %q, %s; want 401 naming resource_metadata %s", resp.StatusCode, challenge, b, metadata)
	}
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.Unmarshal(must(t, http.MethodGet, metadata, "", "", http.StatusOK), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != url+"/mcp" || !slices.Equal(doc.AuthorizationServers, []string{is.url}) {
		t.Errorf("resource metadata %+v, want resource %s/mcp and authorization server %s", doc, url, is.url)
	}

	readOnly := is.mint(t, sub, "read", url+"/mcp")
	must(t, http.MethodGet, url+"/api/tasks", readOnly, "", http.StatusOK)
	resp, b = send(t, http.MethodPost, url+"/mcp", readOnly, mcpInit, mcpHeader)
	if challenge := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="write"`) {
		t.Errorf("POST /mcp with a read-only token: %d, WWW-Authenticate %q, %s; want 403 insufficient_scope for write", resp.StatusCode, challenge, b)
	}
}
