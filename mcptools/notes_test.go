package mcptools_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"taskhub/tasks"
)

type notesOut struct {
	Notes      []tasks.Note `json:"notes"`
	NextCursor string       `json:"next_cursor"`
}

type eventsOut struct {
	Events  []tasks.Event `json:"events"`
	LastSeq int64         `json:"last_seq"`
}

func TestNoteTools(t *testing.T) {
	s, _ := newServer(t)
	c := connect(t, s, "claude-code")
	task := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"noted","project":"p"}`))

	first := ok[tasks.Note](t, callTool(t, c, "add_note", fmt.Sprintf(`{"task_id":%d,"text":"  the cause is in the parser\n"}`, task.ID)))
	if first.ID < 1 || first.TaskID != task.ID || first.Author != "claude-code" || first.Text != "the cause is in the parser" || first.Time.IsZero() {
		t.Errorf("added %+v", first)
	}
	second := ok[tasks.Note](t, callTool(t, c, "add_note", fmt.Sprintf(`{"task_id":%d,"text":"fixed; tests left"}`, task.ID)))

	res := callTool(t, c, "list_notes", fmt.Sprintf(`{"task_id":%d}`, task.ID))
	page := ok[notesOut](t, res)
	if len(page.Notes) != 2 || page.Notes[0] != first || page.Notes[1] != second || page.NextCursor != "" {
		t.Errorf("list %+v", page)
	}
	if txt := text(res); !strings.Contains(txt, "the cause is in the parser") || !strings.Contains(txt, "fixed; tests left") {
		t.Errorf("the text of list_notes does not have the notes: %q", txt)
	}
	page = ok[notesOut](t, callTool(t, c, "list_notes", fmt.Sprintf(`{"task_id":%d,"limit":1}`, task.ID)))
	if len(page.Notes) != 1 || page.Notes[0] != first || page.NextCursor == "" {
		t.Fatalf("first page of 1: %+v", page)
	}
	page = ok[notesOut](t, callTool(t, c, "list_notes", fmt.Sprintf(`{"task_id":%d,"limit":1,"cursor":%q}`, task.ID, page.NextCursor)))
	if len(page.Notes) != 1 || page.Notes[0] != second || page.NextCursor != "" {
		t.Errorf("second page of 1: %+v", page)
	}

	// The notes' events pass list_events' output schema, with their notes, and the
	// task is as it was.
	ev := ok[eventsOut](t, callTool(t, c, "list_events", `{"types":["task_note_added"],"project":"p"}`))
	if len(ev.Events) != 2 || ev.Events[0].AddedNote == nil || *ev.Events[0].AddedNote != first ||
		ev.Events[1].Source != tasks.SourceMCP || ev.Events[1].Actor != "claude-code" {
		t.Errorf("note events %+v", ev)
	}
	if got := ok[tasks.Task](t, callTool(t, c, "get_task", fmt.Sprintf(`{"task_id":%d}`, task.ID))); got.Version != 1 {
		t.Errorf("task version %d after notes, want 1", got.Version)
	}
	ok[map[string]any](t, callTool(t, c, "delete_task", fmt.Sprintf(`{"task_id":%d}`, task.ID)))
	ev = ok[eventsOut](t, callTool(t, c, "list_events", `{"types":["task_deleted"]}`))
	if len(ev.Events) != 1 || ev.Events[0].NotesDeleted == nil || *ev.Events[0].NotesDeleted != 2 {
		t.Errorf("delete events %+v, want one with notes_deleted 2", ev)
	}
}

// TestNoteAuthorIsCaller checks that an authenticated caller's name, not the client's,
// is a note's author.
func TestNoteAuthorIsCaller(t *testing.T) {
	s, _ := newServerFor(t, "token-ci")
	c := connect(t, s, "claude-code")
	task := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"t"}`))
	if n := ok[tasks.Note](t, callTool(t, c, "add_note", fmt.Sprintf(`{"task_id":%d,"text":"x"}`, task.ID))); n.Author != "token-ci" {
		t.Errorf("author %q, want the token's name", n.Author)
	}
}

// TestNoteToolsFail checks that bad arguments give an isError result naming the
// argument, and add no note and no event.
func TestNoteToolsFail(t *testing.T) {
	s, svc := newServer(t)
	c := connect(t, s, "agent")
	task := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"base"}`))
	ok[tasks.Note](t, callTool(t, c, "add_note", fmt.Sprintf(`{"task_id":%d,"text":"one"}`, task.ID)))
	count := func() int {
		page, err := svc.Notes(context.Background(), task.ID, "", tasks.MaxListLimit)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Notes)
	}
	notes := count()
	_, before, _ := svc.Events(context.Background(), 0, 1000)
	id := task.ID
	for _, tc := range []struct {
		tool, args string
		want       []string
	}{
		{"add_note", `{}`, []string{"task_id", "text"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d}`, id), []string{"text"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":""}`, id), []string{"text"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":" \n "}`, id), []string{"text", "empty"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":%q}`, id, strings.Repeat("x", tasks.MaxNoteText+1)), []string{"text"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":%q}`, id, strings.Repeat("x", 100<<10)), []string{"text"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":%q}`, id, strings.Repeat("😀", tasks.MaxNoteTextBytes/4+1)), []string{"text", "bytes"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":"a\u0000b"}`, id), []string{"text", "NUL"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":5}`, id), []string{"text"}},
		{"add_note", fmt.Sprintf(`{"task_id":"%d","text":"x"}`, id), []string{"task_id"}},
		{"add_note", `{"task_id":0,"text":"x"}`, []string{"task_id"}},
		{"add_note", `{"task_id":99,"text":"x"}`, []string{"task_id", "not found"}},
		{"add_note", fmt.Sprintf(`{"task_id":%d,"text":"x","author":"mallory"}`, id), []string{"author"}},
		{"list_notes", `{}`, []string{"task_id"}},
		{"list_notes", fmt.Sprintf(`{"task_id":%d,"limit":0}`, id), []string{"limit"}},
		{"list_notes", fmt.Sprintf(`{"task_id":%d,"limit":501}`, id), []string{"limit"}},
		{"list_notes", fmt.Sprintf(`{"task_id":%d,"cursor":"bogus"}`, id), []string{"cursor"}},
		{"list_notes", `{"task_id":99}`, []string{"task_id", "not found"}},
	} {
		t.Run(tc.tool+" "+tc.args[:min(len(tc.args), 60)], func(t *testing.T) {
			failed(t, callTool(t, c, tc.tool, tc.args), tc.want...)
		})
	}
	if _, after, _ := svc.Events(context.Background(), 0, 1000); after != before {
		t.Errorf("failed calls changed something: last seq %d, was %d", after, before)
	}
	if now := count(); now != notes {
		t.Errorf("%d notes after failed calls, were %d", now, notes)
	}
}
