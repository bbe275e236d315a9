package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"
)

// leaseTask is a task with the fields of claims and progress.
type leaseTask struct {
	apiTask
	LeaseExpiresAt  *string `json:"lease_expires_at"`
	Progress        int     `json:"progress"`
	ProgressMessage string  `json:"progress_message"`
}

// agents is an API whose callers are alice and bob, each with a token of their own.
type agents struct {
	*server
}

func newAgents(t *testing.T) *agents {
	t.Helper()
	db := openDB(t)
	var list []string
	for _, name := range []string{"alice", "bob"} {
		sum := sha256.Sum256([]byte("secret-" + name))
		list = append(list, fmt.Sprintf(`{"name":%q,"sha256":%q,"scopes":["read","write"]}`, name, hex.EncodeToString(sum[:])))
	}
	tokens := mustParseTokens(t, "["+strings.Join(list, ",")+"]")
	ts := httptest.NewServer(api.New(api.Config{Service: tasks.NewService(db), Logger: slog.New(slog.DiscardHandler), Auth: api.NewAuth(tokens)}))
	t.Cleanup(ts.Close)
	return &agents{&server{ts}}
}

// as returns the headers of a request by name, with a JSON body when json.
func as(name string, json bool) hdr {
	h := hdr{"Authorization": "Bearer secret-" + name}
	if json {
		h["Content-Type"] = "application/json"
	}
	return h
}

// post posts body (nil for none) as name and returns the status, headers and body.
func (a *agents) post(t *testing.T, name, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	return a.do(t, "POST", path, body, as(name, body != nil))
}

func (a *agents) create(t *testing.T, body string) leaseTask {
	t.Helper()
	status, _, b := a.post(t, "alice", "/api/tasks", body)
	wantStatus(t, "POST", "/api/tasks", status, http.StatusCreated, b)
	return decode[leaseTask](t, b)
}

// raw returns the body of GET of the task with id, with its ETag before it.
func (a *agents) raw(t *testing.T, id int64) string {
	t.Helper()
	status, h, b := a.do(t, "GET", taskPath(id), nil, as("alice", false))
	wantStatus(t, "GET", taskPath(id), status, http.StatusOK, b)
	return h.Get("ETag") + " " + string(b)
}

// ok posts body as name to path and returns the task it answers, failing t unless 200.
func (a *agents) ok(t *testing.T, name, path string, body any) (leaseTask, http.Header) {
	t.Helper()
	status, h, b := a.post(t, name, path, body)
	wantStatus(t, "POST", path, status, http.StatusOK, b)
	return decode[leaseTask](t, b), h
}

func (a *agents) lastSeq(t *testing.T) int64 {
	t.Helper()
	status, _, b := a.do(t, "GET", "/api/events?after=9223372036854775807&limit=1", nil, as("alice", false))
	wantStatus(t, "GET", "/api/events", status, http.StatusOK, b)
	return decode[eventPage](t, b).LastSeq
}

