package tasks_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"taskhub/tasks"
)

func asAlice() context.Context {
	return tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceMCP, Name: "alice"})
}

// noteCount returns how many notes the task with id has, by the Service's paging.
func noteCount(t *testing.T, svc *tasks.Service, id int64) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		page, err := svc.Notes(context.Background(), id, cursor, tasks.MaxListLimit)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Notes)
		if page.NextCursor == "" {
			return n
		}
		cursor = page.NextCursor
	}
}

// TestNoteValidation checks each rule of a note's text at its edge. A refused note
// adds nothing to the thread and nothing to the log.
func TestNoteValidation(t *testing.T) {
	svc, _ := newService(t)
	task := create(t, svc, tasks.Update{})
	for _, tc := range []struct {
		name, text string
		field      string // "" when valid
	}{
		{"empty", "", "text"},
		{"blank", " \t\n ", "text"},
		{"one character", "x", ""},
		{"10,000 characters of 2 bytes", strings.Repeat("é", tasks.MaxNoteText), ""},
		{"10,000 after trimming", "  " + strings.Repeat("x", tasks.MaxNoteText) + "\n", ""},
		{"10,001 characters", strings.Repeat("x", tasks.MaxNoteText+1), "text"},
		{"32 KiB of 4-byte characters", strings.Repeat("😀", tasks.MaxNoteTextBytes/4), ""},
		{"a byte over 32 KiB", strings.Repeat("😀", tasks.MaxNoteTextBytes/4) + "x", "text"},
		{"100 KiB", strings.Repeat("x", 100<<10), "text"},
		{"NUL", "a\x00b", "text"},
		{"not UTF-8", "a\xffb", "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notes, seq := noteCount(t, svc, task.ID), lastSeq(t, svc)
			n, err := svc.AddNote(asAlice(), task.ID, tc.text)
			checkValid(t, "add note", err, tc.field)
			if tc.field == "" {
				if err == nil && n.Text != strings.TrimSpace(tc.text) {
					t.Errorf("the note's text is not the text sent, trimmed")
				}
				return
			}
			if got, now := noteCount(t, svc, task.ID), lastSeq(t, svc); got != notes || now != seq {
				t.Errorf("a refused note: %d notes and last seq %d, were %d and %d", got, now, notes, seq)
			}
		})
	}
	_, err := svc.AddNote(asAlice(), 0, "x")
	wantError(t, err, tasks.EInvalid, "task_id")
	seq := lastSeq(t, svc)
	if _, err := svc.AddNote(asAlice(), task.ID+1, "x"); tasks.ErrorCode(err) != tasks.ENotFound {
		t.Errorf("a note on a task that does not exist: %v, want not_found", err)
	}
	if now := lastSeq(t, svc); now != seq {
		t.Errorf("a note on a missing task moved the log from seq %d to %d", seq, now)
	}
}

// TestNoteEvent checks the task_note_added event as the log keeps it: the note under
// "note", the task as it is, and nothing about the task changed.
func TestNoteEvent(t *testing.T) {
	svc, _ := newService(t)
	task := create(t, svc, tasks.Update{Project: tasks.Value("p")})
	n, err := svc.AddNote(asAlice(), task.ID, "found the cause")
	if err != nil {
		t.Fatal(err)
	}
	if n.ID < 1 || n.TaskID != task.ID || n.Author != "alice" || n.Text != "found the cause" || n.Time.IsZero() {
		t.Errorf("added %+v", n)
	}
	records, _, err := svc.Events(context.Background(), 1, 10)
	if err != nil || len(records) != 1 {
		t.Fatalf("events after the create: %v, %v; want the note's", records, err)
	}
	r := records[0]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &raw); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(raw)), []string{"actor", "note", "seq", "source", "task", "task_id", "time", "type"}; !slices.Equal(got, want) {
		t.Errorf("event members %v, want %v: %s", got, want, r.Data)
	}
	wantNote, _ := json.Marshal(n)
	if string(raw["note"]) != string(wantNote) {
		t.Errorf("the event's note %s, want the note added %s", raw["note"], wantNote)
	}
	var note map[string]json.RawMessage
	json.Unmarshal(raw["note"], &note)
	if got, want := slices.Sorted(maps.Keys(note)), []string{"author", "id", "task_id", "text", "time"}; !slices.Equal(got, want) {
		t.Errorf("note members %v, want %v", got, want)
	}
	if string(raw["type"]) != `"task_note_added"` || string(raw["source"]) != `"mcp_tool"` || string(raw["actor"]) != `"alice"` ||
		string(raw["time"]) != `"`+n.Time.String()+`"` {
		t.Errorf("event %s", r.Data)
	}
	var e tasks.Event
	if err := json.Unmarshal(r.Data, &e); err != nil {
		t.Fatal(err)
	}
	if !equalTasks(e.Task, task) || e.Note != "" || e.AddedNote == nil || *e.AddedNote != *n {
		t.Errorf("decoded event: task %+v, note %q, added note %+v", e.Task, e.Note, e.AddedNote)
	}

	// The task is as it was: a client's If-Match on the version it read still holds.
	if got, _ := svc.Get(context.Background(), task.ID); !equalTasks(got, task) {
		t.Errorf("the note changed the task: %+v", got)
	}
	if _, err := svc.Update(context.Background(), task.ID, task.Version, tasks.Update{Title: tasks.Value("renamed")}); err != nil {
		t.Errorf("an update at the version read before the note: %v", err)
	}
}

