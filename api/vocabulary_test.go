package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"taskhub/api"
	"taskhub/tasks"
)

func strs[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// TestVocabulary checks that GET /api/vocabulary answers package tasks' sets, in their
// orders, and its limits: what the dashboard builds its board and forms from.
func TestVocabulary(t *testing.T) {
	s := newServer(t)
	got := getOK[struct {
		Statuses   []string       `json:"statuses"`
		Priorities []string       `json:"priorities"`
		EventTypes []string       `json:"event_types"`
		Sources    []string       `json:"sources"`
		Limits     map[string]int `json:"limits"`
	}](t, s, "/api/vocabulary")
	for _, tc := range []struct {
		name      string
		got, want []string
	}{
		{"statuses", got.Statuses, strs(tasks.Statuses)},
		{"priorities", got.Priorities, strs(tasks.Priorities)},
		{"event_types", got.EventTypes, strs(tasks.EventTypes)},
		{"sources", got.Sources, strs(tasks.Sources)},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	wantLimits := map[string]int{
		"title":             tasks.MaxTitle,
		"description_bytes": tasks.MaxDescriptionLen,
		"assignee":          tasks.MaxAssignee,
		"project":           tasks.MaxProject,
		"labels":            tasks.MaxLabels,
		"label":             tasks.MaxLabel,
		"depends_on":        tasks.MaxDependsOn,
		"list_limit":        tasks.MaxListLimit,
		"events_limit":      tasks.MaxEventsLimit,
		"text_query":        tasks.MaxTextQuery,
		"note_text":         tasks.MaxNoteText,
		"note_text_bytes":   tasks.MaxNoteTextBytes,
		"notes_per_task":    tasks.MaxNotesPerTask,
	}
	if !maps.Equal(got.Limits, wantLimits) {
		t.Errorf("limits = %v, want %v", got.Limits, wantLimits)
	}

	status, h, b := s.do(t, "HEAD", "/api/vocabulary", nil, nil)
	if status != http.StatusOK || len(b) != 0 {
		t.Errorf("HEAD /api/vocabulary: %d with %d bytes, want 200 and no body", status, len(b))
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("HEAD /api/vocabulary: Content-Type %q, want application/json", ct)
	}

	status, h, b = s.do(t, "GET", "/api/vocabulary?lang=fr", nil, nil)
	wantError(t, status, h, b, http.StatusBadRequest, tasks.EInvalid, "lang")
	status, h, b = s.do(t, "POST", "/api/vocabulary", `{}`, jsonCT)
	wantError(t, status, h, b, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, "")
}

// TestVocabularyScope checks that the vocabulary is read like the other GETs: with
// the read scope, and not without a token.
func TestVocabularyScope(t *testing.T) {
	db := openDB(t)
	writer := sha256.Sum256([]byte("writer-secret"))
	tokens := mustParseTokens(t, `[{"name":"reader","sha256":"`+hexA+`","scopes":["read"]},`+
		`{"name":"writer","sha256":"`+hex.EncodeToString(writer[:])+`","scopes":["write"]}]`)
	ts := httptest.NewServer(api.New(api.Config{
		Service: tasks.NewService(db), Logger: slog.New(slog.DiscardHandler), Auth: api.NewAuth(tokens),
	}))
	t.Cleanup(ts.Close)
	s := &server{ts}
	for _, tc := range []struct {
		name  string
		h     hdr
		want  int
		code  string
		field string
	}{
		{"no token", nil, http.StatusUnauthorized, api.CodeUnauthorized, ""},
		{"write scope only", hdr{"Authorization": "Bearer writer-secret"}, http.StatusForbidden, api.CodeForbidden, ""},
		{"read scope", hdr{"Authorization": "Bearer secret"}, http.StatusOK, "", ""},
	} {
		status, h, b := s.do(t, "GET", "/api/vocabulary", nil, tc.h)
		if tc.want == http.StatusOK {
			wantStatus(t, "GET", "/api/vocabulary ("+tc.name+")", status, tc.want, b)
			continue
		}
		wantError(t, status, h, b, tc.want, tc.code, tc.field)
	}
}
