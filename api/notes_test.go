package api_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"
)

// apiNote is a note as the contract (§9) puts it on the wire.
type apiNote struct {
	ID     int64  `json:"id"`
	TaskID int64  `json:"task_id"`
	Author string `json:"author"`
	Time   string `json:"time"`
	Text   string `json:"text"`
}

type notePage struct {
	Notes      []apiNote `json:"notes"`
	NextCursor string    `json:"next_cursor"`
}

func notesPath(id int64) string { return taskPath(id) + "/notes" }

// addNote posts a note with text to the task with id, failing the test unless it is
// 201, and returns it.
func (s *server) addNote(t testing.TB, id int64, text string) apiNote {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	status, _, b := s.do(t, "POST", notesPath(id), body, jsonCT)
	wantStatus(t, "POST", notesPath(id), status, http.StatusCreated, b)
	return decode[apiNote](t, b)
}

// noteCount returns how many notes the task with id has.
func (s *server) noteCount(t testing.TB, id int64) int {
	t.Helper()
	return len(getOK[notePage](t, s, notesPath(id)+"?limit=500").Notes)
}

func members(t testing.TB, b []byte) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(decode[map[string]json.RawMessage](t, b)))
}

func TestNotes(t *testing.T) {
	s := newServer(t)
	task := s.create(t, `{"title": "noted", "project": "p"}`)
	before := s.lastSeq(t)

	status, h, b := s.do(t, "POST", notesPath(task.ID), `{"text": "  found the cause\n"}`, jsonCT)
	wantStatus(t, "POST", notesPath(task.ID), status, http.StatusCreated, b)
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if loc := h.Get("Location"); loc != "" {
		t.Errorf("Location = %q: a note has no URL of its own", loc)
	}
	if got, want := members(t, b), []string{"author", "id", "task_id", "text", "time"}; !slices.Equal(got, want) {
		t.Errorf("note members %v, want %v", got, want)
	}
	first := decode[apiNote](t, b)
	if first.ID < 1 || first.TaskID != task.ID || first.Author != "anonymous" || first.Text != "found the cause" || !timeFormat.MatchString(first.Time) {
		t.Errorf("added %+v", first)
	}
	second := s.addNote(t, task.ID, "second")
	third := s.addNote(t, task.ID, "third")

	status, _, b = s.do(t, "GET", notesPath(task.ID), nil, nil)
	wantStatus(t, "GET", notesPath(task.ID), status, http.StatusOK, b)
	if got, want := members(t, b), []string{"next_cursor", "notes"}; !slices.Equal(got, want) {
		t.Errorf("page members %v, want %v", got, want)
	}
	if page := decode[notePage](t, b); !slices.Equal(page.Notes, []apiNote{first, second, third}) || page.NextCursor != "" {
		t.Errorf("notes %+v, want the three, oldest first, and no cursor", page)
	}
	page := getOK[notePage](t, s, notesPath(task.ID)+"?limit=2")
	if !slices.Equal(page.Notes, []apiNote{first, second}) || page.NextCursor == "" {
		t.Fatalf("first page of 2: %+v", page)
	}
	page = getOK[notePage](t, s, notesPath(task.ID)+"?limit=2&cursor="+page.NextCursor)
	if !slices.Equal(page.Notes, []apiNote{third}) || page.NextCursor != "" {
		t.Errorf("second page of 2: %+v", page)
	}
	if status, _, b := s.do(t, "HEAD", notesPath(task.ID), nil, nil); status != http.StatusOK || len(b) != 0 {
		t.Errorf("HEAD: %d with %d bytes, want 200 and no body", status, len(b))
	}

	// One event a note, with the note and the task as it is, which the note left at
	// its version: If-Match on it still holds.
	events := s.eventsAfter(t, before)
	if len(events) != 3 {
		t.Fatalf("%d events after three notes, want 3", len(events))
	}
	_, _, raw := s.do(t, "GET", fmt.Sprintf("/api/events?after=%d&limit=1", before), nil, nil)
	e := decode[struct {
		Events []struct {
			Type   string  `json:"type"`
			TaskID int64   `json:"task_id"`
			Source string  `json:"source"`
			Actor  string  `json:"actor"`
			Task   apiTask `json:"task"`
			Note   apiNote `json:"note"`
		} `json:"events"`
	}](t, raw).Events[0]
	if e.Type != "task_note_added" || e.TaskID != task.ID || e.Source != "rest_api" || e.Actor != "anonymous" || e.Note != first || e.Task.Version != 1 {
		t.Errorf("the first note's event: %s", raw)
	}
	status, _, b = s.do(t, "PATCH", taskPath(task.ID), `{"title": "renamed"}`, patchCT(etag(task.Version)))
	wantStatus(t, "PATCH", taskPath(task.ID), status, http.StatusOK, b)

	// The notes go with their task, and its event says how many.
	status, _, b = s.do(t, "DELETE", taskPath(task.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(task.ID), status, http.StatusNoContent, b)
	status, h, b = s.do(t, "GET", notesPath(task.ID), nil, nil)
	wantError(t, status, h, b, http.StatusNotFound, "not_found", "")
	history := s.taskEvents(t, task.ID)
	_, _, raw = s.do(t, "GET", fmt.Sprintf("/api/events?after=%d", s.lastSeq(t)-1), nil, nil)
	if history[len(history)-1].Type != "task_deleted" || !strings.Contains(string(raw), `"notes_deleted":3`) {
		t.Errorf("the delete's event: %s, want notes_deleted 3", raw)
	}
}

// TestNotesBadInput checks that every kind of bad request is the error shape naming
// what is wrong, and adds no note and no event.
func TestNotesBadInput(t *testing.T) {
	s := newServer(t)
	task := s.createTitled(t, "noted")
	s.addNote(t, task.ID, "one")
	path := notesPath(task.ID)
	big, _ := json.Marshal(map[string]string{"text": strings.Repeat("x", 100<<10)})
	for _, tc := range []struct {
		name, method, path string
		body               any
		h                  hdr
		status             int
		code, field        string
	}{
		{"100 KiB note", "POST", path, big, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"empty text", "POST", path, `{"text": ""}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"blank text", "POST", path, `{"text": " \n\t "}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"NUL", "POST", path, `{"text": "a\u0000b"}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"no text", "POST", path, `{}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"null text", "POST", path, `{"text": null}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"text a number", "POST", path, `{"text": 5}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"text twice", "POST", path, `{"text": "a", "text": "b"}`, jsonCT, http.StatusBadRequest, "invalid_argument", "text"},
		{"unknown field", "POST", path, `{"text": "a", "author": "mallory"}`, jsonCT, http.StatusBadRequest, "invalid_argument", "author"},
		{"not an object", "POST", path, `["a"]`, jsonCT, http.StatusBadRequest, "invalid_argument", ""},
		{"malformed", "POST", path, `{"text": "a"`, jsonCT, http.StatusBadRequest, "invalid_argument", ""},
		{"not JSON", "POST", path, `text=a`, hdr{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, "unsupported_media_type", ""},
		{"over 1 MiB", "POST", path, `{"text": "` + strings.Repeat("x", 1<<20) + `"}`, jsonCT, http.StatusRequestEntityTooLarge, "payload_too_large", ""},
		{"query parameter", "POST", path + "?limit=1", `{"text": "a"}`, jsonCT, http.StatusBadRequest, "invalid_argument", "limit"},
		{"unknown task", "POST", notesPath(task.ID + 1), `{"text": "a"}`, jsonCT, http.StatusNotFound, "not_found", ""},
		{"bad id", "POST", "/api/tasks/01/notes", `{"text": "a"}`, jsonCT, http.StatusBadRequest, "invalid_argument", "id"},
		{"list: limit 0", "GET", path + "?limit=0", nil, nil, http.StatusBadRequest, "invalid_argument", "limit"},
		{"list: limit 501", "GET", path + "?limit=501", nil, nil, http.StatusBadRequest, "invalid_argument", "limit"},
		{"list: limit not a number", "GET", path + "?limit=ten", nil, nil, http.StatusBadRequest, "invalid_argument", "limit"},
		{"list: bad cursor", "GET", path + "?cursor=bogus", nil, nil, http.StatusBadRequest, "invalid_argument", "cursor"},
		{"list: unknown parameter", "GET", path + "?after=1", nil, nil, http.StatusBadRequest, "invalid_argument", "after"},
		{"list: unknown task", "GET", notesPath(task.ID + 1), nil, nil, http.StatusNotFound, "not_found", ""},
		{"list: bad id", "GET", "/api/tasks/x/notes", nil, nil, http.StatusBadRequest, "invalid_argument", "id"},
		{"wrong method", "DELETE", path, nil, nil, http.StatusMethodNotAllowed, "method_not_allowed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, notes := s.state(t, task.ID), s.noteCount(t, task.ID)
			status, h, b := s.do(t, tc.method, tc.path, tc.body, tc.h)
			wantError(t, status, h, b, tc.status, tc.code, tc.field)
			s.wantUnchanged(t, before)
			if now := s.noteCount(t, task.ID); now != notes {
				t.Errorf("%d notes after a refused request, were %d", now, notes)
			}
		})
	}
}

// TestNotesOnTheStream checks that the stream filters task_note_added events like the
// others, on the values of the note's task.
func TestNotesOnTheStream(t *testing.T) {
	s := newFullServer(t)
	inP := s.create(t, `{"title": "in p", "project": "p", "assignee": "alice"}`)
	elsewhere := s.create(t, `{"title": "elsewhere", "project": "q", "assignee": "alice"}`)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/events/stream?types=task_note_added&project=p&assignee=alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", fmt.Sprint(s.lastSeq(t)))
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s.patch(t, inP.ID, `{"title": "an update, not a note"}`)
	s.addNote(t, elsewhere.ID, "not in p")
	first := s.addNote(t, inP.ID, "in p")
	last := s.addNote(t, inP.ID, "in p, again")

	var got []apiNote
	lines := bufio.NewScanner(resp.Body)
	for (len(got) == 0 || got[len(got)-1].ID != last.ID) && lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			got = append(got, decode[struct {
				Note apiNote `json:"note"`
			}](t, []byte(data)).Note)
		}
	}
	if !slices.Equal(got, []apiNote{first, last}) {
		t.Errorf("the stream carried notes %+v (%v), want only those on task %d: %+v", got, lines.Err(), inP.ID, []apiNote{first, last})
	}
}

