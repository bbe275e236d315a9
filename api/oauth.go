package api

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/labstack/echo/v4"
)

// How access tokens and the issuer's keys are checked.
const (
	// TokenLeeway is how far a token's exp and nbf may be off the server's clock.
	TokenLeeway = 30 * time.Second
	// JWKSMinInterval is the least time between two fetches of the issuer's keys: a
	// token signed with a key the server does not know makes it fetch them again,
	// and a flood of such tokens must not become a flood of fetches.
	JWKSMinInterval = 10 * time.Second
	// JWKSMaxAge is how long fetched keys are used before they are fetched again, so
	// that a key the issuer withdraws stops being accepted.
	JWKSMaxAge = 15 * time.Minute
	// DefaultActorClaim is the claim that names who makes a change, unless
	// OAuthConfig.ActorClaim names another.
	DefaultActorClaim = "sub"
	// ProtectedResourcePath is where the protected resource metadata (RFC 9728) is
	// served; the document of /mcp is at this path followed by /mcp.
	ProtectedResourcePath = "/.well-known/oauth-protected-resource"
)

const (
	fetchTimeout = 10 * time.Second
	fetchLimit   = 1 << 20 // bytes of a metadata document or a key set
	maxActorLen  = 200
)

// asymmetric are the signature algorithms a token may use: never none, never HMAC,
// whose "key" would be whatever the issuer publishes.
var asymmetric = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// OAuthConfig is what an OAuth resource server is built from.
type OAuthConfig struct {
	// Issuer is the authorization server's issuer URL: https, or http on loopback.
	Issuer string
	// PublicURL is this server's external URL, scheme://host[:port]: the audience
	// tokens must name (it or its /mcp), and the resource of its metadata.
	PublicURL string
	// ActorClaim is the claim whose string value is the actor of a token's changes;
	// "" means DefaultActorClaim.
	ActorClaim string
	// Logger receives the failures to fetch the issuer's keys; nil discards them.
	Logger *slog.Logger
}

// OAuth makes the server an OAuth 2.1 resource server: it checks access tokens, JWTs
// signed by the issuer with a key of its JWKS, and serves the protected resource
// metadata that tells clients where to get them.
type OAuth struct {
	issuer     string // as the issuer's metadata spells it
	resource   string // the public URL, without a trailing slash
	actorClaim string
	jwksURI    string
	client     *http.Client
	logger     *slog.Logger

	documents map[string][]byte // the protected resource metadata, by path

	keys      atomic.Pointer[keySet]
	fetchMu   sync.Mutex // one fetch of the keys at a time
	lastFetch time.Time  // guarded by fetchMu
}

// keySet is the issuer's keys as one fetch found them.
type keySet struct {
	keys    []verifyKey
	fetched time.Time
}

// verifyKey is a public key of the issuer and the algorithms it may check.
type verifyKey struct {
	id   string
	key  any
	algs []jose.SignatureAlgorithm
}

// NewOAuth checks cfg, finds the issuer's metadata (RFC 8414, else OpenID Connect
// discovery) and fetches its keys once: an issuer that cannot be reached, or whose
// metadata names another issuer, is an error at start-up rather than at the first
// request.
func NewOAuth(ctx context.Context, cfg OAuthConfig) (*OAuth, error) {
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || issuer.Host == "" {
		return nil, fmt.Errorf("oauth issuer %q: not an absolute URL", cfg.Issuer)
	}
	if err := secureURL(issuer); err != nil {
		return nil, fmt.Errorf("oauth issuer: %w", err)
	}
	if issuer.RawQuery != "" || issuer.Fragment != "" {
		return nil, fmt.Errorf("oauth issuer %q: an issuer has no query or fragment", cfg.Issuer)
	}
	public, err := url.Parse(cfg.PublicURL)
	switch {
	case cfg.PublicURL == "":
		return nil, fmt.Errorf("public URL: needed with an oauth issuer (it is the audience of the tokens)")
	case err != nil || public.Host == "" || (public.Scheme != "https" && public.Scheme != "http"):
		return nil, fmt.Errorf("public URL %q: want scheme://host[:port], http or https", cfg.PublicURL)
	case strings.Trim(public.Path, "/") != "" || public.RawQuery != "" || public.Fragment != "":
		return nil, fmt.Errorf("public URL %q: want the server's root, scheme://host[:port], without a path, query or fragment", cfg.PublicURL)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// The issuer is asked rarely: an idle connection kept for it would only hold a
	// socket open.
	transport.DisableKeepAlives = true
	o := &OAuth{
		resource:   public.Scheme + "://" + public.Host,
		actorClaim: cmp.Or(cfg.ActorClaim, DefaultActorClaim),
		logger:     logger,
		client: &http.Client{
			Timeout:   fetchTimeout,
			Transport: transport,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("more than 5 redirects")
				}
				return secureURL(req.URL)
			},
		},
	}
	if err := o.discover(ctx, cfg.Issuer, issuer); err != nil {
		return nil, err
	}
	o.lastFetch = time.Now()
	set, err := o.fetchKeys(ctx)
	if err != nil {
		return nil, err
	}
	o.keys.Store(set)
	o.documents = map[string][]byte{}
	for _, suffix := range []string{"", "/mcp"} {
		body, err := json.Marshal(map[string]any{
			"resource":                 o.resource + suffix,
			"authorization_servers":    []string{o.issuer},
			"scopes_supported":         scopes,
			"bearer_methods_supported": []string{"header"},
		})
		if err != nil {
			return nil, fmt.Errorf("protected resource metadata: %w", err)
		}
		o.documents[ProtectedResourcePath+suffix] = body
	}
	return o, nil
}

