package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taskhub/api"
)

const hexA = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" // sha256("secret")

func TestParseTokens(t *testing.T) {
	for _, tc := range []struct {
		name, data, err string
		n               int
	}{
		{"empty list", `[]`, "", 0},
		{"one", `[{"name":"ci","sha256":"` + hexA + `","scopes":["read","write"]}]`, "", 1},
		{"upper-case hex", `[{"name":"ci","sha256":"` + strings.ToUpper(hexA) + `","scopes":["admin"]}]`, "", 1},
		{"not JSON", `{`, "not a JSON list", 0},
		{"object", `{"name":"ci"}`, "not a JSON list", 0},
		{"null", `null`, "got null", 0},
		{"trailing data", `[] []`, "data after", 0},
		{"unknown field", `[{"name":"ci","token":"x","sha256":"` + hexA + `","scopes":["read"]}]`, "unknown field", 0},
		{"no name", `[{"name":" ","sha256":"` + hexA + `","scopes":["read"]}]`, "name is empty", 0},
		{"short digest", `[{"name":"ci","sha256":"abc","scopes":["read"]}]`, "64 hex digits", 0},
		{"not hex", `[{"name":"ci","sha256":"` + strings.Repeat("z", 64) + `","scopes":["read"]}]`, "not hex", 0},
		{"no scopes", `[{"name":"ci","sha256":"` + hexA + `","scopes":[]}]`, "scopes is empty", 0},
		{"unknown scope", `[{"name":"ci","sha256":"` + hexA + `","scopes":["root"]}]`, `unknown scope "root"`, 0},
		{"name twice", `[{"name":"ci","sha256":"` + hexA + `","scopes":["read"]},{"name":"ci","sha256":"` + strings.Repeat("0", 64) + `","scopes":["read"]}]`, "name given twice", 0},
		{"digest twice", `[{"name":"a","sha256":"` + hexA + `","scopes":["read"]},{"name":"b","sha256":"` + hexA + `","scopes":["read"]}]`, "same sha256", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := api.ParseTokens([]byte(tc.data))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err == nil && got.Len() != tc.n:
				t.Fatalf("%d tokens, want %d", got.Len(), tc.n)
			}
		})
	}
}