// TestNotesAuthor checks that a note's author is the token's name, and that reading
// notes takes the read scope and adding one the write scope.
func TestNotesAuthor(t *testing.T) {
	db := openDB(t)
	writer := sha256.Sum256([]byte("writer-secret"))
	tokens := mustParseTokens(t, `[{"name":"reader","sha256":"`+hexA+`","scopes":["read"]},`+
		`{"name":"ci-bot","sha256":"`+hex.EncodeToString(writer[:])+`","scopes":["read","write"]}]`)
	ts := httptest.NewServer(api.New(api.Config{
		Service: tasks.NewService(db), Logger: slog.New(slog.DiscardHandler), Auth: api.NewAuth(tokens),
	}))
	t.Cleanup(ts.Close)
	s := &server{ts}
	bot, reader := hdr{"Authorization": "Bearer writer-secret", "Content-Type": "application/json"}, hdr{"Authorization": "Bearer secret", "Content-Type": "application/json"}
	status, _, b := s.do(t, "POST", "/api/tasks", `{"title": "t"}`, bot)
	wantStatus(t, "POST", "/api/tasks", status, http.StatusCreated, b)
	task := decode[apiTask](t, b)

	status, _, b = s.do(t, "POST", notesPath(task.ID), `{"text": "by the bot"}`, bot)
	wantStatus(t, "POST", notesPath(task.ID), status, http.StatusCreated, b)
	if n := decode[apiNote](t, b); n.Author != "ci-bot" {
		t.Errorf("author %q, want the token's name ci-bot", n.Author)
	}
	status, h, b := s.do(t, "POST", notesPath(task.ID), `{"text": "by the reader"}`, reader)
	wantError(t, status, h, b, http.StatusForbidden, api.CodeForbidden, "")
	status, _, b = s.do(t, "GET", notesPath(task.ID), nil, reader)
	wantStatus(t, "GET", notesPath(task.ID), status, http.StatusOK, b)
	if page := decode[notePage](t, b); len(page.Notes) != 1 || page.Notes[0].Text != "by the bot" {
		t.Errorf("the reader sees %+v, want the bot's one note", page)
	}
	status, h, b = s.do(t, "GET", notesPath(task.ID), nil, nil)
	wantError(t, status, h, b, http.StatusUnauthorized, api.CodeUnauthorized, "")
}
