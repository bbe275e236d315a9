package api_test

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// publicURL is the audience of the test tokens: the server's external URL, which it
// never has to reach.
const publicURL = "https://tasks.example.test"

// signingKey is one of the issuer's private keys.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newRSAKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.RS256, key: k}
}

func newECKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, key: k}
}

// public is the key as a JWKS publishes it.
func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// mint signs claims with k, with typ as the header's typ ("" for none).
func (k signingKey) mint(t testing.TB, typ string, claims map[string]any) string {
	t.Helper()
	return sign(t, jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}}, typ, claims)
}

func sign(t testing.TB, key jose.SigningKey, typ string, claims map[string]any, header ...any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	for i := 0; i+1 < len(header); i += 2 {
		opts = opts.WithHeader(jose.HeaderKey(header[i].(string)), header[i+1])
	}
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testIssuer is an authorization server on loopback: its metadata and its JWKS,
// which a test changes as it goes. It counts the fetches of the JWKS.
type testIssuer struct {
	*httptest.Server
	issuer  string // the server's URL and path
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
	broken  atomic.Bool // the JWKS answers 503
}

// issuerOptions shape a testIssuer: a path in its issuer URL, and whether it serves
// OpenID Connect discovery instead of RFC 8414 metadata.
type issuerOptions struct {
	path   string
	openid bool
}

// newIssuer starts an issuer that publishes keys. It serves outside any synctest
// bubble, so that a bubble's server can fetch from it while its own clock stands.
func newIssuer(t testing.TB, opts issuerOptions, keys ...signingKey) *testIssuer {
	t.Helper()
	is := &testIssuer{}
	mux := http.NewServeMux()
	metadata := "/.well-known/oauth-authorization-server" + opts.path
	if opts.openid {
		metadata = opts.path + "/.well-known/openid-configuration"
	}
	mux.HandleFunc("GET "+metadata, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.issuer, "jwks_uri": is.issuer + "/jwks",
			"authorization_endpoint": is.issuer + "/authorize", "token_endpoint": is.issuer + "/token",
		})
	})
	mux.HandleFunc("GET "+opts.path+"/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		if is.broken.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		is.mu.Lock()
		defer is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	is.issuer = is.URL + opts.path
	is.publish(keys...)
	return is
}

// publish makes keys the issuer's whole JWKS.
func (is *testIssuer) publish(keys ...signingKey) {
	var jwks []jose.JSONWebKey
	for _, k := range keys {
		jwks = append(jwks, k.public())
	}
	is.publishJWKs(jwks...)
}

// publishJWKs makes keys, as they are, the issuer's whole JWKS.
func (is *testIssuer) publishJWKs(keys ...jose.JSONWebKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

// claims are those of a good access token for sub, with scope, valid for 5 minutes
// from now.
func (is *testIssuer) claims(sub, scope string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": is.issuer, "sub": sub, "aud": publicURL, "scope": scope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// newOAuth returns the resource server for is, failing the test on an error.
func newOAuth(t testing.TB, is *testIssuer, actorClaim string) *api.OAuth {
	t.Helper()
	o, err := api.NewOAuth(context.Background(), api.OAuthConfig{
		Issuer: is.issuer, PublicURL: publicURL, ActorClaim: actorClaim, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("NewOAuth: %v", err)
	}
	return o
}

// newOAuthServer serves the whole API over a real SQLite file and a real event
// stream, with OAuth (and, when tokens is not nil, static tokens beside it). /mcp and
// /events/debug are callerEcho.
func newOAuthServer(t *testing.T, o *api.OAuth, tokens *api.Tokens) *server {
	t.Helper()
	db := openDB(t)
	logger := slog.New(slog.DiscardHandler)
	hub := startHub(t, db, logger)
	cfg := api.Config{Service: tasks.NewService(db), Logger: logger, Stream: hub, MCP: callerEcho, Debug: callerEcho, OAuth: o}
	if tokens != nil {
		cfg.Auth = api.NewAuth(tokens)
	}
	ts := httptest.NewServer(api.New(cfg))
	t.Cleanup(ts.Close)
	return &server{ts}
}

// sendByDefault makes every request of s that has no Authorization header send
// token.
func (s *server) sendByDefault(token string) {
	c := s.Client()
	c.Transport = defaultToken{base: c.Transport, token: token}
}

type defaultToken struct {
	base  http.RoundTripper
	token string
}

func (d defaultToken) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+d.token)
	}
	return d.base.RoundTrip(r)
}

