package api_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"taskhub/api"
)

// TestUnknownPaths checks that a path no route serves is a JSON 404 whatever the
// method, beside the dashboard, which serves GET of its own files: a client probing
// for an endpoint (OAuth's dynamic client registration, say) must read "no such
// endpoint", not "wrong method" or the file server's text.
func TestUnknownPaths(t *testing.T) {
	s := newFullServer(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/register"},
		{"GET", "/nope"},
		{"GET", "/apiary"},
		{"GET", "/api/nope"},
		{"GET", "/.well-known/oauth-authorization-server"},
		{"POST", "/register"},
		{"POST", "/token"},
		{"POST", "/api/nope"},
		{"POST", "/.well-known/oauth-authorization-server"},
		{"PUT", "/nope"},
		{"PATCH", "/nope"},
		{"DELETE", "/nope"},
		{"OPTIONS", "/register"},
		{"POST", "/api/tasks/1/comments"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, h, b := s.do(t, tc.method, tc.path, nil, nil)
			wantError(t, status, h, b, http.StatusNotFound, "not_found", "")
			if msg := errorMessage(t, b); !strings.Contains(msg, tc.path) {
				t.Errorf("message %q does not name the path", msg)
			}
			if allow := h.Get("Allow"); allow != "" {
				t.Errorf("Allow = %q on a path that takes no method", allow)
			}
		})
	}
}

// TestKnownPathsWrongMethod checks that a path that exists keeps its 405 and Allow,
// the dashboard's files included.
func TestKnownPathsWrongMethod(t *testing.T) {
	s := newFullServer(t)
	task := s.createTitled(t, "known")
	for _, tc := range []struct {
		method, path string
		allow        []string
	}{
		{"PUT", taskPath(task.ID), []string{"GET", "PATCH", "DELETE"}},
		{"POST", "/healthz", []string{"GET"}},
		{"DELETE", "/events/stream", []string{"GET", "HEAD"}},
		{"POST", "/", []string{"GET", "HEAD"}},
		{"DELETE", "/app.js", []string{"GET", "HEAD"}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, h, b := s.do(t, tc.method, tc.path, nil, nil)
			wantError(t, status, h, b, http.StatusMethodNotAllowed, "method_not_allowed", "")
			for _, m := range tc.allow {
				if !strings.Contains(h.Get("Allow"), m) {
					t.Errorf("Allow = %q, want it to list %s", h.Get("Allow"), m)
				}
			}
		})
	}
}

// TestDashboardFiles checks that the dashboard's own files are served as they are.
func TestDashboardFiles(t *testing.T) {
	s := newFullServer(t)
	for _, tc := range []struct{ method, path, contentType string }{
		{"GET", "/", "text/html"},
		{"HEAD", "/", "text/html"},
		{"GET", "/app.js", "text/javascript"},
		{"GET", "/app.css", "text/css"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, h, b := s.do(t, tc.method, tc.path, nil, nil)
			wantStatus(t, tc.method, tc.path, status, http.StatusOK, b)
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type = %q, want %s", ct, tc.contentType)
			}
			if (tc.method == "GET") == (len(b) == 0) {
				t.Errorf("%d bytes of body", len(b))
			}
		})
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.1:8080", true},
		{"127.1.2.3:8080", true},
		{"::1", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"localhost", true},
		{"LocalHost:8080", true},
		{"", false},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"192.168.1.2", false},
		{"localhost.example:8080", false},
		{"127.0.0.1.nip.io", false},
	} {
		if got := api.IsLoopbackHost(tc.host); got != tc.want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

// TestLoopbackHostOnly checks that such a server answers only requests naming a
// loopback host, whatever their port: a page that rebinds its name to 127.0.0.1 gets
// a 403.
func TestLoopbackHostOnly(t *testing.T) {
	ts := httptest.NewServer(api.New(api.Config{Logger: slog.New(slog.DiscardHandler), LoopbackHostOnly: true}))
	defer ts.Close()
	for host, want := range map[string]int{
		"127.0.0.1:8080": http.StatusOK, "[::1]:8080": http.StatusOK, "LOCALHOST": http.StatusOK,
		"evil.example:8080": http.StatusForbidden, "evil.example": http.StatusForbidden,
	} {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: status %d, want %d", host, resp.StatusCode, want)
		}
	}
}