func leaseIn(t *testing.T, task leaseTask, from time.Time, want time.Duration) {
	t.Helper()
	if task.LeaseExpiresAt == nil {
		t.Fatalf("task %d has no lease", task.ID)
	}
	at, err := time.Parse(time.RFC3339Nano, *task.LeaseExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	if d := at.Sub(from); d < want-time.Millisecond || d > want+time.Minute {
		t.Errorf("task %d: lease runs out %s after the claim, want %s", task.ID, d, want)
	}
}

func TestClaimEndpoints(t *testing.T) {
	a := newAgents(t)
	low := a.create(t, `{"title": "low", "priority": "low", "project": "p"}`)
	high := a.create(t, `{"title": "high", "priority": "high", "project": "p"}`)
	other := a.create(t, `{"title": "elsewhere", "project": "q"}`)

	// By id, with no body: the default lease.
	start := time.Now()
	claimed, h := a.ok(t, "alice", taskPath(low.ID)+"/claim", nil)
	if claimed.Status != "in_progress" || claimed.Assignee != "alice" || claimed.Version != 2 || h.Get("ETag") != `"v2"` {
		t.Errorf("claimed %+v, ETag %s", claimed, h.Get("ETag"))
	}
	leaseIn(t, claimed, start, tasks.DefaultClaimLease)
	// bob cannot take it: 409, saying who holds it.
	status, h, b := a.post(t, "bob", taskPath(low.ID)+"/claim", `{"lease_seconds": 120}`)
	wantError(t, status, h, b, http.StatusConflict, tasks.EConflict, "task_id")
	if !strings.Contains(errorMessage(t, b), "alice") {
		t.Errorf("the conflict %s does not name the holder", b)
	}

	// The next ready task, within a project, with a lease of its own.
	start = time.Now()
	next, _ := a.ok(t, "bob", "/api/tasks/claim", `{"project": "p", "lease_seconds": 120}`)
	if next.ID != high.ID || next.Assignee != "bob" {
		t.Errorf("claimed next %+v, want task %d by bob", next, high.ID)
	}
	leaseIn(t, next, start, 2*time.Minute)
	// Nothing more is ready in p: 204, no body.
	status, _, b = a.post(t, "bob", "/api/tasks/claim", `{"project": "p", "label": "x"}`)
	if status != http.StatusNoContent || len(b) != 0 {
		t.Errorf("claim next with nothing ready: %d %s, want 204 and no body", status, b)
	}
	// Without a body, anywhere.
	if got, _ := a.ok(t, "bob", "/api/tasks/claim", nil); got.ID != other.ID {
		t.Errorf("claimed next %d, want %d", got.ID, other.ID)
	}

	// A heartbeat moves the lease, not the version or the ETag.
	beat, h := a.ok(t, "bob", taskPath(high.ID)+"/heartbeat", nil)
	if beat.Version != next.Version || h.Get("ETag") != etag(next.Version) || *beat.LeaseExpiresAt < *next.LeaseExpiresAt {
		t.Errorf("heartbeat: version %d, ETag %s, lease %s (was %d, %s)", beat.Version, h.Get("ETag"), *beat.LeaseExpiresAt, next.Version, *next.LeaseExpiresAt)
	}
	// Release with a note: back to todo, unassigned, no lease.
	released, _ := a.ok(t, "bob", taskPath(high.ID)+"/release", `{"note": "blocked on credentials"}`)
	if released.Status != "todo" || released.Assignee != "" || released.LeaseExpiresAt != nil || released.Version != beat.Version+1 {
		t.Errorf("released %+v", released)
	}
	events := a.taskEvents(t, high.ID)
	types := []string{}
	for _, e := range events {
		types = append(types, e.Type)
	}
	if want := "[task_created task_updated task_lease_renewed task_updated task_note_added]"; fmt.Sprint(types) != want {
		t.Errorf("events %v, want %s", types, want)
	}
	_, _, raw := a.do(t, "GET", taskPath(high.ID)+"/events", nil, as("alice", false))
	if !strings.Contains(string(raw), `"author":"bob","time":`) || !strings.Contains(string(raw), `"text":"blocked on credentials"}`) {
		t.Errorf("the release's note is not in the task's events: %s", raw)
	}
}

func (a *agents) taskEvents(t *testing.T, id int64) []apiEvent {
	t.Helper()
	status, _, b := a.do(t, "GET", taskPath(id)+"/events", nil, as("alice", false))
	wantStatus(t, "GET", taskPath(id)+"/events", status, http.StatusOK, b)
	return decode[struct {
		Events []apiEvent `json:"events"`
	}](t, b).Events
}

// TestClaimEndpointsRefuse: every bad request is an error that names what is wrong,
// with its status, and changes nothing.
func TestClaimEndpointsRefuse(t *testing.T) {
	a := newAgents(t)
	free := a.create(t, `{"title": "free"}`)
	held := a.create(t, `{"title": "held"}`)
	a.ok(t, "alice", taskPath(held.ID)+"/claim", nil)
	review := a.create(t, `{"title": "in review"}`)
	a.ok(t, "alice", taskPath(review.ID)+"/claim", nil)
	if status, _, b := a.do(t, "PATCH", taskPath(review.ID), `{"status": "review"}`, as("alice", true)); status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", status, b)
	}

	for _, tc := range []struct {
		name, who, path string
		body            any
		ct              bool // send Content-Type: application/json
		status          int
		code, field     string
	}{
		{"lease -1", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": -1}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease 0", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": 0}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease 59", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": 59}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease 86401", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": 86401}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease a year", "bob", "/api/tasks/claim", `{"lease_seconds": 31536000}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease 1.5", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": 61.5}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease text", "bob", "/api/tasks/claim", `{"lease_seconds": "60"}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"lease null", "bob", "/api/tasks/claim", `{"lease_seconds": null}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"unknown field", "bob", taskPath(free.ID) + "/claim", `{"project": "p"}`, true, 400, tasks.EInvalid, "project"},
		{"project not a string", "bob", "/api/tasks/claim", `{"project": 7}`, true, 400, tasks.EInvalid, "project"},
		{"not an object", "bob", "/api/tasks/claim", `[]`, true, 400, tasks.EInvalid, ""},
		{"not JSON", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": 60`, true, 400, tasks.EInvalid, ""},
		{"no content type", "bob", taskPath(free.ID) + "/claim", `{"lease_seconds": 60}`, false, 415, api.CodeUnsupportedMediaType, ""},
		{"bad id", "bob", "/api/tasks/01/claim", nil, false, 400, tasks.EInvalid, "id"},
		{"missing task", "bob", "/api/tasks/999/claim", nil, false, 404, tasks.ENotFound, ""},
		{"query", "bob", taskPath(free.ID) + "/heartbeat?x=1", nil, false, 400, tasks.EInvalid, "x"},
		{"claimed already", "bob", taskPath(held.ID) + "/claim", nil, false, 409, tasks.EConflict, "task_id"},
		{"heartbeat by another", "bob", taskPath(held.ID) + "/heartbeat", nil, false, 409, tasks.EConflict, "task_id"},
		{"heartbeat without a lease", "alice", taskPath(review.ID) + "/heartbeat", nil, false, 409, tasks.EConflict, "task_id"},
		{"heartbeat unclaimed", "alice", taskPath(free.ID) + "/heartbeat", nil, false, 409, tasks.EConflict, "task_id"},
		{"heartbeat with a field", "alice", taskPath(held.ID) + "/heartbeat", `{"lease_seconds": 60}`, true, 400, tasks.EInvalid, "lease_seconds"},
		{"release by another", "bob", taskPath(held.ID) + "/release", `{"note": "mine now"}`, true, 409, tasks.EConflict, "task_id"},
		{"release note too long", "alice", taskPath(held.ID) + "/release", `{"note": "` + strings.Repeat("x", tasks.MaxNoteText+1) + `"}`, true, 400, tasks.EInvalid, "note"},
		{"release note not a string", "alice", taskPath(held.ID) + "/release", `{"note": 1}`, true, 400, tasks.EInvalid, "note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := []int64{free.ID, held.ID, review.ID}
			before := map[int64]string{}
			for _, id := range ids {
				before[id] = a.raw(t, id)
			}
			seq := a.lastSeq(t)
			status, h, b := a.do(t, "POST", tc.path, tc.body, as(tc.who, tc.ct))
			wantError(t, status, h, b, tc.status, tc.code, tc.field)
			for _, id := range ids {
				if now := a.raw(t, id); now != before[id] {
					t.Errorf("task %d changed:\n%s\n%s", id, before[id], now)
				}
			}
			if now := a.lastSeq(t); now != seq {
				t.Errorf("the log grew from %d to %d", seq, now)
			}
		})
	}
}