// withJSON adds the JSON Content-Type to h.
func withJSON(h hdr) hdr {
	h["Content-Type"] = "application/json"
	return h
}

// TestOAuthTokens: access tokens of the issuer, RSA and EC, work on REST, the event
// stream and /mcp, and their changes are attributed to the actor claim.
func TestOAuthTokens(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1")
	is := newIssuer(t, issuerOptions{}, rsaKey, ecKey)
	s := newOAuthServer(t, newOAuth(t, is, ""), nil)

	good := map[string]string{
		"RS256 at+jwt, scope":    rsaKey.mint(t, "at+jwt", is.claims("alice", "read write admin")),
		"ES256 JWT, scp":         ecKey.mint(t, "JWT", with(is.claims("alice", ""), "scp", []string{"taskhub:read", "taskhub:write", "taskhub:admin"})),
		"no typ, aud /mcp/":      rsaKey.mint(t, "", with(is.claims("alice", "read write admin"), "aud", publicURL+"/mcp/")),
		"aud list, slash":        ecKey.mint(t, "application/at+jwt", with(is.claims("alice", "read write admin"), "aud", []string{"other", publicURL + "/"})),
		"scp space-separated":    rsaKey.mint(t, "at+jwt", with(is.claims("alice", ""), "scp", "read write admin")),
		"scope and scp together": rsaKey.mint(t, "at+jwt", with(is.claims("alice", "read"), "scp", []string{"write", "admin"})),
	}
	for name, tok := range good {
		t.Run(name, func(t *testing.T) {
			task := decode[apiTask](t, wantOK(t, s, "POST", "/api/tasks", `{"title":"from oauth"}`, withJSON(bearerHdr(tok)), http.StatusCreated))
			if task.CreatedBy != "alice" {
				t.Errorf("created_by %q, want alice (the sub claim)", task.CreatedBy)
			}
			wantOK(t, s, "GET", taskPath(task.ID), nil, bearerHdr(tok), http.StatusOK)
			for _, path := range []string{"/mcp", "/events/debug"} {
				method := map[string]string{"/mcp": "POST", "/events/debug": "GET"}[path]
				if got := string(wantOK(t, s, method, path, `{}`, bearerHdr(tok), http.StatusOK)); got != "alice" {
					t.Errorf("%s %s: the caller is %q, want alice", method, path, got)
				}
			}
		})
	}

	t.Run("stream", func(t *testing.T) {
		tok := good["RS256 at+jwt, scope"]
		for _, how := range []string{"query", "header"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/events/stream", nil)
			if how == "query" {
				req.URL.RawQuery = "access_token=" + tok
			} else {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("%s: GET /events/stream: %d %s", how, resp.StatusCode, b)
			}
			lines := bufio.NewScanner(resp.Body)
			task := decode[apiTask](t, wantOK(t, s, "POST", "/api/tasks", `{"title":"seen on the stream"}`, withJSON(bearerHdr(tok)), http.StatusCreated))
			seen := false
			for !seen && lines.Scan() {
				if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
					seen = decode[apiEvent](t, []byte(data)).TaskID == task.ID
				}
			}
			if !seen {
				t.Fatalf("%s: the stream ended (%v) before the event of task %d", how, lines.Err(), task.ID)
			}
		}
	})

	t.Run("actor claim", func(t *testing.T) {
		s := newOAuthServer(t, newOAuth(t, is, "email"), nil)
		tok := rsaKey.mint(t, "at+jwt", with(is.claims("user-123", "write"), "email", "bob@example.test"))
		task := decode[apiTask](t, wantOK(t, s, "POST", "/api/tasks", `{"title":"by bob"}`, withJSON(bearerHdr(tok)), http.StatusCreated))
		if task.CreatedBy != "bob@example.test" {
			t.Errorf("created_by %q, want bob@example.test (the email claim)", task.CreatedBy)
		}
		if got := string(wantOK(t, s, "POST", "/mcp", `{}`, bearerHdr(tok), http.StatusOK)); got != "bob@example.test" {
			t.Errorf("POST /mcp: the caller is %q, want bob@example.test", got)
		}
		status, h, b := s.do(t, "POST", "/mcp", `{}`, bearerHdr(rsaKey.mint(t, "at+jwt", is.claims("user-123", "write"))))
		wantError(t, status, h, b, http.StatusUnauthorized, api.CodeUnauthorized, "")
		if msg := errorMessage(t, b); !strings.Contains(msg, `no "email" claim`) {
			t.Errorf("message %q, want it to name the missing email claim", msg)
		}
	})
}