// mustParseTokens parses a tokens file's JSON that the test knows to be good.
func mustParseTokens(t *testing.T, s string) *api.Tokens {
	t.Helper()
	tok, err := api.ParseTokens([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRevoked(t *testing.T) {
	zero := strings.Repeat("0", 64)
	old := mustParseTokens(t, `[{"name":"a","sha256":"`+hexA+`","scopes":["read"]},{"name":"b","sha256":"`+zero+`","scopes":["read"]}]`)
	for _, tc := range []struct {
		name, next string
		revoked    bool
	}{
		{"unchanged", `[{"name":"a","sha256":"` + hexA + `","scopes":["read","write"]}]`, false},
		{"gone", `[{"name":"b","sha256":"` + zero + `","scopes":["read"]}]`, true},
		{"lost read", `[{"name":"a","sha256":"` + hexA + `","scopes":["write"]}]`, true},
		{"new secret", `[{"name":"a","sha256":"` + strings.Repeat("1", 64) + `","scopes":["read"]}]`, true},
	} {
		if got := mustParseTokens(t, tc.next).Revoked(old, "a"); got != tc.revoked {
			t.Errorf("%s: revoked %v, want %v", tc.name, got, tc.revoked)
		}
	}
	if mustParseTokens(t, `[]`).Revoked(old, "alice@example.test") {
		t.Error("a name that was no token of the old set (an OAuth token's actor) was revoked")
	}
}

// watchTokens runs a TokensWatcher on the file at path, and sends the number of
// tokens of every new set it swaps in. When the test ends it stops the watcher and
// waits for Run to return.
func watchTokens(t *testing.T, path string) <-chan int {
	t.Helper()
	tokens, err := api.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	swaps := make(chan int, 10)
	w, err := api.NewTokensWatcher(path, api.NewAuth(tokens), slog.New(slog.DiscardHandler), func(old, next *api.Tokens) { swaps <- next.Len() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return swaps
}

// TestTokensWatcher: the file is reloaded when written in place, when replaced by a
// rename, and when it comes back after being removed; a broken one is skipped; Run
// returns when its context ends.
func TestTokensWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	list := func(n int) string {
		var entries []string
		for i := range n {
			entries = append(entries, `{"name":"t`+string(rune('a'+i))+`","sha256":"`+strings.Repeat(string(rune('0'+i)), 64)+`","scopes":["read"]}`)
		}
		return "[" + strings.Join(entries, ",") + "]"
	}
	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(list(1))
	swaps := watchTokens(t, path)
	want := func(n int) {
		t.Helper()
		select {
		case got := <-swaps:
			if got != n {
				t.Fatalf("reloaded %d tokens, want %d", got, n)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no reload to %d tokens", n)
		}
	}
	write(list(2)) // in place
	want(2)
	if err := os.WriteFile(path+".new", []byte(list(3)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	want(3)
	write(`[{"name":"x"}]`)                                             // broken: no swap
	os.WriteFile(filepath.Join(dir, "other.json"), []byte("[]"), 0o600) // another file: no swap
	select {
	case n := <-swaps:
		t.Fatalf("swapped to %d tokens", n)
	case <-time.After(300 * time.Millisecond):
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write(list(1))
	want(1)
}

// TestTrack: a stream's request remembers the token it was let in with; a reload
// that revokes that token ends the stream, and a stream that registers after the
// revocation (it was being set up meanwhile) is refused.
func TestTrack(t *testing.T) {
	auth := api.NewAuth(mustParseTokens(t, `[{"name":"a","sha256":"`+hexA+`","scopes":["read"]}]`))
	contexts := make(chan context.Context, 1)
	srv := httptest.NewServer(api.New(api.Config{
		Logger: slog.New(slog.DiscardHandler), Auth: auth,
		Stream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { contexts <- r.Context() }),
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events/stream?access_token=secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx := <-contexts
	ended := 0
	untrack, ok := auth.Track(ctx, func() { ended++ })
	if !ok {
		t.Fatal("refused before any reload")
	}
	if _, n := auth.Swap(mustParseTokens(t, `[{"name":"a","sha256":"`+hexA+`","scopes":["read","write"]}]`)); n != 0 || ended != 0 {
		t.Errorf("a reload that keeps the token ended %d streams", n)
	}
	if _, n := auth.Swap(mustParseTokens(t, `[{"name":"a","sha256":"`+strings.Repeat("1", 64)+`","scopes":["read"]}]`)); n != 1 || ended != 1 {
		t.Errorf("a new secret for the name ended %d streams (end called %d times), want 1", n, ended)
	}
	untrack()
	if _, ok := auth.Track(ctx, func() {}); ok {
		t.Error("a stream of the revoked token was let in after the revocation")
	}
	if _, ok := auth.Track(context.Background(), func() {}); !ok {
		t.Error("a stream without a static token was refused")
	}
}

// TestTokensWatcherSymlink: a tokens file mounted the way Kubernetes mounts a secret
// (tokens.json -> ..data/tokens.json, updated by swapping the ..data link) is reloaded,
// although no event ever names tokens.json itself.
func TestTokensWatcherSymlink(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "tokens.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	one := `[{"name":"a","sha256":"` + hexA + `","scopes":["read"]}]`
	two := `[{"name":"a","sha256":"` + hexA + `","scopes":["read"]},{"name":"b","sha256":"` + strings.Repeat("1", 64) + `","scopes":["read"]}]`
	version("v1", one)
	for _, link := range [][2]string{{"v1", "..data"}, {"..data/tokens.json", "tokens.json"}} {
		if err := os.Symlink(link[0], filepath.Join(dir, link[1])); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "tokens.json")
	swaps := watchTokens(t, path)

	version("v2", two) // then swap the link, as the kubelet does
	if err := os.Symlink("v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case n := <-swaps:
			if n == 2 {
				return
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the new secret's tokens were not loaded")
		}
	}
}

// TestStreamHeadToken: HEAD on the stream takes the token as GET does, also in the
// query, where a browser's EventSource puts it.
func TestStreamHeadToken(t *testing.T) {
	auth := api.NewAuth(mustParseTokens(t, `[{"name":"a","sha256":"`+hexA+`","scopes":["read"]}]`))
	srv := httptest.NewServer(api.New(api.Config{
		Logger: slog.New(slog.DiscardHandler), Auth: auth,
		Stream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
	}))
	defer srv.Close()
	for query, want := range map[string]int{"?access_token=secret": http.StatusOK, "": http.StatusUnauthorized} {
		resp, err := http.Head(srv.URL + "/events/stream" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("HEAD /events/stream%s: %d, want %d", query, resp.StatusCode, want)
		}
	}
}
