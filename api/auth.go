package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"taskhub/broadcaster"

	"github.com/labstack/echo/v4"
)

// Scopes a token may hold. Each grants only itself: a token that should read and
// write lists both.
const (
	ScopeRead  = "read"  // GET and HEAD of /api and /events/stream
	ScopeWrite = "write" // changes under /api, and every request to /mcp
	ScopeAdmin = "admin" // /events/debug and /metrics
)

var scopes = []string{ScopeRead, ScopeWrite, ScopeAdmin}

// SingleTokenName is the name of the token given by --token: the actor of its changes.
const SingleTokenName = "token"

// Token is one entry of a tokens file.
type Token struct {
	Name   string   `json:"name"`
	SHA256 string   `json:"sha256"` // hex of the SHA-256 of the token itself
	Scopes []string `json:"scopes"`
}

// principal is a token as the server checks it.
type principal struct {
	name   string
	digest [sha256.Size]byte
	scopes []string
}

// Tokens is an immutable set of tokens. Replace a set, never change one.
type Tokens struct {
	list []principal
}

// SingleToken returns the set of one token, secret, named SingleTokenName, with every
// scope.
func SingleToken(secret string) *Tokens {
	return &Tokens{list: []principal{{name: SingleTokenName, digest: sha256.Sum256([]byte(secret)), scopes: scopes}}}
}

// ParseTokens reads a tokens file: a JSON list of Token. Names must be unique and not
// empty, digests unique and 64 hex digits, scopes known. An empty list is valid: it
// lets no one in.
func ParseTokens(data []byte) (*Tokens, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var list []Token
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("not a JSON list of {\"name\", \"sha256\", \"scopes\"}: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON list")
	}
	if list == nil {
		return nil, fmt.Errorf("want a JSON list of tokens, got null")
	}
	set := &Tokens{}
	for i, t := range list {
		p := principal{name: strings.TrimSpace(t.Name)}
		switch {
		case p.name == "":
			return nil, fmt.Errorf("token %d: name is empty", i)
		case len(p.name) > 100:
			return nil, fmt.Errorf("token %q: name is longer than 100 characters", p.name)
		case len(t.SHA256) != 2*sha256.Size:
			return nil, fmt.Errorf("token %q: sha256 must be 64 hex digits (printf %%s \"$TOKEN\" | sha256sum), got %d characters", p.name, len(t.SHA256))
		case len(t.Scopes) == 0:
			return nil, fmt.Errorf("token %q: scopes is empty (known: %s)", p.name, strings.Join(scopes, ", "))
		}
		if _, err := hex.Decode(p.digest[:], []byte(t.SHA256)); err != nil {
			return nil, fmt.Errorf("token %q: sha256 is not hex: %v", p.name, err)
		}
		for _, s := range t.Scopes {
			if !slices.Contains(scopes, s) {
				return nil, fmt.Errorf("token %q: unknown scope %q (known: %s)", p.name, s, strings.Join(scopes, ", "))
			}
			if !slices.Contains(p.scopes, s) {
				p.scopes = append(p.scopes, s)
			}
		}
		for _, q := range set.list {
			if q.name == p.name {
				return nil, fmt.Errorf("token %q: name given twice", p.name)
			}
			if q.digest == p.digest {
				return nil, fmt.Errorf("tokens %q and %q have the same sha256", q.name, p.name)
			}
		}
		set.list = append(set.list, p)
	}
	return set, nil
}

// Len returns how many tokens the set holds.
func (t *Tokens) Len() int { return len(t.list) }

// find returns the token whose secret is secret. It compares digests in constant time
// and looks at every token, so the time taken tells nothing of which one (nearly)
// matched.
func (t *Tokens) find(secret string) (principal, bool) {
	d := sha256.Sum256([]byte(secret))
	var found principal
	ok := 0
	for _, p := range t.list {
		if subtle.ConstantTimeCompare(d[:], p.digest[:]) == 1 {
			found, ok = p, 1
		}
	}
	return found, ok == 1
}

func (t *Tokens) byName(name string) (principal, bool) {
	for _, p := range t.list {
		if p.name == name {
			return p, true
		}
	}
	return principal{}, false
}

