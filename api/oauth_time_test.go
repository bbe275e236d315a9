package api_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"taskhub/api"
)

// These tests run under testing/synctest: the API is called in the bubble, on its
// clock, and fetches the keys over real HTTP from an issuer that serves outside it.

// bubbleAPI is the API with OAuth for is, built in the calling bubble, with /mcp
// answering the caller's name.
type bubbleAPI struct {
	t testing.TB
	h http.Handler
}

func newBubbleAPI(t testing.TB, is *testIssuer) bubbleAPI {
	t.Helper()
	return bubbleAPI{t, api.New(api.Config{Logger: slog.New(slog.DiscardHandler), OAuth: newOAuth(t, is, ""), MCP: callerEcho})}
}

// call sends POST /mcp with token and returns the status and the body.
func (b bubbleAPI) call(token string) (int, string) {
	req := httptest.NewRequest("POST", "/mcp", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// accepted fails the test unless token is let in.
func (b bubbleAPI) accepted(what, token string) {
	b.t.Helper()
	if status, body := b.call(token); status != http.StatusOK {
		b.t.Errorf("%s: %d %s, want it accepted", what, status, body)
	}
}

// refused fails the test unless token gets a 401 whose message contains want.
func (b bubbleAPI) refused(what, token, want string) {
	b.t.Helper()
	if status, body := b.call(token); status != http.StatusUnauthorized || !strings.Contains(body, want) {
		b.t.Errorf("%s: %d %s, want 401 saying %q", what, status, body, want)
	}
}

func wantFetches(t testing.TB, is *testIssuer, want int64) {
	t.Helper()
	if got := is.fetches.Load(); got != want {
		t.Errorf("the JWKS was fetched %d times, want %d", got, want)
	}
}

// TestOAuthKeyRotation: a token signed with a key the issuer has just added makes the
// server fetch the keys again and accept it; unknown keys make it fetch at most once
// per JWKSMinInterval, however many tokens name them.
func TestOAuthKeyRotation(t *testing.T) {
	old, added, stranger := newRSAKey(t, "old"), newECKey(t, "added"), newECKey(t, "")
	is := newIssuer(t, issuerOptions{}, old)
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleAPI(t, is)
		wantFetches(t, is, 1)
		b.accepted("the old key", old.mint(t, "at+jwt", is.claims("alice", "write")))

		is.publish(old, added)
		fresh := added.mint(t, "at+jwt", is.claims("alice", "write"))
		b.refused("a new key less than JWKSMinInterval after the last fetch", fresh, "does not publish")
		wantFetches(t, is, 1)
		time.Sleep(api.JWKSMinInterval)
		b.accepted("the new key", added.mint(t, "at+jwt", is.claims("alice", "write")))
		wantFetches(t, is, 2)
		b.accepted("the old key after the rotation", old.mint(t, "at+jwt", is.claims("alice", "write")))
		wantFetches(t, is, 2)

		// A flood of unknown kids, at once: one fetch for all of them, then none until
		// JWKSMinInterval has passed.
		flood := func() {
			var wg sync.WaitGroup
			for i := range 50 {
				tok := signingKey{kid: fmt.Sprintf("unknown-%d", i), alg: stranger.alg, key: stranger.key}.mint(t, "at+jwt", is.claims("mallory", "write"))
				wg.Go(func() { b.refused("an unknown kid", tok, "does not publish") })
			}
			wg.Wait()
		}
		time.Sleep(api.JWKSMinInterval)
		flood()
		wantFetches(t, is, 3)
		time.Sleep(api.JWKSMinInterval - time.Second)
		flood()
		wantFetches(t, is, 3)
		time.Sleep(time.Second)
		flood()
		wantFetches(t, is, 4)
		b.accepted("the new key after the floods", added.mint(t, "at+jwt", is.claims("alice", "write")))
	})
}

// TestOAuthKeysExpire: the keys are fetched again once they are JWKSMaxAge old, so a
// key the issuer withdrew stops working; an issuer that cannot be reached then
// leaves the keys in force as they were.
func TestOAuthKeysExpire(t *testing.T) {
	withdrawn, kept := newRSAKey(t, "withdrawn"), newECKey(t, "kept")
	is := newIssuer(t, issuerOptions{}, withdrawn, kept)
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleAPI(t, is)
		is.publish(kept)
		time.Sleep(api.JWKSMaxAge - time.Second)
		b.accepted("the withdrawn key, before the keys are old", withdrawn.mint(t, "at+jwt", is.claims("alice", "write")))
		wantFetches(t, is, 1)
		time.Sleep(time.Second)
		b.refused("the withdrawn key", withdrawn.mint(t, "at+jwt", is.claims("alice", "write")), "does not publish")
		wantFetches(t, is, 2)
		b.accepted("the kept key", kept.mint(t, "at+jwt", is.claims("alice", "write")))

		is.broken.Store(true)
		time.Sleep(api.JWKSMaxAge)
		b.accepted("the kept key while the issuer is down", kept.mint(t, "at+jwt", is.claims("alice", "write")))
		wantFetches(t, is, 3)
		b.accepted("the kept key, again", kept.mint(t, "at+jwt", is.claims("alice", "write")))
		wantFetches(t, is, 3) // JWKSMinInterval holds for failed fetches too
	})
}

// TestOAuthLeeway: exp and nbf are checked with TokenLeeway, to the second.
func TestOAuthLeeway(t *testing.T) {
	key := newRSAKey(t, "k")
	is := newIssuer(t, issuerOptions{}, key)
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleAPI(t, is)
		now := time.Now()
		expiring := key.mint(t, "at+jwt", with(is.claims("alice", "write"), "exp", now.Add(time.Minute).Unix()))
		early := key.mint(t, "at+jwt", with(is.claims("alice", "write"), "nbf", now.Add(api.TokenLeeway+time.Second).Unix()))
		b.accepted("nbf TokenLeeway ahead", key.mint(t, "at+jwt", with(is.claims("alice", "write"), "nbf", now.Add(api.TokenLeeway).Unix())))
		b.refused("nbf more than TokenLeeway ahead", early, "not valid before")
		time.Sleep(time.Second)
		b.accepted("nbf TokenLeeway ahead, a second later", early)

		time.Sleep(time.Minute + api.TokenLeeway - time.Second)
		b.accepted("TokenLeeway after exp", expiring)
		time.Sleep(time.Second)
		b.refused("more than TokenLeeway after exp", expiring, "expired at")
	})
}
