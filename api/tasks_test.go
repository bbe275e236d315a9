package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// timeFormat is the contract's timestamp: UTC RFC 3339 with fractional seconds (the
// server always writes six digits).
var timeFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestHealthz(t *testing.T) {
	s := newServer(t)
	status, h, b := s.do(t, "GET", "/healthz", nil, nil)
	wantStatus(t, "GET", "/healthz", status, http.StatusOK, b)
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got, want := decode[map[string]string](t, b), map[string]string{"status": "ok"}; !maps.Equal(got, want) {
		t.Errorf("body = %v, want %v", got, want)
	}
}

func TestCreateTask(t *testing.T) {
	s := newServer(t)
	dep1 := s.createTitled(t, "dependency 1")
	dep2 := s.createTitled(t, "dependency 2")
	parent := s.createTitled(t, "parent")

	body := fmt.Sprintf(`{"title": "  Write docs  ", "description": "all of them", "status": "in_progress",
		"priority": "high", "assignee": " alice ", "project": "site", "labels": ["docs", " b ", "docs", "a"],
		"parent_id": %d, "depends_on": [%d, %d, %d], "due_at": "2026-11-21T07:00:00.1234567+02:00"}`,
		parent.ID, dep2.ID, dep1.ID, dep2.ID)
	status, h, b := s.do(t, "POST", "/api/tasks", body, jsonCT)
	wantStatus(t, "POST", "/api/tasks", status, http.StatusCreated, b)
	got := decode[apiTask](t, b)

	if loc, want := h.Get("Location"), taskPath(got.ID); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	if tag, want := h.Get("ETag"), `"v1"`; tag != want {
		t.Errorf("ETag = %q, want %q", tag, want)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got.ID <= parent.ID {
		t.Errorf("id = %d, want above the previous task's %d", got.ID, parent.ID)
	}
	dueAt := "2026-11-21T05:00:00.123456Z" // UTC, to the microsecond
	want := apiTask{
		ID: got.ID, Title: "Write docs", Description: "all of them", Status: "in_progress",
		Priority: "high", Assignee: "alice", Project: "site", Labels: []string{"a", "b", "docs"},
		ParentID: &parent.ID, DependsOn: []int64{dep1.ID, dep2.ID}, DueAt: &dueAt, Version: 1,
		CreatedAt: got.CreatedAt, UpdatedAt: got.CreatedAt, CreatedBy: "anonymous", UpdatedBy: "anonymous",
	}
	if diff := taskDiff(got, want); diff != "" {
		t.Errorf("created task differs: %s", diff)
	}
	if !timeFormat.MatchString(got.CreatedAt) {
		t.Errorf("created_at = %q, want UTC RFC 3339 with six fractional digits", got.CreatedAt)
	}

	// The Location is the task, and GET answers the same bytes as the POST did.
	status, h, b2 := s.do(t, "GET", h.Get("Location"), nil, nil)
	wantStatus(t, "GET", "Location", status, http.StatusOK, b2)
	if tag, want := h.Get("ETag"), `"v1"`; tag != want {
		t.Errorf("GET ETag = %q, want %q", tag, want)
	}
	if !bytes.Equal(b2, b) {
		t.Errorf("GET body differs from POST body:\nGET  %s\nPOST %s", b2, b)
	}
}

func TestCreateTaskDefaults(t *testing.T) {
	s := newServer(t)
	status, _, b := s.do(t, "POST", "/api/tasks", `{"title": "x"}`, jsonCT)
	wantStatus(t, "POST", "/api/tasks", status, http.StatusCreated, b)

	// Every field of §2 is present, with its JSON type; optional ones are empty.
	raw := decode[map[string]json.RawMessage](t, b)
	wantRaw := map[string]string{
		"title": `"x"`, "description": `""`, "status": `"todo"`, "priority": `"medium"`,
		"assignee": `""`, "project": `""`, "labels": `[]`, "parent_id": `null`, "depends_on": `[]`,
		"due_at": `null`, "version": `1`, "created_by": `"anonymous"`, "updated_by": `"anonymous"`,
	}
	for name, want := range wantRaw {
		if got := string(raw[name]); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	for _, name := range []string{"id", "created_at", "updated_at"} {
		if _, ok := raw[name]; !ok {
			t.Errorf("field %s is missing", name)
		}
	}
	task := decode[apiTask](t, b)
	if task.ID < 1 {
		t.Errorf("id = %d, want a positive id", task.ID)
	}
	if task.CreatedAt != task.UpdatedAt || !timeFormat.MatchString(task.CreatedAt) {
		t.Errorf("created_at, updated_at = %q, %q; want equal UTC RFC 3339 times", task.CreatedAt, task.UpdatedAt)
	}
}

// TestTitleLength checks the 1–200 character rule at its edges, counting characters,
// not bytes, after trimming.
func TestTitleLength(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		name  string
		title string
		ok    bool
	}{
		{"one character", "x", true},
		{"200 ASCII", strings.Repeat("x", 200), true},
		{"200 two-byte characters", strings.Repeat("é", 200), true},
		{"200 and spaces around", "  " + strings.Repeat("x", 200) + "  ", true},
		{"201 ASCII", strings.Repeat("x", 201), false},
		{"201 two-byte characters", strings.Repeat("é", 201), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, b := s.do(t, "POST", "/api/tasks", fmt.Sprintf(`{"title": %q}`, tc.title), jsonCT)
			if !tc.ok {
				wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "title")
				return
			}
			wantStatus(t, "POST", "/api/tasks", status, http.StatusCreated, b)
			if got, want := decode[apiTask](t, b).Title, strings.TrimSpace(tc.title); got != want {
				t.Errorf("title = %q, want %q", got, want)
			}
		})
	}
}