// with returns claims with k set to v.
func with(claims map[string]any, k string, v any) map[string]any {
	claims[k] = v
	return claims
}

// without returns claims without k.
func without(claims map[string]any, k string) map[string]any {
	delete(claims, k)
	return claims
}

// wantOK makes a request that must answer want, and returns the body.
func wantOK(t testing.TB, s *server, method, path string, body any, h hdr, want int) []byte {
	t.Helper()
	status, _, b := s.do(t, method, path, body, h)
	wantStatus(t, method, path, status, want, b)
	return b
}

// TestOAuthRefused: tokens that are not the issuer's good access tokens for this
// server get 401 invalid_token, with the resource metadata in the challenge and a
// message saying why, and change nothing.
func TestOAuthRefused(t *testing.T) {
	rsaKey := newRSAKey(t, "rsa-1")
	is := newIssuer(t, issuerOptions{}, rsaKey, newECKey(t, "ec-1"))
	// The test's own reads (to see that nothing changed) use a static token.
	s := newOAuthServer(t, newOAuth(t, is, ""), api.SingleToken("secret"))
	s.sendByDefault("secret")
	stranger := newRSAKey(t, "stranger")
	now := time.Now()
	pub, err := x509.MarshalPKIXPublicKey(rsaKey.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	good := func() map[string]any { return is.claims("alice", "read write") }
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	forged := strings.Split(rsaKey.mint(t, "at+jwt", good()), ".")
	forged[1] = b64(with(good(), "sub", "mallory"))
	pss := signingKey{kid: "rsa-1", alg: jose.PS256, key: rsaKey.key}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"expired", rsaKey.mint(t, "at+jwt", with(good(), "exp", now.Add(-2*time.Minute).Unix())), "expired at"},
		{"not yet valid", rsaKey.mint(t, "at+jwt", with(good(), "nbf", now.Add(2*time.Minute).Unix())), "not valid before"},
		{"issued in the future", rsaKey.mint(t, "at+jwt", with(good(), "iat", now.Add(2*time.Minute).Unix())), "issued in the future"},
		{"no exp", rsaKey.mint(t, "at+jwt", without(good(), "exp")), "no exp"},
		{"wrong issuer", rsaKey.mint(t, "at+jwt", with(good(), "iss", "https://other.example.test")), "from the issuer"},
		{"issuer with a slash", rsaKey.mint(t, "at+jwt", with(good(), "iss", is.issuer+"/")), "from the issuer"},
		{"wrong audience", rsaKey.mint(t, "at+jwt", with(good(), "aud", "https://other.example.test")), "audience"},
		{"audience of another path", rsaKey.mint(t, "at+jwt", with(good(), "aud", publicURL+"/api")), "audience"},
		{"no audience", rsaKey.mint(t, "at+jwt", without(good(), "aud")), "audience"},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}) + "." + b64(good()) + ".", "asymmetric"},
		{"HMAC with the RSA public key", sign(t, jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM}, "at+jwt", good(), "kid", "rsa-1"), "asymmetric"},
		{"HMAC with the key's modulus", sign(t, jose.SigningKey{Algorithm: jose.HS256, Key: rsaKey.key.Public().(*rsa.PublicKey).N.Bytes()}, "at+jwt", good(), "kid", "rsa-1"), "asymmetric"},
		{"an alg the key is not for", pss.mint(t, "at+jwt", good()), "not one that the issuer's key"},
		{"unknown key", stranger.mint(t, "at+jwt", good()), "does not publish"},
		{"a known kid, another key", signingKey{kid: "rsa-1", alg: jose.RS256, key: stranger.key}.mint(t, "at+jwt", good()), "signature does not verify"},
		{"claims changed after signing", strings.Join(forged, "."), "signature does not verify"},
		{"an ID token's typ", rsaKey.mint(t, "id+jwt", good()), "typ"},
		{"no sub", rsaKey.mint(t, "at+jwt", without(good(), "sub")), `no "sub" claim`},
		{"a number as sub", rsaKey.mint(t, "at+jwt", with(good(), "sub", 42)), "claims are not valid"},
		{"an empty sub", rsaKey.mint(t, "at+jwt", with(good(), "sub", " ")), `no "sub" claim`},
		{"a sub too long", rsaKey.mint(t, "at+jwt", with(good(), "sub", strings.Repeat("a", 201))), "longer than 200"},
		{"not a JWT", "a.b.c", "not a JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.state(t)
			status, h, b := s.do(t, "POST", "/api/tasks", `{"title":"refused"}`, withJSON(bearerHdr(tc.token)))
			wantError(t, status, h, b, http.StatusUnauthorized, api.CodeUnauthorized, "")
			if msg := errorMessage(t, b); !strings.Contains(msg, tc.want) {
				t.Errorf("message %q, want it to contain %q", msg, tc.want)
			}
			p := challengeParams(t, h.Get("WWW-Authenticate"))
			if p["error"] != "invalid_token" || p["resource_metadata"] != publicURL+"/.well-known/oauth-protected-resource" || p["scope"] != "write" {
				t.Errorf("challenge %q, want invalid_token, the resource metadata and scope write", h.Get("WWW-Authenticate"))
			}
			s.wantUnchanged(t, before)
		})
	}
}

