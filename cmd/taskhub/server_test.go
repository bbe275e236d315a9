package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

// holdPort keeps addr taken for the rest of the test: by this test, unless another
// process already holds it.
func holdPort(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if addrInUse(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// serveCLI runs `taskhub serve` with args in this process, as main would, logging into
// log. It returns the URL of the listening line, or "" with the exit status if serve
// ended without one; otherwise serve stops when the test ends, and must exit 0.
func serveCLI(t *testing.T, log io.Writer, args ...string) (url string, code int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"serve"}, args...), w, log)
		w.Close()
		done <- code
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cancel()
		return "", <-done
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
	})
	url, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "taskhub listening on ")
	if !ok {
		t.Fatalf("listening line %q", line)
	}
	return url, 0
}

// TestDefaultPortTaken: without --addr or TASKHUB_ADDR, serve beside a server that
// holds 8080 listens on the next free port, and says so.
func TestDefaultPortTaken(t *testing.T) {
	t.Setenv("TASKHUB_ADDR", "")
	if err := os.Unsetenv("TASKHUB_ADDR"); err != nil {
		t.Fatal(err)
	}
	holdPort(t, "127.0.0.1:8080")
	log := newSyncBuffer()
	base, code := serveCLI(t, log, "--db", t.TempDir()+"/taskhub.db")
	if base == "" {
		t.Fatalf("serve exited %d:\n%s", code, log.String())
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if port, _ := strconv.Atoi(u.Port()); u.Hostname() != "127.0.0.1" || port <= 8080 || port > 8099 {
		t.Errorf("listening on %s, want 127.0.0.1 and a port of 8081-8099", base)
	}
	if want := "addr=" + u.Host; !strings.Contains(log.String(), "the default port is in use") || !strings.Contains(log.String(), want) {
		t.Errorf("the log does not say the default port is in use and %s is used instead:\n%s", want, log.String())
	}
	call(t, "GET", base+"/healthz", "", 200, nil)
}

// TestGivenAddrTaken: an address given by flag or environment is the one to use, even
// when it is the default's; taken, serve fails and says how to get a free port. So
// does a default whose every port is taken.
func TestGivenAddrTaken(t *testing.T) {
	for port := 8080; port <= 8099; port++ {
		holdPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	}
	db := t.TempDir() + "/taskhub.db"
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"flag", "", []string{"--addr", "127.0.0.1:8080"}},
		{"environment", "127.0.0.1:8099", nil},
		{"default", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TASKHUB_ADDR", tc.env)
			if tc.env == "" {
				if err := os.Unsetenv("TASKHUB_ADDR"); err != nil {
					t.Fatal(err)
				}
			}
			log := newSyncBuffer()
			url, code := serveCLI(t, log, append([]string{"--db", db}, tc.args...)...)
			if url != "" || code != 1 || !strings.Contains(log.String(), "--addr 127.0.0.1:0") {
				t.Errorf("listening on %q, exit %d; want exit 1 and a hint at --addr 127.0.0.1:0 in:\n%s", url, code, log.String())
			}
		})
	}
}

// TestShutdownEndsSlowRequests: a client trickling its request body holds a stopping
// server for the shutdown grace at most; then its connection is closed and Close
// succeeds (serve exits 0). The change acknowledged before is kept.
func TestShutdownEndsSlowRequests(t *testing.T) {
	cfg := testConfig(t, DefaultConfig())
	cfg.ShutdownGrace = 200 * time.Millisecond
	s := runServer(t, cfg)
	id := createTask(t, s.URL(), `{"title":"acknowledged"}`)

	conn, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/tasks HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", s.ln.Addr())
	r := bufio.NewReader(conn)
	// net/http says 100 Continue when the handler starts reading the body.
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("reading 100 Continue: %q, %v", line, err)
	}
	if _, err := io.WriteString(conn, `{"title": "never fin`); err != nil {
		t.Fatal(err)
	}

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits 10s after it began, with a grace of 200ms")
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, r); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the slow client's connection is still open")
	}

	store, err := sqlite.Open(context.Background(), cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if task, err := tasks.NewService(store).Get(context.Background(), id); err != nil || task.Title != "acknowledged" {
		t.Errorf("after shutdown: %+v, %v", task, err)
	}
	if n, err := store.LastSeq(context.Background()); err != nil || n != 1 {
		t.Errorf("the log ends at %d (%v), want 1: the slow request made a change", n, err)
	}
}

// TestHeaderTooLarge: a request whose header is over 1 MiB gets 431 in the error shape
// of every other response, not net/http's text; one just under the limit is served.
func TestHeaderTooLarge(t *testing.T) {
	url, _ := startServer(t)
	get := func(size int) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Filler", strings.Repeat("x", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	if resp, body := get(1<<20 - 1024); resp.StatusCode != http.StatusOK {
		t.Errorf("a header just under 1 MiB: %d %s", resp.StatusCode, body)
	}
	resp, body := get(1<<20 + 16<<10)
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge ||
		resp.Header.Get("Content-Type") != "application/json" || e.Error.Code != "invalid_argument" || !strings.Contains(e.Error.Message, "1 MiB") {
		t.Errorf("a header over 1 MiB: %d %v %s; want 431 and a JSON error", resp.StatusCode, resp.Header, body)
	}
}