// secureURL refuses a URL that would carry the issuer's answers in clear text over a
// network: http is for loopback alone.
func secureURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%s: http is allowed only on loopback (127.0.0.1, [::1], localhost); use https", u.Redacted())
	}
	return fmt.Errorf("%s: want an https URL", u.Redacted())
}

// discover finds the issuer's metadata where RFC 8414 puts it (the well-known path
// before the issuer's path), else where OpenID Connect discovery does, and takes
// its jwks_uri.
func (o *OAuth) discover(ctx context.Context, raw string, issuer *url.URL) error {
	root := issuer.Scheme + "://" + issuer.Host
	path := strings.TrimSuffix(issuer.Path, "/")
	candidates := []string{
		root + "/.well-known/oauth-authorization-server" + path,
		root + "/.well-known/openid-configuration" + path,
	}
	if path != "" {
		candidates = append(candidates, root+path+"/.well-known/openid-configuration")
	}
	var failures []string
	for _, where := range candidates {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := o.fetchJSON(ctx, where, &meta); err != nil {
			failures = append(failures, err.Error())
			continue
		}
		if meta.Issuer == "" {
			failures = append(failures, "GET "+where+": no issuer in the document")
			continue
		}
		if strings.TrimSuffix(meta.Issuer, "/") != strings.TrimSuffix(raw, "/") {
			return fmt.Errorf("oauth issuer: the metadata at %s names the issuer %q, not %q", where, meta.Issuer, issuer)
		}
		jwks, err := url.Parse(meta.JWKSURI)
		if err != nil || jwks.Host == "" {
			return fmt.Errorf("oauth issuer: the metadata at %s has no usable jwks_uri (%q)", where, meta.JWKSURI)
		}
		if err := secureURL(jwks); err != nil {
			return fmt.Errorf("oauth issuer: jwks_uri: %w", err)
		}
		o.issuer, o.jwksURI = meta.Issuer, jwks.String()
		return nil
	}
	return fmt.Errorf("oauth issuer %s: no authorization server metadata found: %s", issuer, strings.Join(failures, "; "))
}

// fetchJSON decodes the JSON document at where into dst.
func (o *OAuth) fetchJSON(ctx context.Context, where string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", where, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", where, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, fetchLimit+1))
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: read the body: %w", where, err)
	case len(body) > fetchLimit:
		return fmt.Errorf("GET %s: the body is over %d bytes", where, fetchLimit)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("GET %s: not the JSON expected: %w", where, err)
	}
	return nil
}

// fetchKeys fetches the issuer's JWKS and keeps the keys that can check signatures:
// public, for signing, of a known type, and (when the key says) for an asymmetric
// algorithm that fits it. A set with none of those is an error.
func (o *OAuth) fetchKeys(ctx context.Context) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := o.fetchJSON(ctx, o.jwksURI, &doc); err != nil {
		return nil, fmt.Errorf("fetch the issuer's keys: %w", err)
	}
	set := &keySet{fetched: time.Now()}
	var skipped []string
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if !k.IsPublic() {
			k = k.Public() // a symmetric key has no public half: Valid is then false
		}
		algs := keyAlgorithms(k)
		switch {
		case k.Use != "" && k.Use != "sig":
			skipped = append(skipped, fmt.Sprintf("key %q: use %q", k.KeyID, k.Use))
		case !k.Valid() || len(algs) == 0:
			skipped = append(skipped, fmt.Sprintf("key %q: not a public signing key for an asymmetric algorithm (alg %q)", k.KeyID, k.Algorithm))
		default:
			set.keys = append(set.keys, verifyKey{id: k.KeyID, key: k.Key, algs: algs})
		}
	}
	if len(skipped) > 0 { // encryption keys, for one, are common and harmless
		o.logger.Debug("keys of the issuer's JWKS skipped", "jwks_uri", o.jwksURI, "skipped", strings.Join(skipped, "; "))
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("fetch the issuer's keys: %s has no key that can check a signature", o.jwksURI)
	}
	return set, nil
}

