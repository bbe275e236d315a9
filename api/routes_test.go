package api_test

import (
	"net/http"
	"strings"
	"testing"
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