func TestPatchProgress(t *testing.T) {
	a := newAgents(t)
	task := a.create(t, `{"title": "x"}`)
	status, _, b := a.do(t, "PATCH", taskPath(task.ID), `{"progress": 40, "progress_message": " compiling "}`, as("bob", true))
	wantStatus(t, "PATCH", taskPath(task.ID), status, http.StatusOK, b)
	got := decode[leaseTask](t, b)
	if got.Progress != 40 || got.ProgressMessage != "compiling" || got.Version != 2 {
		t.Errorf("patched %+v", got)
	}
	status, _, b = a.do(t, "PATCH", taskPath(task.ID), `{"progress_message": null}`, as("bob", true))
	if got := decode[leaseTask](t, b); status != http.StatusOK || got.ProgressMessage != "" || got.Progress != 40 {
		t.Errorf("null clears the message: %d %s", status, b)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"progress": -1}`, "progress"},
		{`{"progress": 101}`, "progress"},
		{`{"progress": 1.5}`, "progress"},
		{`{"progress": "x"}`, "progress"},
		{`{"progress": null}`, "progress"},
		{`{"progress_message": "` + strings.Repeat("x", tasks.MaxProgressMessage+1) + `"}`, "progress_message"},
		{`{"progress_message": 3}`, "progress_message"},
		{`{"lease_expires_at": null}`, "lease_expires_at"},
	} {
		t.Run(tc.body[:min(len(tc.body), 40)], func(t *testing.T) {
			was := a.raw(t, task.ID)
			seq := a.lastSeq(t)
			status, h, b := a.do(t, "PATCH", taskPath(task.ID), tc.body, as("bob", true))
			wantError(t, status, h, b, http.StatusBadRequest, tasks.EInvalid, tc.field)
			if now := a.raw(t, task.ID); now != was || a.lastSeq(t) != seq {
				t.Errorf("changed:\n%s\n%s", was, now)
			}
		})
	}
}