// keyAlgorithms returns the algorithms k may check: its own alg when it names one
// that fits its type, else every asymmetric algorithm of its type.
func keyAlgorithms(k jose.JSONWebKey) []jose.SignatureAlgorithm {
	var fit []jose.SignatureAlgorithm
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < 2048 { // RFC 7518 §3.3
			return nil
		}
		fit = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			fit = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			fit = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			fit = []jose.SignatureAlgorithm{jose.ES512}
		}
	case ed25519.PublicKey:
		fit = []jose.SignatureAlgorithm{jose.EdDSA}
	}
	if k.Algorithm == "" {
		return fit
	}
	if alg := jose.SignatureAlgorithm(k.Algorithm); slices.Contains(fit, alg) {
		return []jose.SignatureAlgorithm{alg}
	}
	return nil
}

// find returns the keys that may check a signature by alg under kid: the key named
// kid, or, for a token that names none, every key for alg.
func (s *keySet) find(kid string, alg jose.SignatureAlgorithm) (found []verifyKey, kidKnown bool) {
	for _, k := range s.keys {
		if kid != "" && k.id != kid {
			continue
		}
		kidKnown = true
		if slices.Contains(k.algs, alg) {
			found = append(found, k)
		}
	}
	return found, kidKnown
}

// keySet returns the keys in force, fetching them again first when they are older
// than JWKSMaxAge and no other request is fetching them already.
func (o *OAuth) keySet(ctx context.Context) *keySet {
	set := o.keys.Load()
	if time.Since(set.fetched) < JWKSMaxAge || !o.fetchMu.TryLock() {
		return set
	}
	defer o.fetchMu.Unlock()
	return o.refreshLocked(ctx, set)
}

// refresh fetches the keys again because a token names a key that seen lacks, and
// returns the set in force after: the one another request fetched meanwhile, or seen
// itself when the last fetch was less than JWKSMinInterval ago or this one failed.
func (o *OAuth) refresh(ctx context.Context, seen *keySet) *keySet {
	o.fetchMu.Lock()
	defer o.fetchMu.Unlock()
	return o.refreshLocked(ctx, seen)
}

func (o *OAuth) refreshLocked(ctx context.Context, seen *keySet) *keySet {
	if now := o.keys.Load(); now != seen {
		return now
	}
	if time.Since(o.lastFetch) < JWKSMinInterval {
		return seen
	}
	o.lastFetch = time.Now()
	// The fetch serves every request waiting for it: one client giving up must not
	// end it. (The client's timeout bounds it.)
	set, err := o.fetchKeys(context.WithoutCancel(ctx))
	if err != nil {
		o.logger.Error("the issuer's keys were not fetched again: the keys in force stay", "err", err)
		return seen
	}
	o.keys.Store(set)
	return set
}

// tokenError is why an access token is refused: the 401's message.
type tokenError string

func (e tokenError) Error() string { return string(e) }

func refuse(format string, args ...any) error { return tokenError(fmt.Sprintf(format, args...)) }