// TestOAuthScopes: a token gets only the scopes it holds, each of which grants only
// itself; a missing one is 403 insufficient_scope naming it.
func TestOAuthScopes(t *testing.T) {
	key := newRSAKey(t, "k")
	is := newIssuer(t, issuerOptions{}, key)
	s := newOAuthServer(t, newOAuth(t, is, ""), nil)
	for _, tc := range []struct {
		scope  string
		method string
		path   string
		need   string // "" when allowed
	}{
		{"read", "GET", "/api/tasks", ""},
		{"taskhub:read", "GET", "/api/tasks", ""},
		{"read", "POST", "/api/tasks", "write"},
		{"read", "POST", "/mcp", "write"},
		{"read admin", "POST", "/mcp", "write"},
		{"write", "GET", "/api/tasks", "read"},
		{"write", "POST", "/mcp", ""},
		{"taskhub:write", "GET", "/events/debug", "admin"},
		{"admin", "GET", "/events/debug", ""},
		{"", "GET", "/api/tasks", "read"},
		{"openid profile readwrite", "GET", "/api/tasks", "read"},
		{"taskhub:read:all", "GET", "/api/tasks", "read"},
	} {
		t.Run(tc.scope+" "+tc.method+" "+tc.path, func(t *testing.T) {
			status, h, b := s.do(t, tc.method, tc.path, `{"title":"t"}`, withJSON(bearerHdr(key.mint(t, "at+jwt", is.claims("alice", tc.scope)))))
			if tc.need == "" {
				if status >= 400 {
					t.Fatalf("%d %s, want it allowed", status, b)
				}
				return
			}
			wantError(t, status, h, b, http.StatusForbidden, api.CodeForbidden, "")
			p := challengeParams(t, h.Get("WWW-Authenticate"))
			if p["error"] != "insufficient_scope" || p["scope"] != tc.need {
				t.Errorf("challenge %q, want error insufficient_scope and scope %s", h.Get("WWW-Authenticate"), tc.need)
			}
			if want := publicURL + "/.well-known/oauth-protected-resource"; !strings.HasPrefix(p["resource_metadata"], want) {
				t.Errorf("resource_metadata %q, want %s…", p["resource_metadata"], want)
			}
		})
	}
}