func TestGetTask(t *testing.T) {
	s := newServer(t)
	created := s.createTitled(t, "read me")
	s.patch(t, created.ID, `{"status": "review"}`)

	status, h, b := s.do(t, "GET", taskPath(created.ID), nil, nil)
	wantStatus(t, "GET", taskPath(created.ID), status, http.StatusOK, b)
	if got, want := h.Get("ETag"), `"v2"`; got != want {
		t.Errorf("ETag = %q, want %q", got, want)
	}
	got := decode[apiTask](t, b)
	if got.ID != created.ID || got.Status != "review" || got.Version != 2 {
		t.Errorf("got id %d status %q version %d, want %d review 2", got.ID, got.Status, got.Version, created.ID)
	}
}

func TestPatchTask(t *testing.T) {
	s := newServer(t)
	created := s.createTitled(t, "patch me")

	for i, tc := range []struct {
		name string
		h    hdr
		body string
	}{
		{"merge patch", hdr{"Content-Type": "application/merge-patch+json"}, `{"status": "in_progress"}`},
		{"plain JSON", hdr{"Content-Type": "application/json"}, `{"assignee": "bob"}`},
		{"JSON with charset", hdr{"Content-Type": "application/json; charset=utf-8"}, `{"priority": "low"}`},
		{"If-Match current", patchCT(etag(4)), `{"title": "renamed"}`},
		{"If-Match any", patchCT("*"), `{"labels": ["x"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.get(t, created.ID)
			status, h, b := s.do(t, "PATCH", taskPath(created.ID), tc.body, tc.h)
			wantStatus(t, "PATCH", taskPath(created.ID), status, http.StatusOK, b)
			got := decode[apiTask](t, b)
			wantVersion := int64(i + 2)
			if got.Version != before.Version+1 || got.Version != wantVersion {
				t.Errorf("version = %d, want %d", got.Version, wantVersion)
			}
			if tag, want := h.Get("ETag"), etag(wantVersion); tag != want {
				t.Errorf("ETag = %q, want %q", tag, want)
			}
			if got.UpdatedBy != "anonymous" || got.CreatedBy != "anonymous" {
				t.Errorf("created_by, updated_by = %q, %q; want anonymous", got.CreatedBy, got.UpdatedBy)
			}
			if got.CreatedAt != before.CreatedAt {
				t.Errorf("created_at changed from %s to %s", before.CreatedAt, got.CreatedAt)
			}
			if !timeFormat.MatchString(got.UpdatedAt) || got.UpdatedAt < before.UpdatedAt {
				t.Errorf("updated_at = %q, want a time not before %q", got.UpdatedAt, before.UpdatedAt)
			}
			// The response is what GET answers afterwards.
			_, _, after := s.do(t, "GET", taskPath(created.ID), nil, nil)
			if !bytes.Equal(after, b) {
				t.Errorf("GET after PATCH differs from the PATCH response:\nGET   %s\nPATCH %s", after, b)
			}
		})
	}
	got := s.get(t, created.ID)
	if got.Status != "in_progress" || got.Assignee != "bob" || got.Priority != "low" ||
		got.Title != "renamed" || !slices.Equal(got.Labels, []string{"x"}) {
		t.Errorf("after all patches: %+v", got)
	}
}

// TestMergePatch checks RFC 7396 semantics: null clears an optional field, an absent
// field is left alone, and a patch that changes nothing is not a change.
func TestMergePatch(t *testing.T) {
	s := newServer(t)
	parent := s.createTitled(t, "parent")
	dep := s.createTitled(t, "dependency")
	full := s.create(t, fmt.Sprintf(`{"title": "full", "description": "d", "status": "blocked",
		"priority": "urgent", "assignee": "alice", "project": "p", "labels": ["b", "a"],
		"parent_id": %d, "depends_on": [%d], "due_at": "2026-12-01T10:00:00Z"}`, parent.ID, dep.ID))

	t.Run("null clears optional fields", func(t *testing.T) {
		seq := s.lastSeq(t)
		got := s.patch(t, full.ID, `{"description": null, "assignee": null, "project": null,
			"labels": null, "depends_on": null, "parent_id": null, "due_at": null}`)
		want := full
		want.Description, want.Assignee, want.Project = "", "", ""
		want.Labels, want.DependsOn = []string{}, []int64{}
		want.ParentID, want.DueAt = nil, nil
		want.Version, want.UpdatedAt = 2, got.UpdatedAt
		if diff := taskDiff(got, want); diff != "" {
			t.Errorf("after clearing: %s", diff)
		}
		// Cleared lists are [] and cleared pointers null on the wire, not absent.
		_, _, b := s.do(t, "GET", taskPath(full.ID), nil, nil)
		raw := decode[map[string]json.RawMessage](t, b)
		for name, want := range map[string]string{"labels": "[]", "depends_on": "[]", "parent_id": "null", "due_at": "null", "description": `""`} {
			if got := string(raw[name]); got != want {
				t.Errorf("%s = %s, want %s", name, got, want)
			}
		}
		evs := s.eventsAfter(t, seq)
		if len(evs) != 1 {
			t.Fatalf("got %d events, want 1", len(evs))
		}
		wantChanges(t, evs[0], map[string][2]string{
			"description": {`"d"`, `""`},
			"assignee":    {`"alice"`, `""`},
			"project":     {`"p"`, `""`},
			"labels":      {`["a","b"]`, `[]`},
			"depends_on":  {fmt.Sprintf("[%d]", dep.ID), `[]`},
			"parent_id":   {fmt.Sprint(parent.ID), `null`},
			"due_at":      {`"2026-12-01T10:00:00.000000Z"`, `null`},
		})
	})

	t.Run("absent fields are unchanged", func(t *testing.T) {
		before := s.patch(t, full.ID, `{"description": "again", "labels": ["z"], "due_at": "2027-01-01T00:00:00Z"}`)
		seq := s.lastSeq(t)
		got := s.patch(t, full.ID, `{"status": "done"}`)
		want := before
		want.Status, want.Version, want.UpdatedAt = "done", before.Version+1, got.UpdatedAt
		if diff := taskDiff(got, want); diff != "" {
			t.Errorf("after patching status: %s", diff)
		}
		evs := s.eventsAfter(t, seq)
		if len(evs) != 1 {
			t.Fatalf("got %d events, want 1", len(evs))
		}
		wantChanges(t, evs[0], map[string][2]string{"status": {`"blocked"`, `"done"`}})
	})

	t.Run("a patch that changes nothing", func(t *testing.T) {
		cur := s.get(t, full.ID)
		for _, body := range []string{
			`{}`,
			fmt.Sprintf(`{"title": %q, "status": %q}`, cur.Title, cur.Status),
			`{"title": "  full  "}`,                  // the same after trimming
			`{"labels": ["z", "z"], "assignee": ""}`, // the same after normalising
			`{"parent_id": null, "depends_on": []}`,  // already empty
		} {
			before := s.state(t, full.ID)
			status, h, b := s.do(t, "PATCH", taskPath(full.ID), body, patchCT(etag(cur.Version)))
			wantStatus(t, "PATCH", body, status, http.StatusOK, b)
			if got, want := h.Get("ETag"), etag(cur.Version); got != want {
				t.Errorf("%s: ETag = %q, want %q", body, got, want)
			}
			if got := decode[apiTask](t, b); got.Version != cur.Version || got.UpdatedAt != cur.UpdatedAt {
				t.Errorf("%s: version %d updated_at %s, want %d %s", body, got.Version, got.UpdatedAt, cur.Version, cur.UpdatedAt)
			}
			s.wantUnchanged(t, before)
		}
	})
}

// wantChanges checks that e is a REST task_updated event whose changes are exactly want.
func wantChanges(t *testing.T, e apiEvent, want map[string][2]string) {
	t.Helper()
	if e.Type != "task_updated" {
		t.Errorf("event type = %q, want task_updated", e.Type)
	}
	if e.Source != "rest_api" || e.Actor != "anonymous" {
		t.Errorf("event source, actor = %q, %q; want rest_api, anonymous", e.Source, e.Actor)
	}
	got := map[string][2]string{}
	for k, v := range e.Changes {
		got[k] = [2]string{compact(t, v[0]), compact(t, v[1])}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("changes lack %s, want %v", k, w)
		} else if g != w {
			t.Errorf("changes[%s] = %v, want %v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("changes has %s = %v, which did not change", k, g)
		}
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compact %s: %v", raw, err)
	}
	return b.String()
}

// taskDiff describes how got differs from want, "" when it does not.
func taskDiff(got, want apiTask) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if bytes.Equal(g, w) {
		return ""
	}
	return fmt.Sprintf("\ngot  %s\nwant %s", g, w)
}

func TestDeleteTask(t *testing.T) {
	s := newServer(t)
	a := s.createTitled(t, "a")
	b := s.createTitled(t, "b")
	s.patch(t, b.ID, `{"status": "done"}`)

	for _, tc := range []struct {
		name string
		id   int64
		h    hdr
	}{
		{"unconditional", a.ID, nil},
		{"If-Match current", b.ID, hdr{"If-Match": `"v2"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := s.do(t, "DELETE", taskPath(tc.id), nil, tc.h)
			wantStatus(t, "DELETE", taskPath(tc.id), status, http.StatusNoContent, body)
			if len(body) != 0 {
				t.Errorf("204 body = %q, want none", body)
			}
			for _, method := range []string{"GET", "DELETE"} {
				status, h, body := s.do(t, method, taskPath(tc.id), nil, nil)
				wantError(t, status, h, body, http.StatusNotFound, "not_found", "")
			}
		})
	}
	// A deleted task's id is not given to a new one.
	if c := s.createTitled(t, "c"); c.ID <= b.ID {
		t.Errorf("new task id = %d, want above the deleted %d", c.ID, b.ID)
	}
}