// short quotes a value taken from a token for a message, cut to a sensible length:
// the token is the client's, and so is anything in it.
func short(s string) string {
	const n = 60
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// verify checks an access token and returns whom it names and the scopes it grants.
// Its error, a tokenError, says why a token is refused.
func (o *OAuth) verify(ctx context.Context, raw string) (principal, error) {
	sig, err := jose.ParseSignedCompact(raw, asymmetric)
	if err != nil {
		return principal{}, refuse("the token is not a JWT signed with an asymmetric algorithm: %s", strings.TrimPrefix(err.Error(), "go-jose/go-jose: "))
	}
	h := sig.Signatures[0].Header
	if typ, ok := h.ExtraHeaders[jose.HeaderType]; ok {
		t, _ := typ.(string)
		if t = strings.TrimPrefix(strings.ToLower(t), "application/"); t != "at+jwt" && t != "jwt" {
			return principal{}, refuse("the token's typ is %s, not at+jwt or JWT: it is not an access token", short(fmt.Sprint(typ)))
		}
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	set := o.keySet(ctx)
	keys, kidKnown := set.find(h.KeyID, alg)
	if !kidKnown && h.KeyID != "" {
		keys, kidKnown = o.refresh(ctx, set).find(h.KeyID, alg)
	}
	switch {
	case !kidKnown && h.KeyID != "":
		return principal{}, refuse("the token is signed with a key (kid %s) that the issuer %s does not publish", short(h.KeyID), o.issuer)
	case len(keys) == 0 && h.KeyID != "":
		return principal{}, refuse("the token's alg %s is not one that the issuer's key %s is for", alg, short(h.KeyID))
	case len(keys) == 0:
		return principal{}, refuse("the token names no key (kid), and the issuer %s has none for its alg %s", o.issuer, alg)
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = sig.Verify(k.key); err == nil {
			break
		}
	}
	if err != nil {
		return principal{}, refuse("the token's signature does not verify with the issuer's key")
	}
	var std jwt.Claims
	var claims map[string]any
	if err := json.Unmarshal(payload, &std); err != nil {
		return principal{}, refuse("the token's claims are not valid: %v", err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return principal{}, refuse("the token's claims are not a JSON object: %v", err)
	}
	if std.Expiry == nil {
		return principal{}, refuse("the token has no exp: an access token must expire")
	}
	switch err := std.ValidateWithLeeway(jwt.Expected{Issuer: o.issuer, Time: time.Now()}, TokenLeeway); {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return principal{}, refuse("the token is from the issuer %s, not from %s", short(std.Issuer), o.issuer)
	case errors.Is(err, jwt.ErrExpired):
		return principal{}, refuse("the token expired at %s", std.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return principal{}, refuse("the token is not valid before %s", std.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return principal{}, refuse("the token was issued in the future, at %s", std.IssuedAt.Time().UTC().Format(time.RFC3339))
	case err != nil:
		return principal{}, refuse("the token's claims are not valid: %v", err)
	}
	switch {
	case len(std.Audience) == 0:
		return principal{}, refuse("the token names no audience (aud); it must name %s or %s/mcp", o.resource, o.resource)
	case !o.forThisServer(std.Audience):
		return principal{}, refuse("the token is for the audience %s, not for %s or %s/mcp", short(strings.Join(std.Audience, " ")), o.resource, o.resource)
	}
	name, ok := claims[o.actorClaim].(string)
	name = strings.TrimSpace(name)
	switch {
	case !ok || name == "":
		return principal{}, refuse("the token has no %s claim (a string) to name who makes changes", short(o.actorClaim))
	case len([]rune(name)) > maxActorLen:
		return principal{}, refuse("the token's %s claim is longer than %d characters", short(o.actorClaim), maxActorLen)
	}
	return principal{name: name, scopes: grantedScopes(claims)}, nil
}

// forThisServer reports whether aud names this server: its public URL or its /mcp,
// with or without a trailing slash.
func (o *OAuth) forThisServer(aud jwt.Audience) bool {
	for _, a := range aud {
		if a = strings.TrimSuffix(a, "/"); a == o.resource || a == o.resource+"/mcp" {
			return true
		}
	}
	return false
}

// grantedScopes maps the token's scope (space-separated) and scp (a list, or
// space-separated) claims to the server's scopes: read, write and admin, each also
// as taskhub:read and so on. Others are ignored.
func grantedScopes(claims map[string]any) []string {
	var names []string
	for _, claim := range []string{"scope", "scp"} {
		switch v := claims[claim].(type) {
		case string:
			names = append(names, strings.Fields(v)...)
		case []any:
			for _, s := range v {
				if s, ok := s.(string); ok {
					names = append(names, s)
				}
			}
		}
	}
	var granted []string
	for _, s := range scopes {
		if slices.Contains(names, s) || slices.Contains(names, "taskhub:"+s) {
			granted = append(granted, s)
		}
	}
	return granted
}

// resourceMetadata returns the URL of the protected resource metadata for a request
// to path: the document of /mcp for the MCP endpoints, else the server's.
func (o *OAuth) resourceMetadata(path string) string {
	if path == "/mcp" || strings.HasPrefix(path, "/mcp/") {
		return o.resource + ProtectedResourcePath + "/mcp"
	}
	return o.resource + ProtectedResourcePath
}

// mount serves the protected resource metadata (RFC 9728): the server's, and the
// one of /mcp. Both are public documents that browser-based clients read too, so any
// origin may.
func (o *OAuth) mount(e *echo.Echo) {
	for path, body := range o.documents {
		e.Match([]string{http.MethodGet, http.MethodHead}, path, func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderAccessControlAllowOrigin, "*")
			return c.JSONBlob(http.StatusOK, body)
		})
		e.OPTIONS(path, func(c echo.Context) error {
			h := c.Response().Header()
			h.Set(echo.HeaderAccessControlAllowOrigin, "*")
			h.Set(echo.HeaderAccessControlAllowMethods, "GET, HEAD")
			h.Set(echo.HeaderAccessControlAllowHeaders, "*")
			h.Set(echo.HeaderAccessControlMaxAge, "600")
			return c.NoContent(http.StatusNoContent)
		})
	}
}