// TestOAuthMetadata: the protected resource metadata of the server and of /mcp, and
// the challenge of each 401 pointing at the document of the path asked.
func TestOAuthMetadata(t *testing.T) {
	is := newIssuer(t, issuerOptions{}, newECKey(t, "k"))
	s := newOAuthServer(t, newOAuth(t, is, ""), nil)
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource":     publicURL,
		"/.well-known/oauth-protected-resource/mcp": publicURL + "/mcp",
	} {
		status, h, b := s.do(t, "GET", path, nil, nil)
		wantStatus(t, "GET", path, status, http.StatusOK, b)
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
		want := map[string]any{
			"resource": resource, "authorization_servers": []any{is.issuer},
			"scopes_supported": []any{"read", "write", "admin"}, "bearer_methods_supported": []any{"header"},
		}
		if fmt.Sprint(doc) != fmt.Sprint(want) {
			t.Errorf("GET %s: %s, want %v", path, b, want)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("GET %s: Access-Control-Allow-Origin %q, want *", path, got)
		}
		status, h, _ = s.do(t, "OPTIONS", path, nil, hdr{"Origin": "http://localhost:6274", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "mcp-protocol-version"})
		if status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("OPTIONS %s: %d, Access-Control-Allow-Origin %q; want a preflight's answer", path, status, h.Get("Access-Control-Allow-Origin"))
		}
	}
	status, h, b := s.do(t, "GET", "/.well-known/oauth-authorization-server", nil, nil)
	wantError(t, status, h, b, http.StatusNotFound, tasks.ENotFound, "")

	for path, doc := range map[string]string{
		"/api/tasks":     "/.well-known/oauth-protected-resource",
		"/events/stream": "/.well-known/oauth-protected-resource",
		"/mcp":           "/.well-known/oauth-protected-resource/mcp",
		"/mcp/sse":       "/.well-known/oauth-protected-resource/mcp",
	} {
		status, h, b := s.do(t, "GET", path, nil, nil)
		wantError(t, status, h, b, http.StatusUnauthorized, api.CodeUnauthorized, "")
		p := challengeParams(t, h.Get("WWW-Authenticate"))
		if p["resource_metadata"] != publicURL+doc {
			t.Errorf("GET %s: challenge %q, want resource_metadata %s", path, h.Get("WWW-Authenticate"), publicURL+doc)
		}
		if _, ok := p["error"]; ok {
			t.Errorf("GET %s without a token: challenge %q has an error code", path, h.Get("WWW-Authenticate"))
		}
		if !strings.Contains(p["error_description"], "Authorization: Bearer <token>") || !strings.Contains(p["error_description"], is.issuer) {
			t.Errorf("GET %s: error_description %q, want how to send a token and where to get one", path, p["error_description"])
		}
	}
}

// TestWellKnownWithoutOAuth: a server without OAuth advertises none: every
// /.well-known/ path is a JSON 404, with tokens and without.
func TestWellKnownWithoutOAuth(t *testing.T) {
	for name, auth := range map[string]*api.Auth{"no tokens": nil, "tokens": api.NewAuth(api.SingleToken("secret"))} {
		ts := httptest.NewServer(api.New(api.Config{Logger: slog.New(slog.DiscardHandler), Auth: auth, MCP: callerEcho}))
		s := &server{ts}
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"} {
			status, h, b := s.do(t, "GET", path, nil, nil)
			wantError(t, status, h, b, http.StatusNotFound, tasks.ENotFound, "")
			if h.Get("WWW-Authenticate") != "" {
				t.Errorf("%s: GET %s has a challenge", name, path)
			}
		}
		ts.Close()
	}
}