// TestNotesPaging pages through a task's notes, oldest first, while notes are added.
func TestNotesPaging(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	task := create(t, svc, tasks.Update{})
	other := create(t, svc, tasks.Update{})
	var want []int64
	for i := range 5 {
		n, err := svc.AddNote(asAlice(), task.ID, strings.Repeat("n", i+1))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, n.ID)
		if _, err := svc.AddNote(asAlice(), other.ID, "elsewhere"); err != nil {
			t.Fatal(err)
		}
	}
	var seen []int64
	cursor := ""
	for {
		page, err := svc.Notes(ctx, task.ID, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Notes) > 2 {
			t.Fatalf("a page of %d notes, limit 2", len(page.Notes))
		}
		for _, n := range page.Notes {
			seen = append(seen, n.ID)
		}
		if page.NextCursor == "" {
			break
		}
		if len(seen) == 2 { // appears on a later page
			n, err := svc.AddNote(asAlice(), task.ID, "while paging")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, n.ID)
		}
		cursor = page.NextCursor
	}
	if !slices.Equal(seen, want) {
		t.Errorf("paged through notes %v, want %v", seen, want)
	}
	if page, err := svc.Notes(ctx, task.ID, "", 6); err != nil || len(page.Notes) != 6 || page.NextCursor != "" {
		t.Errorf("a page as long as the thread: %d notes, cursor %q, %v; want 6 and no cursor", len(page.Notes), page.NextCursor, err)
	}
	fresh := create(t, svc, tasks.Update{})
	if page, err := svc.Notes(ctx, fresh.ID, "", 10); err != nil || page.Notes == nil || len(page.Notes) != 0 {
		t.Errorf("notes of a task without any: %+v, %v; want an empty list", page, err)
	}
	for _, tc := range []struct {
		id     int64
		cursor string
		limit  int
		code   string
		field  string
	}{
		{task.ID, "", 0, tasks.EInvalid, "limit"},
		{task.ID, "", tasks.MaxListLimit + 1, tasks.EInvalid, "limit"},
		{task.ID, "bogus", 10, tasks.EInvalid, "cursor"},
		{0, "", 10, tasks.EInvalid, "task_id"},
		{fresh.ID + 1, "", 10, tasks.ENotFound, ""},
	} {
		_, err := svc.Notes(ctx, tc.id, tc.cursor, tc.limit)
		wantError(t, err, tc.code, tc.field)
	}
}

// TestDeleteCountsNotes checks that a task_deleted event says how many notes went with
// the task, also when there were none.
func TestDeleteCountsNotes(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	noted, bare := create(t, svc, tasks.Update{}), create(t, svc, tasks.Update{})
	for range 2 {
		if _, err := svc.AddNote(asAlice(), noted.ID, "n"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id   int64
		want string
	}{{noted.ID, `"notes_deleted":2`}, {bare.ID, `"notes_deleted":0`}} {
		if err := svc.Delete(ctx, tc.id, 0); err != nil {
			t.Fatal(err)
		}
		history, err := svc.TaskEvents(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if last := history[len(history)-1]; last.Type != tasks.EventTaskDeleted || !strings.Contains(string(last.Data), tc.want) {
			t.Errorf("the delete of task %d: %s, want %s", tc.id, last.Data, tc.want)
		}
		if _, err := svc.Notes(ctx, tc.id, "", 10); tasks.ErrorCode(err) != tasks.ENotFound {
			t.Errorf("notes of deleted task %d: %v, want not_found", tc.id, err)
		}
	}
}

// TestNoteAndEventAreOneTransaction makes SQLite refuse one half of adding a note: the
// other half is not kept either.
func TestNoteAndEventAreOneTransaction(t *testing.T) {
	for _, table := range []string{"events", "notes"} {
		t.Run(table+" refused", func(t *testing.T) {
			svc, path := newService(t)
			task := create(t, svc, tasks.Update{})
			raw := rawDB(t, path)
			if _, err := raw.Exec("CREATE TRIGGER sabotage BEFORE INSERT ON " + table + " BEGIN SELECT RAISE(ABORT, 'no'); END"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.AddNote(asAlice(), task.ID, "lost"); err == nil {
				t.Fatal("the note was added through the trigger")
			}
			var notes, events int
			if err := raw.QueryRow("SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM events)").Scan(&notes, &events); err != nil {
				t.Fatal(err)
			}
			if notes != 0 || events != 1 {
				t.Errorf("after a refused note: %d notes, %d events; want 0 and the create's 1", notes, events)
			}
		})
	}
}
