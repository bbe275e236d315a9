package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/postgres"
	"taskhub/tasks/postgres/pgtest"
	"taskhub/tasks/sqlite"

	"github.com/jackc/pgx/v5"
)

// TestMigrateDB copies an SQLite database with a history (labels, dependencies, a
// parent of higher id than its child, updates, notes, a delete, file events, pruned
// events) into PostgreSQL: tasks, notes and events are equal, byte for byte, the seqs
// and ids go on from where they were, and a second copy into the same database is
// refused.
func TestMigrateDB(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "taskhub.db")
	src, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	svc := tasks.NewService(src)
	as := func(name string) context.Context {
		return tasks.WithActor(ctx, tasks.Actor{Source: tasks.SourceREST, Name: name})
	}
	create := func(u tasks.Update) *tasks.Task {
		t.Helper()
		task, err := svc.Create(as("ann"), u)
		if err != nil {
			t.Fatal(err)
		}
		return task
	}
	update := func(task *tasks.Task, u tasks.Update) {
		t.Helper()
		if _, err := svc.Update(as("bob"), task.ID, 0, u); err != nil {
			t.Fatal(err)
		}
	}
	create(tasks.Update{Title: tasks.Value("pruned away")})
	if _, err := src.PruneEvents(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	due := tasks.NewTime(time.Date(2027, 3, 1, 12, 30, 0, 123456000, time.UTC))
	child := create(tasks.Update{Title: tasks.Value("child"), Labels: tasks.Value([]string{"b", "a"}), DueAt: tasks.Value(&due)})
	parent := create(tasks.Update{Title: tasks.Value("parent"), Project: tasks.Value("p"), Assignee: tasks.Value("cy")})
	update(child, tasks.Update{ParentID: tasks.Value(&parent.ID), Status: tasks.Value(tasks.Status("in_progress")), Note: "started"})
	create(tasks.Update{Title: tasks.Value("waits"), DependsOn: tasks.Value([]int64{child.ID, parent.ID}), Description: tasks.Value("ünïcode \"quoted\"")})
	claimed := create(tasks.Update{Title: tasks.Value("claimed")})
	if _, err := svc.Claim(as("cy"), tasks.ClaimRequest{TaskID: claimed.ID, LeaseSeconds: tasks.Value[int64](600)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReportProgress(as("cy"), claimed.ID, 30, "a third"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordFileChanges(ctx, []tasks.FileChange{
		{Dir: "/srv/repo", Path: "a.go", Op: tasks.FileWrite},
		{Dir: "/srv/repo", Path: "b.go", Op: tasks.FileRename, From: "c.go"},
	}); err != nil {
		t.Fatal(err)
	}
	last := create(tasks.Update{Title: tasks.Value("deleted"), Labels: tasks.Value([]string{"x"})})
	var lastNote *tasks.Note // the highest id given, deleted with its task
	for _, n := range []struct {
		task *tasks.Task
		text string
	}{{child, "first on the child"}, {parent, "on the parent"}, {child, "ünïcode \"quoted\"\nsecond line"}, {last, "goes with its task"}} {
		if lastNote, err = svc.AddNote(as("cy"), n.task.ID, n.text); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Delete(as("bob"), last.ID, 0); err != nil {
		t.Fatal(err)
	}
	wantTasks, wantEvents, wantFirst, wantLast := contents(t, src)
	wantNotes := notesOf(t, src, wantTasks)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if wantFirst == 1 || len(wantTasks) != 5 || len(wantEvents) < 6 {
		t.Fatalf("the source has %d tasks, %d events from seq %d: want 5 tasks, some events, and the first pruned", len(wantTasks), len(wantEvents), wantFirst)
	}

	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"migrate-db", "--from", path, "--to", dsn}, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate-db: exit %d, stderr %q", code, stderr.String())
	}
	if want := "copied 5 tasks (2 labels, 2 dependencies, 3 notes) and "; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("migrate-db printed %q, want it to begin %q", stdout.String(), want)
	}

	dst, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	gotTasks, gotEvents, gotFirst, gotLast := contents(t, dst)
	if a, b := mustJSON(t, gotTasks), mustJSON(t, wantTasks); a != b {
		t.Errorf("tasks after the copy:\n%s\nwant\n%s", a, b)
	}
	if a, b := mustJSON(t, notesOf(t, dst, gotTasks)), mustJSON(t, wantNotes); a != b {
		t.Errorf("notes after the copy:\n%s\nwant\n%s", a, b)
	}
	for i := range min(len(gotTasks), len(wantTasks)) {
		if got, want := gotTasks[i].LeaseLength, wantTasks[i].LeaseLength; got != want {
			t.Errorf("task %d: lease length %s after the copy, want %s", wantTasks[i].ID, got, want)
		}
	}
	if c := wantTasks[len(wantTasks)-1]; c.LeaseExpiresAt == nil || c.LeaseLength != 10*time.Minute || c.Progress != 30 {
		t.Errorf("the claimed task in the source: %+v", c)
	}
	if !reflect.DeepEqual(gotEvents, wantEvents) {
		t.Errorf("events after the copy:\n%s\nwant\n%s", recordsText(gotEvents), recordsText(wantEvents))
	}
	if gotFirst != wantFirst || gotLast != wantLast {
		t.Errorf("first and last seq after the copy %d and %d, want %d and %d", gotFirst, gotLast, wantFirst, wantLast)
	}
	// The columns that no read returns, which pruning reads: as in the event's JSON.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var off int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events
		WHERE time <> (data ->> 'time')::timestamptz OR actor <> data ->> 'actor'`).Scan(&off); err != nil || off != 0 {
		t.Errorf("%d events whose time or actor column differs from their JSON (err %v)", off, err)
	}

	next, err := tasks.NewService(dst).Create(as("dee"), tasks.Update{Title: tasks.Value("new")})
	if err != nil {
		t.Fatal(err)
	}
	if next.ID <= last.ID {
		t.Errorf("a new task's id is %d, want above %d, the last one given", next.ID, last.ID)
	}
	records, err := dst.Events(ctx, tasks.EventQuery{After: wantLast, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 || records[0].Seq != wantLast+1 || records[0].TaskID != next.ID {
		t.Errorf("events after seq %d: %s, want the new task's, seq %d", wantLast, recordsText(records), wantLast+1)
	}
	note, err := tasks.NewService(dst).AddNote(as("dee"), next.ID, "new")
	if err != nil {
		t.Fatal(err)
	}
	if note.ID <= lastNote.ID {
		t.Errorf("a new note's id is %d, want above %d, the last one given", note.ID, lastNote.ID)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, []string{"migrate-db", "--from", path, "--to", dsn}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already has tasks or events") {
		t.Errorf("a second migrate-db: exit %d, stderr %q; want 1 and a refusal", code, stderr.String())
	}
	if after, _, _, seq := contents(t, dst); len(after) != 6 || seq != wantLast+2 {
		t.Errorf("after the refused copy: %d tasks and last seq %d, want 6 and %d, unchanged", len(after), seq, wantLast+2)
	}
}

// TestMigrateDBUsage checks the arguments before anything is opened.
func TestMigrateDBUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.db")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no from", []string{"--to", "postgres://localhost/x"}, 2, "--from is required"},
		{"to not postgres", []string{"--from", missing, "--to", "other.db"}, 2, "--to must be a postgres://"},
		{"from missing", []string{"--from", missing, "--to", "postgres://localhost/x"}, 1, "--from: stat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"migrate-db"}, tc.args...), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Errorf("the missing --from file: %v, want it still missing", err)
			}
		})
	}
}

// contents reads everything st holds.
func contents(t *testing.T, st tasks.Store) (list []*tasks.Task, events []tasks.Record, first, last int64) {
	t.Helper()
	ctx := context.Background()
	list, err := st.Tasks(ctx, tasks.TaskQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if events, err = st.Events(ctx, tasks.EventQuery{Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	if first, err = st.FirstSeq(ctx); err != nil {
		t.Fatal(err)
	}
	if last, err = st.LastSeq(ctx); err != nil {
		t.Fatal(err)
	}
	return list, events, first, last
}

// notesOf reads the notes of each of list from st, in the order of the list.
func notesOf(t *testing.T, st tasks.Store, list []*tasks.Task) []*tasks.Note {
	t.Helper()
	var all []*tasks.Note
	for _, task := range list {
		notes, err := st.Notes(context.Background(), tasks.NoteQuery{TaskID: task.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, notes...)
	}
	return all
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func recordsText(records []tasks.Record) string {
	var b strings.Builder
	for _, r := range records {
		fmt.Fprintf(&b, "%d %s %d %s %+v %s\n", r.Seq, r.Type, r.TaskID, r.Source, r.Match, r.Data)
	}
	return b.String()
}
