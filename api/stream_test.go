package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// openStream requests path and returns the status and headers of the response, and
// its body unless it is an event stream, which never ends: that is closed unread.
func (s *server) openStream(t *testing.T, method, path string, h hdr) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, resp.Header, nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestStreamBadQuery checks that the stream refuses a query string it cannot read,
// instead of dropping it and with it every filter.
func TestStreamBadQuery(t *testing.T) {
	s := newFullServer(t)
	for _, tc := range []struct{ name, query string }{
		{"semicolon", "types=bogus;x"},
		{"bad escape", "status=%zz"},
		{"over 10,000 parameters", strings.Repeat("types=task_created&", 10_001)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, b := s.openStream(t, "GET", "/events/stream?"+tc.query, nil)
			wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "query")
		})
	}
}
