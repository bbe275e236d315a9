package broadcaster

import (
	"bufio"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHangupNoticed closes a client's connection: the stream ends, and leaves the
// counts, at once, not at the next keepalive (an hour away here).
func TestHangupNoticed(t *testing.T) {
	h := New(Config{Log: &memLog{}, Vocabulary: vocabulary, Keepalive: time.Hour})
	if err := h.Prime(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(h)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ": connected") {
			break
		}
	}
	if n := h.Stats().ConnectedClients; n != 1 {
		t.Fatalf("%d connected, want 1", n)
	}
	closed := time.Now()
	conn.Close()
	for h.Stats().ConnectedClients != 0 {
		if time.Since(closed) > 5*time.Second {
			t.Fatal("the stream of a client that hung up is still counted after 5s")
		}
		time.Sleep(time.Millisecond) // nothing signals the count: look again
	}
}
