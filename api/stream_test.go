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

// TestStreamHead checks that HEAD /events/stream answers as GET would, with the same
// checks and the stream's headers, but opens no stream and sends no body.
func TestStreamHead(t *testing.T) {
	s := newFullServer(t)
	for _, tc := range []struct {
		name, query string
		h           hdr
		status      int
	}{
		{"no filter", "", nil, http.StatusOK},
		{"filters", "types=task_created,task_updated&status=todo&batch=250ms", nil, http.StatusOK},
		{"replay", "", hdr{"Last-Event-ID": "0"}, http.StatusOK},
		{"unknown type", "types=task_moved", nil, http.StatusBadRequest},
		{"unknown parameter", "colour=red", nil, http.StatusBadRequest},
		{"query that does not parse", "types=bogus;x", nil, http.StatusBadRequest},
		{"bad Last-Event-ID", "", hdr{"Last-Event-ID": "x"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/events/stream?" + tc.query
			// The GET streams of earlier cases leave the count as the hub notices their
			// clients went, which may be meanwhile: only a rise is HEAD's doing.
			before := s.connectedClients(t)
			status, h, b := s.openStream(t, "HEAD", path, tc.h)
			if status != tc.status || len(b) != 0 {
				t.Fatalf("HEAD %s: status %d, body %q; want %d and no body", path, status, b, tc.status)
			}
			if n := s.connectedClients(t); n > before {
				t.Errorf("HEAD %s opened a stream: %d connected clients, were %d", path, n, before)
			}
			getStatus, gh, _ := s.openStream(t, "GET", path, tc.h)
			if getStatus != status {
				t.Errorf("HEAD %s: status %d, GET's is %d", path, status, getStatus)
			}
			if status != http.StatusOK {
				return
			}
			for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering"} {
				if got, want := h.Get(k), gh.Get(k); got != want || want == "" {
					t.Errorf("HEAD %s: %s = %q, want GET's %q", path, k, got, want)
				}
			}
		})
	}
}

// connectedClients returns the number of open streams /events/debug counts.
func (s *server) connectedClients(t *testing.T) int {
	t.Helper()
	return getOK[struct {
		ConnectedClients int `json:"connected_clients"`
	}](t, s, "/events/debug").ConnectedClients
}

// TestStreamRepeatedList checks that the stream, like the REST API, takes a list
// parameter given twice as one comma list, and refuses a single-valued one twice.
func TestStreamRepeatedList(t *testing.T) {
	s := newFullServer(t)
	status, _, b := s.openStream(t, "GET", "/events/stream?status=todo&status=done", nil)
	wantStatus(t, "GET", "/events/stream?status=todo&status=done", status, http.StatusOK, b)
	status, h, b := s.openStream(t, "GET", "/events/stream?batch=1s&batch=2s", nil)
	wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "batch")
	status, h, b = s.do(t, "GET", "/api/tasks?label=a&label=b", nil, nil)
	wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "label")
}