// Revoked reports whether a stream opened by name under old must end under t: the name
// is gone, its secret changed, or it lost the read scope. A name that is not a token
// of old, such as an OAuth access token's actor, was not revoked by the change.
func (t *Tokens) Revoked(old *Tokens, name string) bool {
	before, ok := old.byName(name)
	if !ok {
		return false
	}
	now, ok := t.byName(name)
	return !ok || !slices.Contains(now.scopes, ScopeRead) || before.digest != now.digest
}

// Auth checks requests against the current set of tokens, which Swap replaces while
// the server runs, and ends the streams of the tokens a Swap revokes.
type Auth struct {
	tokens atomic.Pointer[Tokens]

	mu      sync.Mutex
	streams map[string]map[*func()]struct{} // the ends of the open streams, by token name
}

// NewAuth returns an Auth over tokens.
func NewAuth(tokens *Tokens) *Auth {
	a := &Auth{streams: map[string]map[*func()]struct{}{}}
	a.tokens.Store(tokens)
	return a
}

// Swap makes next the set in force, from the next request on, ends the open streams
// of every token it revokes (see Tokens.Revoked, and Track), and returns the set it
// replaced and how many streams it ended.
func (a *Auth) Swap(next *Tokens) (old *Tokens, ended int) {
	old = a.tokens.Swap(next)
	var ends []*func()
	a.mu.Lock()
	for name, set := range a.streams {
		if next.Revoked(old, name) {
			for end := range set {
				ends = append(ends, end)
			}
		}
	}
	a.mu.Unlock()
	for _, end := range ends {
		(*end)()
	}
	return old, len(ends)
}

// Track records end as the way to end a stream opened with ctx, its request's
// context, for as long as the stream is open: until untrack. A Swap that revokes the
// token the request was let in with calls end, which must return at once. Track
// reports false, and records nothing, when that token was revoked already, while the
// stream was being set up: no moment is left in which a revoked token's new stream
// slips through. A stream let in without a static token is not tracked.
func (a *Auth) Track(ctx context.Context, end func()) (untrack func(), ok bool) {
	in, found := ctx.Value(letInKey{}).(letIn)
	if !found {
		return func() {}, true
	}
	key := &end
	a.mu.Lock()
	if a.streams[in.name] == nil {
		a.streams[in.name] = map[*func()]struct{}{}
	}
	a.streams[in.name][key] = struct{}{}
	a.mu.Unlock()
	untrack = func() {
		a.mu.Lock()
		delete(a.streams[in.name], key)
		if len(a.streams[in.name]) == 0 {
			delete(a.streams, in.name)
		}
		a.mu.Unlock()
	}
	if now := a.tokens.Load(); now != in.set && now.Revoked(in.set, in.name) {
		untrack()
		return nil, false
	}
	return untrack, true
}

// callerKey is the context key of the authenticated token's name.
type callerKey struct{}

// Caller returns the name of the token that authenticated the request of ctx. It is
// mcptools' Config.Caller.
func Caller(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(callerKey{}).(string)
	return name, ok
}

// requiredScope returns the scope a request needs, and false for the paths anyone
// may use: /healthz, the dashboard's files and /.well-known/*.
func requiredScope(method, path string) (string, bool) {
	under := func(prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	switch {
	case under("/events/debug"), under("/metrics"), under("/mcp/sessions"), under("/api/webhooks"):
		return ScopeAdmin, true
	case under("/mcp"):
		// One POST may read or change; the transport cannot tell which.
		return ScopeWrite, true
	case under("/api"), under("/events"):
		if method == http.MethodGet || method == http.MethodHead {
			return ScopeRead, true
		}
		return ScopeWrite, true
	}
	return "", false
}

// authenticate checks every request to a protected path: Authorization: Bearer, or
// ?access_token= on GET /events/stream alone (an EventSource cannot set headers). The
// token is one of a's (nil: none), else, with oauth on, an access token of its
// issuer. Its name goes into the request's context (Caller) and, for the stream,
// becomes the stream's owner.
func authenticate(a *Auth, oauth *OAuth) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			scope, protected := requiredScope(r.Method, r.URL.Path)
			if !protected {
				return next(c)
			}
			stream := (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/events/stream"
			ch := challenge{oauth: oauth, tokens: a != nil, path: r.URL.Path, scope: scope, stream: stream}
			secret, err := bearer(r, stream)
			if err != nil {
				return ch.unauthorized(c, "", err.Error())
			}
			var set *Tokens
			var p principal
			found := false
			if a != nil {
				set = a.tokens.Load()
				p, found = set.find(secret)
			}
			static := found
			if !found && oauth != nil && strings.Count(secret, ".") == 2 {
				if p, err = oauth.verify(r.Context(), secret); err != nil {
					return ch.unauthorized(c, "invalid_token", err.Error())
				}
				found = true
			}
			if !found {
				return ch.unauthorized(c, "invalid_token", "the token is not valid (revoked, mistyped, or for another server)")
			}
			if !slices.Contains(p.scopes, scope) {
				return ch.forbidden(c, p, r)
			}
			ctx := context.WithValue(r.Context(), callerKey{}, p.name)
			if static { // for Track, should the request be a stream's
				ctx = context.WithValue(ctx, letInKey{}, letIn{set, p.name})
			}
			if stream {
				ctx = broadcaster.WithOwner(ctx, p.name)
			}
			c.SetRequest(r.WithContext(ctx))
			return next(c)
		}
	}
}

