package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"taskhub/migrations"
	"taskhub/tasks"
	"taskhub/tasks/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tasks.Store {
		return openTest(t, filepath.Join(t.TempDir(), "taskhub.db"))
	})
}

// TestMigrateEventRecords opens a database written before events kept their JSON: the
// events it has are read back as records equal to those written today.
func TestMigrateEventRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	first, err := fs.ReadFile(migrations.SQLite, "0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), old, fstest.MapFS{"0001_init.sql": {Data: first}}); err != nil {
		t.Fatal(err)
	}
	task := `{"id":1,"title":"a \"quoted\" <title>","description":"","status":"in_progress","priority":"medium","assignee":"bob","project":"p","labels":["y"],"parent_id":null,"depends_on":[],"due_at":null,"version":2,"created_at":"2026-11-21T05:00:00.000000Z","updated_at":"2026-11-21T05:00:01.000000Z","created_by":"alice","updated_by":"bob"}`
	_, err = old.Exec(`INSERT INTO events (type, task_id, source, actor, time, body) VALUES
		('task_updated', 1, 'rest_api', 'bob', '2026-11-21T05:00:01.000000Z', ?),
		('file_changed', NULL, 'file_watch', 'file_watch', '2026-11-21T05:00:02.000000Z', '{"file":{"dir":"/w","path":"a.md","op":"write"}}')`,
		`{"task":`+task+`,"changes":{"assignee":["alice","bob"],"labels":[["x","y"],["y"]],"status":["todo","in_progress"]},"note":"n"}`)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	db := openTest(t, path)
	records, err := db.Events(context.Background(), tasks.EventQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("%d records, want 2", len(records))
	}
	wantData := []string{
		`{"seq":1,"type":"task_updated","task_id":1,"source":"rest_api","actor":"bob","time":"2026-11-21T05:00:01.000000Z","task":` + task +
			`,"changes":{"assignee":["alice","bob"],"labels":[["x","y"],["y"]],"status":["todo","in_progress"]},"note":"n"}`,
		`{"seq":2,"type":"file_changed","source":"file_watch","actor":"file_watch","time":"2026-11-21T05:00:02.000000Z","file":{"dir":"/w","path":"a.md","op":"write"}}`,
	}
	wantMatch := []tasks.Match{
		{Assignees: []string{"bob", "alice"}, Projects: []string{"p"}, Statuses: []string{"in_progress", "todo"}, Labels: []string{"x", "y"}},
		{},
	}
	for i, r := range records {
		if string(r.Data) != wantData[i] {
			t.Errorf("event %d:\n got %s\nwant %s", r.Seq, r.Data, wantData[i])
		}
		var e tasks.Event
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Errorf("event %d does not decode: %v", r.Seq, err)
		}
		if fmt.Sprint(r.Match) != fmt.Sprint(wantMatch[i]) {
			t.Errorf("event %d matches on %+v, want %+v", r.Seq, r.Match, wantMatch[i])
		}
	}
	// The log goes on where it was.
	if _, err := tasks.NewService(db).RecordFileChange(context.Background(), tasks.FileChange{Dir: "/w", Path: "b.md", Op: tasks.FileCreate}); err != nil {
		t.Fatal(err)
	}
	if last, _ := db.LastSeq(context.Background()); last != 3 {
		t.Errorf("LastSeq %d, want 3", last)
	}
}