// TestStaticTokensBesideOAuth: with OAuth on, the tokens file's tokens still work,
// with their own names and scopes.
func TestStaticTokensBesideOAuth(t *testing.T) {
	key := newRSAKey(t, "k")
	is := newIssuer(t, issuerOptions{}, key)
	s := newOAuthServer(t, newOAuth(t, is, ""), mustParseTokens(t, `[{"name":"ci","sha256":"`+hexA+`","scopes":["read","write"]}]`))
	task := decode[apiTask](t, wantOK(t, s, "POST", "/api/tasks", `{"title":"by ci"}`, withJSON(bearerHdr("secret")), http.StatusCreated))
	if task.CreatedBy != "ci" {
		t.Errorf("created_by %q, want ci", task.CreatedBy)
	}
	task = decode[apiTask](t, wantOK(t, s, "POST", "/api/tasks", `{"title":"by alice"}`, withJSON(bearerHdr(key.mint(t, "at+jwt", is.claims("alice", "write")))), http.StatusCreated))
	if task.CreatedBy != "alice" {
		t.Errorf("created_by %q, want alice", task.CreatedBy)
	}
	status, h, b := s.do(t, "GET", "/events/debug", nil, bearerHdr("secret"))
	wantError(t, status, h, b, http.StatusForbidden, api.CodeForbidden, "")
	if p := challengeParams(t, h.Get("WWW-Authenticate")); p["error"] != "insufficient_scope" || p["scope"] != "admin" {
		t.Errorf("challenge %q, want insufficient_scope for admin", h.Get("WWW-Authenticate"))
	}
	status, h, b = s.do(t, "GET", "/api/tasks", nil, bearerHdr("wrong"))
	wantError(t, status, h, b, http.StatusUnauthorized, api.CodeUnauthorized, "")
}

// TestNewOAuth: the configurations and issuers that NewOAuth refuses, and the
// discovery it falls back on.
func TestNewOAuth(t *testing.T) {
	key := newRSAKey(t, "k")
	rfc := newIssuer(t, issuerOptions{}, key)
	oidcPath := newIssuer(t, issuerOptions{path: "/realms/acme", openid: true}, key)
	rfcPath := newIssuer(t, issuerOptions{path: "/tenant"}, key)
	hmacOnly := newIssuer(t, issuerOptions{})
	hmacOnly.publishJWKs(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256", Use: "sig"})
	encOnly := newIssuer(t, issuerOptions{})
	enc := key.public()
	enc.Use = "enc"
	encOnly.publishJWKs(enc)
	gone := newIssuer(t, issuerOptions{}, key)
	gone.Close()
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"issuer": "https://someone-else.example.test", "jwks_uri": "https://someone-else.example.test/jwks"}`)
	}))
	defer liar.Close()
	for _, tc := range []struct {
		name, issuer, public, err string
	}{
		{"RFC 8414", rfc.issuer, publicURL, ""},
		{"a trailing slash", rfc.issuer + "/", publicURL + "/", ""},
		{"RFC 8414 with a path", rfcPath.issuer, publicURL, ""},
		{"OpenID discovery with a path", oidcPath.issuer, publicURL, ""},
		{"http off loopback", "http://issuer.example.test", publicURL, "only on loopback"},
		{"not a URL", "issuer", publicURL, "not an absolute URL"},
		{"ftp", "ftp://127.0.0.1/", publicURL, "https"},
		{"a query", rfc.issuer + "?x=1", publicURL, "no query"},
		{"no public URL", rfc.issuer, "", "public URL"},
		{"a public URL with a path", rfc.issuer, publicURL + "/mcp", "without a path"},
		{"a public URL without a host", rfc.issuer, "tasks.example.test", "scheme://host"},
		{"unreachable", gone.issuer, publicURL, "no authorization server metadata"},
		{"another issuer's metadata", liar.URL, publicURL, "names the issuer"},
		{"only an HMAC key", hmacOnly.issuer, publicURL, "no key that can check a signature"},
		{"only an encryption key", encOnly.issuer, publicURL, "no key that can check a signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.NewOAuth(context.Background(), api.OAuthConfig{Issuer: tc.issuer, PublicURL: tc.public})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}
