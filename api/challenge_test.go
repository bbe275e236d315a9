package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"taskhub/api"
)

// callerEcho is a stand-in for an HTTP handler behind the API's auth, /mcp say: it
// answers the name the request was authenticated as.
var callerEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	name, _ := api.Caller(r.Context())
	io.WriteString(w, name)
})

func bearerHdr(token string) hdr { return hdr{"Authorization": "Bearer " + token} }

var authParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// challengeParams returns the auth-params of a Bearer challenge, failing the test if
// it is not one.
func challengeParams(t testing.TB, challenge string) map[string]string {
	t.Helper()
	if !strings.HasPrefix(challenge, "Bearer ") {
		t.Fatalf("WWW-Authenticate %q, want a Bearer challenge", challenge)
	}
	params := map[string]string{}
	for _, m := range authParam.FindAllStringSubmatch(challenge, -1) {
		params[m[1]] = m[2]
	}
	return params
}

// TestUnauthorizedDescription: every 401, OAuth or not, says in its error_description
// (and its message) how to send a token; the stream's also names ?access_token=.
func TestUnauthorizedDescription(t *testing.T) {
	ts := httptest.NewServer(api.New(api.Config{
		Logger: slog.New(slog.DiscardHandler), Auth: api.NewAuth(api.SingleToken("secret")), Stream: callerEcho, MCP: callerEcho,
	}))
	defer ts.Close()
	s := &server{ts}
	for _, tc := range []struct {
		name, path string
		h          hdr
		errCode    string
		stream     bool
	}{
		{"no token", "/api/tasks", nil, "", false},
		{"no token, MCP", "/mcp", nil, "", false},
		{"no token, stream", "/events/stream", nil, "", true},
		{"wrong token", "/api/tasks", bearerHdr("wrong"), "invalid_token", false},
		{"wrong token, stream", "/events/stream?access_token=wrong", nil, "invalid_token", true},
		{"not Bearer", "/api/tasks", hdr{"Authorization": "Basic c2VjcmV0"}, "", false},
		{"query off the stream", "/api/tasks?access_token=secret", nil, "", false},
		{"a JWT, OAuth off", "/api/tasks", bearerHdr("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), "invalid_token", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, b := s.do(t, "GET", tc.path, nil, tc.h)
			wantError(t, status, h, b, http.StatusUnauthorized, api.CodeUnauthorized, "")
			challenge := h.Get("WWW-Authenticate")
			if !regexp.MustCompile(`^Bearer [a-z_]+="[ !#-\[\]-~]*"(, [a-z_]+="[ !#-\[\]-~]*")*$`).MatchString(challenge) {
				t.Errorf("challenge %q is not auth-params of printable ASCII (RFC 6750 §3)", challenge)
			}
			p := challengeParams(t, challenge)
			if p["error"] != tc.errCode {
				t.Errorf("error %q, want %q", p["error"], tc.errCode)
			}
			if _, ok := p["resource_metadata"]; ok {
				t.Errorf("challenge %q names resource metadata without OAuth", challenge)
			}
			desc := p["error_description"]
			if !strings.Contains(desc, "send Authorization: Bearer <token>") {
				t.Errorf("error_description %q does not say how to send the token", desc)
			}
			if got := strings.Contains(desc, "?access_token=<token>"); got != tc.stream {
				t.Errorf("error_description %q names ?access_token=: %v, want %v", desc, got, tc.stream)
			}
			if msg := errorMessage(t, b); msg != strings.ReplaceAll(desc, "'", `"`) {
				t.Errorf("message %q, want the error_description %q", msg, desc)
			}
		})
	}
}

// TestInsufficientScope: a token without the scope a request needs gets 403, whose
// challenge says insufficient_scope and names the scope.
func TestInsufficientScope(t *testing.T) {
	ts := httptest.NewServer(api.New(api.Config{
		Logger: slog.New(slog.DiscardHandler), MCP: callerEcho, Debug: callerEcho,
		Auth: api.NewAuth(mustParseTokens(t, `[{"name":"reader","sha256":"`+hexA+`","scopes":["read"]}]`)),
	}))
	defer ts.Close()
	s := &server{ts}
	for path, need := range map[string]string{"/mcp": "write", "/events/debug": "admin"} {
		status, h, b := s.do(t, "GET", path, nil, bearerHdr("secret"))
		wantError(t, status, h, b, http.StatusForbidden, api.CodeForbidden, "")
		p := challengeParams(t, h.Get("WWW-Authenticate"))
		if p["error"] != "insufficient_scope" || p["scope"] != need || !strings.Contains(p["error_description"], "needs the "+need+" scope") {
			t.Errorf("GET %s: challenge %q, want insufficient_scope for %s", path, h.Get("WWW-Authenticate"), need)
		}
	}
}