// TestDeleteAfterDependentsGo checks that the 409 of a task others depend on lasts only
// as long as they do.
func TestDeleteAfterDependentsGo(t *testing.T) {
	s := newServer(t)
	base := s.createTitled(t, "base")
	dependent := s.create(t, fmt.Sprintf(`{"title": "dependent", "depends_on": [%d]}`, base.ID))
	child := s.create(t, fmt.Sprintf(`{"title": "child", "parent_id": %d}`, base.ID))

	status, h, b := s.do(t, "DELETE", taskPath(base.ID), nil, nil)
	wantError(t, status, h, b, http.StatusConflict, "conflict", "")
	s.patch(t, dependent.ID, `{"depends_on": null}`)
	status, h, b = s.do(t, "DELETE", taskPath(base.ID), nil, nil)
	wantError(t, status, h, b, http.StatusConflict, "conflict", "")
	s.patch(t, child.ID, `{"parent_id": null}`)
	status, _, b = s.do(t, "DELETE", taskPath(base.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(base.ID), status, http.StatusNoContent, b)
	// A task that depends on others can go at once.
	s.patch(t, dependent.ID, fmt.Sprintf(`{"depends_on": [%d]}`, child.ID))
	status, _, b = s.do(t, "DELETE", taskPath(dependent.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(dependent.ID), status, http.StatusNoContent, b)
}

func TestListFilters(t *testing.T) {
	s := newServer(t)
	alpha := s.create(t, `{"title": "alpha", "assignee": "alice", "project": "p1", "labels": ["x"]}`)
	s.create(t, fmt.Sprintf(`{"title": "beta", "status": "in_progress", "assignee": "bob", "project": "p1", "labels": ["x", "y"], "parent_id": %d}`, alpha.ID))
	s.create(t, fmt.Sprintf(`{"title": "gamma", "status": "done", "assignee": "alice", "project": "p2", "labels": ["y"], "parent_id": %d}`, alpha.ID))
	s.create(t, `{"title": "50% off", "project": "p2"}`)
	s.create(t, `{"title": "500 off", "status": "review"}`)
	s.create(t, `{"title": "a_b"}`)
	s.create(t, `{"title": "axb"}`)
	s.create(t, `{"title": "plain", "description": "a needle in the description"}`)
	s.create(t, `{"title": "back\\slash"}`)

	all := []string{"alpha", "beta", "gamma", "50% off", "500 off", "a_b", "axb", "plain", `back\slash`}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", all},
		{"status=todo", []string{"alpha", "50% off", "a_b", "axb", "plain", `back\slash`}},
		{"status=in_progress,done", []string{"beta", "gamma"}},
		{"status=in_progress&status=review", []string{"beta", "500 off"}},
		{"status=" + url.QueryEscape(" done , review "), []string{"gamma", "500 off"}},
		{"status=cancelled", nil},
		{"assignee=alice", []string{"alpha", "gamma"}},
		{"assignee=carol", nil},
		{"project=p1", []string{"alpha", "beta"}},
		{"project=p2", []string{"gamma", "50% off"}},
		{"label=y", []string{"beta", "gamma"}},
		{"label=x", []string{"alpha", "beta"}},
		{fmt.Sprintf("parent_id=%d", alpha.ID), []string{"beta", "gamma"}},
		{"q=alp", []string{"alpha"}},
		{"q=needle", []string{"plain"}}, // the description is searched too
		{"q=" + url.QueryEscape("50%"), []string{"50% off"}},
		{"q=" + url.QueryEscape("%"), []string{"50% off"}},
		{"q=a_b", []string{"a_b"}},
		{"q=_", []string{"a_b"}},
		{"q=" + url.QueryEscape(`\`), []string{`back\slash`}},
		{"q=nothing-matches", nil},
		{"project=p2&status=done", []string{"gamma"}},
		{"assignee=alice&label=x&project=p1&status=todo&q=al", []string{"alpha"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, _, b := s.do(t, "GET", "/api/tasks?"+tc.query, nil, nil)
			wantStatus(t, "GET", "/api/tasks?"+tc.query, status, http.StatusOK, b)
			// tasks is an array, never null, and next_cursor is always there.
			raw := decode[map[string]json.RawMessage](t, b)
			if tasks := string(raw["tasks"]); !strings.HasPrefix(tasks, "[") {
				t.Errorf("tasks = %s, want an array", tasks)
			}
			if _, ok := raw["next_cursor"]; !ok {
				t.Errorf("next_cursor is missing")
			}
			page := decode[taskPage](t, b)
			var got []string
			for _, task := range page.Tasks {
				got = append(got, task.Title)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("titles = %q, want %q", got, tc.want)
			}
			if page.NextCursor != "" {
				t.Errorf("next_cursor = %q, want none", page.NextCursor)
			}
		})
	}
}

func TestListPages(t *testing.T) {
	s := newServer(t)
	var want []int64
	for i := range 5 {
		want = append(want, s.createTitled(t, fmt.Sprint("task ", i)).ID)
	}

	t.Run("limit 2 over 5", func(t *testing.T) {
		var pages [][]int64
		query := "limit=2"
		for {
			page := s.list(t, query)
			pages = append(pages, ids(page.Tasks))
			if page.NextCursor == "" {
				break
			}
			query = "limit=2&cursor=" + url.QueryEscape(page.NextCursor)
		}
		wantPages := [][]int64{want[0:2], want[2:4], want[4:5]}
		if !slices.EqualFunc(pages, wantPages, slices.Equal) {
			t.Errorf("pages = %v, want %v", pages, wantPages)
		}
	})

	t.Run("limits", func(t *testing.T) {
		for _, tc := range []struct {
			limit  int
			n      int
			cursor bool
		}{{1, 1, true}, {4, 4, true}, {5, 5, false}, {6, 5, false}, {500, 5, false}} {
			page := s.list(t, fmt.Sprint("limit=", tc.limit))
			if len(page.Tasks) != tc.n || (page.NextCursor != "") != tc.cursor {
				t.Errorf("limit=%d: %d tasks, next_cursor %q; want %d tasks, cursor %v",
					tc.limit, len(page.Tasks), page.NextCursor, tc.n, tc.cursor)
			}
		}
	})

	t.Run("tasks created while paging", func(t *testing.T) {
		all := slices.Clone(want)
		var got []int64
		query := "limit=2"
		for page := 0; ; page++ {
			p := s.list(t, query)
			got = append(got, ids(p.Tasks)...)
			// Create tasks between the pages, more than one page's worth at first.
			for range max(0, 3-page) {
				all = append(all, s.createTitled(t, fmt.Sprint("new on page ", page)).ID)
			}
			if p.NextCursor == "" {
				break
			}
			query = "limit=2&cursor=" + url.QueryEscape(p.NextCursor)
		}
		if !slices.Equal(got, all) {
			t.Errorf("paged ids = %v, want every task once, in order: %v", got, all)
		}
	})

	t.Run("with a filter", func(t *testing.T) {
		for i, id := range s.list(t, "limit=500").Tasks {
			if i%2 == 0 {
				s.patch(t, id.ID, `{"status": "review"}`)
			}
		}
		wantIDs := ids(s.list(t, "status=review&limit=500").Tasks)
		var got []int64
		query := "status=review&limit=2"
		for {
			p := s.list(t, query)
			got = append(got, ids(p.Tasks)...)
			if p.NextCursor == "" {
				break
			}
			query = "status=review&limit=2&cursor=" + url.QueryEscape(p.NextCursor)
		}
		if len(wantIDs) < 3 || !slices.Equal(got, wantIDs) {
			t.Errorf("paged ids = %v, want %v", got, wantIDs)
		}
	})
}

func TestListDefaultLimit(t *testing.T) {
	s := newServer(t)
	for i := range 51 {
		s.createTitled(t, fmt.Sprint("task ", i))
	}
	page := s.list(t, "")
	if len(page.Tasks) != 50 || page.NextCursor == "" {
		t.Fatalf("got %d tasks, next_cursor %q; want 50 and a cursor", len(page.Tasks), page.NextCursor)
	}
	rest := s.list(t, "cursor="+url.QueryEscape(page.NextCursor))
	if len(rest.Tasks) != 1 || rest.NextCursor != "" || rest.Tasks[0].ID <= page.Tasks[49].ID {
		t.Errorf("second page: %v, next_cursor %q; want the 51st task alone", ids(rest.Tasks), rest.NextCursor)
	}
}

// TestIfMatchIsExact checks that If-Match compares ETags as the strings they are
// (RFC 9110 §8.8.3.2, strong comparison): "v01" and "v+1" are not "v1".
func TestIfMatchIsExact(t *testing.T) {
	s := newServer(t)
	for _, tag := range []string{`"v01"`, `"v+1"`, `"v1 "`} {
		t.Run(tag, func(t *testing.T) {
			task := s.createTitled(t, "exact")
			before := s.state(t, task.ID)
			status, _, b := s.do(t, "PATCH", taskPath(task.ID), `{"title": "changed"}`, patchCT(tag))
			if status != http.StatusBadRequest && status != http.StatusPreconditionFailed {
				t.Errorf("If-Match %s on version 1: status %d, want 400 or 412; body %s", tag, status, truncate(b))
			}
			s.wantUnchanged(t, before)
		})
	}
}

// TestHead checks that HEAD works wherever GET does (RFC 9110 §9.3.2): monitors and
// proxies use it, on /healthz in particular.
func TestHead(t *testing.T) {
	s := newServer(t)
	task := s.createTitled(t, "head")
	for _, path := range []string{"/healthz", taskPath(task.ID), "/api/tasks", "/api/events"} {
		t.Run(path, func(t *testing.T) {
			status, h, b := s.do(t, "HEAD", path, nil, nil)
			if status != http.StatusOK || len(b) != 0 {
				t.Errorf("HEAD %s: status %d, body %q; want 200 and no body", path, status, b)
			}
			_, gh, _ := s.do(t, "GET", path, nil, nil)
			if got, want := h.Get("ETag"), gh.Get("ETag"); got != want {
				t.Errorf("HEAD %s: ETag %q, want GET's %q", path, got, want)
			}
		})
	}
}
