package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestTaskEvents(t *testing.T) {
	s := newServer(t)
	task := s.createTitled(t, "history")
	other := s.createTitled(t, "other")
	s.patch(t, task.ID, `{"status": "in_progress"}`)
	s.patch(t, other.ID, `{"status": "done"}`)
	s.patch(t, task.ID, `{"title": "history, renamed", "assignee": "alice"}`)
	last := s.get(t, task.ID)
	status, _, b := s.do(t, "DELETE", taskPath(task.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(task.ID), status, http.StatusNoContent, b)

	// Still there after the delete: history outlives the task.
	evs := s.taskEvents(t, task.ID)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if want := []string{"task_created", "task_updated", "task_updated", "task_deleted"}; !slices.Equal(types, want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	for i, e := range evs {
		if e.TaskID != task.ID {
			t.Errorf("event %d: task_id = %d, want %d", i, e.TaskID, task.ID)
		}
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Errorf("event %d: seq %d not above %d", i, e.Seq, evs[i-1].Seq)
		}
		if e.Source != "rest_api" || e.Actor != "anonymous" {
			t.Errorf("event %d: source, actor = %q, %q; want rest_api, anonymous", i, e.Source, e.Actor)
		}
		if e.Task == nil {
			t.Fatalf("event %d has no task", i)
		}
		if !timeFormat.MatchString(e.Time) {
			t.Errorf("event %d: time = %q, want UTC RFC 3339 with six fractional digits", i, e.Time)
		}
	}
	// task is the task after the change; for the delete, its last state.
	if got := evs[0].Task; got.Version != 1 || got.Title != "history" || evs[0].Time != got.CreatedAt || evs[0].Changes != nil {
		t.Errorf("task_created: %+v at %s, changes %v", got, evs[0].Time, evs[0].Changes)
	}
	if got := evs[1].Task; got.Version != 2 || got.Status != "in_progress" || evs[1].Time != got.UpdatedAt {
		t.Errorf("first task_updated: %+v at %s", got, evs[1].Time)
	}
	wantChanges(t, evs[1], map[string][2]string{"status": {`"todo"`, `"in_progress"`}})
	wantChanges(t, evs[2], map[string][2]string{"title": {`"history"`, `"history, renamed"`}, "assignee": {`""`, `"alice"`}})
	if diff := taskDiff(*evs[2].Task, last); diff != "" {
		t.Errorf("second task_updated task differs from GET: %s", diff)
	}
	if diff := taskDiff(*evs[3].Task, last); diff != "" {
		t.Errorf("task_deleted task differs from the last state: %s", diff)
	}

	// The other task's history is its own.
	if got := s.taskEvents(t, other.ID); len(got) != 2 || got[0].Type != "task_created" || got[1].Type != "task_updated" {
		t.Errorf("other task's events = %+v, want created and updated", got)
	}

	// A task that never existed has no history.
	status, h, b := s.do(t, "GET", taskPath(other.ID+100)+"/events", nil, nil)
	wantError(t, status, h, b, http.StatusNotFound, "not_found", "")
}

func TestEventLog(t *testing.T) {
	s := newServer(t)

	// An empty log: nothing, and last_seq 0 whatever after is.
	for _, query := range []string{"", "after=0", "after=5&limit=10"} {
		status, _, b := s.do(t, "GET", "/api/events?"+query, nil, nil)
		wantStatus(t, "GET", "/api/events?"+query, status, http.StatusOK, b)
		if got, want := strings.TrimSpace(string(b)), `{"events":[],"last_seq":0}`; got != want {
			t.Errorf("%q: body = %s, want %s", query, got, want)
		}
	}

	a := s.createTitled(t, "a")
	b := s.createTitled(t, "b")
	s.patch(t, a.ID, `{"priority": "high"}`)
	status, _, body := s.do(t, "DELETE", taskPath(b.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(b.ID), status, http.StatusNoContent, body)

	all := s.events(t, "").Events
	if len(all) != 4 {
		t.Fatalf("got %d events, want 4", len(all))
	}
	wantTypes := []struct {
		typ  string
		task int64
	}{{"task_created", a.ID}, {"task_created", b.ID}, {"task_updated", a.ID}, {"task_deleted", b.ID}}
	for i, e := range all {
		if e.Type != wantTypes[i].typ || e.TaskID != wantTypes[i].task {
			t.Errorf("event %d: %s of task %d, want %s of task %d", i, e.Type, e.TaskID, wantTypes[i].typ, wantTypes[i].task)
		}
		if e.Source != "rest_api" || e.Actor != "anonymous" {
			t.Errorf("event %d: source, actor = %q, %q; want rest_api, anonymous", i, e.Source, e.Actor)
		}
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Errorf("event %d: seq %d not above %d", i, e.Seq, all[i-1].Seq)
		}
	}
	seq := func(i int) int64 { return all[i].Seq }
	first, last := seq(0), seq(3)

	for _, tc := range []struct {
		query   string
		want    []int64
		lastSeq int64
	}{
		{"", []int64{seq(0), seq(1), seq(2), seq(3)}, last},
		{"after=0&limit=2", []int64{seq(0), seq(1)}, seq(1)},
		{fmt.Sprintf("after=%d", seq(1)), []int64{seq(2), seq(3)}, last},
		{fmt.Sprintf("after=%d&limit=1", seq(0)), []int64{seq(1)}, seq(1)},
		{fmt.Sprintf("after=%d&limit=1000", first-1), []int64{seq(0), seq(1), seq(2), seq(3)}, last},
		// Nothing returned: last_seq is min(after, the last seq in the log).
		{fmt.Sprintf("after=%d", last), nil, last},
		{fmt.Sprintf("after=%d", last+100), nil, last},
		{"after=9223372036854775807", nil, last},
	} {
		t.Run(tc.query, func(t *testing.T) {
			page := s.events(t, tc.query)
			var got []int64
			for _, e := range page.Events {
				got = append(got, e.Seq)
			}
			if !slices.Equal(got, tc.want) || page.LastSeq != tc.lastSeq {
				t.Errorf("seqs %v, last_seq %d; want %v, %d", got, page.LastSeq, tc.want, tc.lastSeq)
			}
			if page.Events == nil {
				t.Errorf("events is null, want an array")
			}
		})
	}

	// A poller that passes last_seq back as after sees every event once, in order.
	var polled []int64
	for after := int64(0); ; {
		page := s.events(t, fmt.Sprintf("after=%d&limit=3", after))
		for _, e := range page.Events {
			polled = append(polled, e.Seq)
		}
		if len(page.Events) == 0 {
			break
		}
		after = page.LastSeq
	}
	if want := []int64{seq(0), seq(1), seq(2), seq(3)}; !slices.Equal(polled, want) {
		t.Errorf("polled %v, want %v", polled, want)
	}

	// The event log and a task's history tell the same story.
	hist := s.taskEvents(t, a.ID)
	if len(hist) != 2 {
		t.Fatalf("task %d has %d events, want 2", a.ID, len(hist))
	}
	for i, j := range []int{0, 2} {
		g, _ := json.Marshal(hist[i])
		w, _ := json.Marshal(all[j])
		if !bytes.Equal(g, w) {
			t.Errorf("history event %d differs from log event %d:\n%s\n%s", i, j, g, w)
		}
	}
}

// TestRESTAttribution checks who REST changes are attributed to while the server has
// no tokens: "anonymous", through "rest_api".
func TestRESTAttribution(t *testing.T) {
	s := newServer(t)
	task := s.createTitled(t, "who")
	task = s.patch(t, task.ID, `{"status": "done"}`)
	if task.CreatedBy != "anonymous" || task.UpdatedBy != "anonymous" {
		t.Errorf("created_by, updated_by = %q, %q; want anonymous", task.CreatedBy, task.UpdatedBy)
	}
	status, _, b := s.do(t, "DELETE", taskPath(task.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(task.ID), status, http.StatusNoContent, b)
	evs := s.eventsAfter(t, 0)
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3", len(evs))
	}
	for _, e := range evs {
		if e.Source != "rest_api" || e.Actor != "anonymous" {
			t.Errorf("%s: source, actor = %q, %q; want rest_api, anonymous", e.Type, e.Source, e.Actor)
		}
		if e.Task.CreatedBy != "anonymous" || e.Task.UpdatedBy != "anonymous" {
			t.Errorf("%s: task created_by, updated_by = %q, %q; want anonymous", e.Type, e.Task.CreatedBy, e.Task.UpdatedBy)
		}
	}
}

// TestDebugLog checks that the access log at debug level leaves responses as they are
// and logs each request once with its status.
func TestDebugLog(t *testing.T) {
	var log lockedBuffer
	s := newServerWithLogger(t, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	s.createTitled(t, "logged")
	status, h, b := s.do(t, "GET", "/api/tasks/999", nil, nil)
	wantError(t, status, h, b, http.StatusNotFound, "not_found", "")
	status, h, b = s.do(t, "PUT", "/api/tasks/1", nil, nil)
	wantError(t, status, h, b, http.StatusMethodNotAllowed, "method_not_allowed", "")
	status, h, b = s.do(t, "POST", "/api/tasks", `{"title": ""}`, jsonCT)
	wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "title")
	s.Close() // waits for the handlers, which log after they respond

	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	want := []string{"status=201", "status=404", "status=405", "status=400"}
	if len(lines) != len(want) {
		t.Fatalf("got %d log lines, want %d:\n%s", len(lines), len(want), log.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], "msg=request") || !strings.Contains(lines[i], w) {
			t.Errorf("log line %d = %q, want a request with %s", i, lines[i], w)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