// letIn records the token set a stream's request was let in with, and by which name.
type letIn struct {
	set  *Tokens
	name string
}

type letInKey struct{}

// bearer returns the token a request carries, or why it carries none that can be
// read.
func bearer(r *http.Request, queryAllowed bool) (string, error) {
	q := r.URL.Query()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", fmt.Errorf("the Authorization header is not the word Bearer, a space and the token")
		}
		return strings.TrimSpace(token), nil
	}
	if q.Has("access_token") {
		if !queryAllowed {
			return "", fmt.Errorf("?access_token= is taken only by GET /events/stream")
		}
		if t := q.Get("access_token"); t != "" {
			return t, nil
		}
	}
	return "", fmt.Errorf("this server needs a token")
}

// challenge is what a 401 or 403 tells the client about the request it refuses
// (RFC 6750 §3, and RFC 9728 §5.1 with OAuth on).
type challenge struct {
	oauth  *OAuth
	tokens bool // the server has tokens of its own
	path   string
	scope  string // the one the request needs
	stream bool   // GET /events/stream, which also takes ?access_token=
}

// howToSend is the part of a 401 that tells a person how to send a token.
func (ch challenge) howToSend() string {
	how := "send Authorization: Bearer <token>"
	if ch.stream {
		how += ", or ?access_token=<token>"
	}
	switch {
	case ch.oauth != nil && ch.tokens:
		how += ", with a token of this server or an access token from " + ch.oauth.issuer + " (scope " + ch.scope + ")"
	case ch.oauth != nil:
		how += ", with an access token from " + ch.oauth.issuer + " (scope " + ch.scope + ")"
	}
	return how
}

// header is the WWW-Authenticate challenge with the given error and description.
func (ch challenge) header(errCode, description string, extra ...string) string {
	params := []string{`realm="taskhub"`}
	if ch.oauth != nil {
		params = append(params, `resource_metadata="`+ch.oauth.resourceMetadata(ch.path)+`"`)
	}
	if errCode != "" {
		params = append(params, `error="`+errCode+`"`)
	}
	params = append(params, extra...)
	params = append(params, `error_description="`+quotable(description)+`"`)
	return "Bearer " + strings.Join(params, ", ")
}

// unauthorized is a 401 whose message and error_description say why, and how to send
// a token. With OAuth on, its challenge names the scope needed and the resource
// metadata, from which a client learns where to get a token.
func (ch challenge) unauthorized(c echo.Context, errCode, reason string) error {
	message := reason + "; " + ch.howToSend()
	var extra []string
	if ch.oauth != nil {
		extra = append(extra, `scope="`+ch.scope+`"`)
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, ch.header(errCode, message, extra...))
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: message}
}

// forbidden is the 403 of a token p that lacks the scope the request needs
// (insufficient_scope, RFC 6750 §3.1).
func (ch challenge) forbidden(c echo.Context, p principal, r *http.Request) error {
	has := "none"
	if len(p.scopes) > 0 {
		has = strings.Join(p.scopes, ", ")
	}
	message := fmt.Sprintf("%s %s needs the %s scope; token %q has %s", r.Method, r.URL.Path, ch.scope, p.name, has)
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, ch.header("insufficient_scope", message, `scope="`+ch.scope+`"`))
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: message}
}

// quotable makes s fit an auth-param's quoted string as RFC 6750 §3 allows for
// error_description: printable ASCII without " and \.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\' || r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}
