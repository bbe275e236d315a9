package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"taskhub/tasks"
)

// allNotes returns every note of the task with id, by the store's own paging.
func allNotes(t *testing.T, store tasks.Store, id int64) []*tasks.Note {
	t.Helper()
	var all []*tasks.Note
	q := tasks.NoteQuery{TaskID: id, Limit: 100}
	for {
		notes, err := store.Notes(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, notes...)
		if len(notes) < q.Limit {
			return all
		}
		q.After = notes[len(notes)-1].ID
	}
}

func addNote(t *testing.T, svc *tasks.Service, who string, id int64, text string) *tasks.Note {
	t.Helper()
	n, err := svc.AddNote(as(who), id, text)
	if err != nil {
		t.Fatalf("add note: %v", err)
	}
	return n
}

// testNotes adds notes to two tasks and reads them back: as they were written, in
// order, page by page, each with its event, which filters match on the task's values.
func testNotes(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	ctx := context.Background()
	a := create(t, svc, tasks.Update{Project: tasks.Value("p"), Assignee: tasks.Value("bob"), Labels: tasks.Value([]string{"x"})})
	b := create(t, svc, tasks.Update{})
	written := []*tasks.Note{
		addNote(t, svc, "alice", a.ID, "  first: ünïcode, \"quoted\", <b>  "),
		addNote(t, svc, "bob", b.ID, "on b"),
		addNote(t, svc, "bob", a.ID, "second\nline two"),
		addNote(t, svc, "carol", a.ID, "third"),
	}
	if written[0].Text != `first: ünïcode, "quoted", <b>` || written[0].Author != "alice" || written[0].TaskID != a.ID {
		t.Errorf("added %+v", written[0])
	}
	for i := 1; i < len(written); i++ {
		if written[i].ID <= written[i-1].ID {
			t.Errorf("note ids %d then %d: want each above the one before", written[i-1].ID, written[i].ID)
		}
	}

	got := allNotes(t, store, a.ID)
	want := []*tasks.Note{written[0], written[2], written[3]}
	if fmt.Sprint(deref(got)) != fmt.Sprint(deref(want)) {
		t.Errorf("notes of task %d:\n got %+v\nwant %+v", a.ID, deref(got), deref(want))
	}
	if page, err := store.Notes(ctx, tasks.NoteQuery{TaskID: a.ID, After: written[0].ID, Limit: 1}); err != nil || len(page) != 1 || page[0].ID != written[2].ID {
		t.Errorf("one note of task %d after note %d: %v, %v; want note %d", a.ID, written[0].ID, deref(page), err, written[2].ID)
	}
	if none, err := store.Notes(ctx, tasks.NoteQuery{TaskID: b.ID + 100, Limit: 10}); err != nil || none == nil || len(none) != 0 {
		t.Errorf("notes of a task that does not exist: %v, %v; want an empty list", none, err)
	}

	// A note changes nothing of its task.
	if task, _ := store.Task(ctx, a.ID); task.Version != 1 || task.UpdatedAt != a.UpdatedAt {
		t.Errorf("task %d after its notes: version %d, updated at %s; want them as they were", a.ID, task.Version, task.UpdatedAt)
	}

	records, decoded := events(t, store)
	if len(records) != 6 {
		t.Fatalf("%d events, want 6: two creates, four notes", len(records))
	}
	for i, n := range written {
		r, e := records[2+i], decoded[2+i]
		if r.Type != tasks.EventTaskNoteAdded || r.TaskID != n.TaskID || e.Actor != n.Author || e.Source != tasks.SourceREST || e.Time != n.Time {
			t.Errorf("event of note %d: %s", n.ID, r.Data)
		}
		if e.AddedNote == nil || *e.AddedNote != *n || e.Task == nil || e.Task.ID != n.TaskID || e.Task.Version != 1 {
			t.Errorf("event of note %d: note %+v, task %+v; want the note and its task", n.ID, e.AddedNote, e.Task)
		}
	}
	wantMatch := tasks.Match{Assignees: []string{"bob"}, Projects: []string{"p"}, Statuses: []string{"todo"}, Labels: []string{"x"}}
	if fmt.Sprint(records[2].Match) != fmt.Sprint(wantMatch) {
		t.Errorf("a note's event matches on %+v, want its task's values %+v", records[2].Match, wantMatch)
	}
	for _, tc := range []struct {
		q    tasks.EventQuery
		want []int64
	}{
		{tasks.EventQuery{Types: []tasks.EventType{tasks.EventTaskNoteAdded}, Limit: 10}, []int64{3, 4, 5, 6}},
		{tasks.EventQuery{Types: []tasks.EventType{tasks.EventTaskNoteAdded}, TaskIDs: []int64{b.ID}, Limit: 10}, []int64{4}},
		{tasks.EventQuery{Projects: []string{"p"}, Limit: 10}, []int64{1, 3, 5, 6}},
	} {
		checkQuery(t, store, tc.q, tc.want)
	}
}

func deref(notes []*tasks.Note) []tasks.Note {
	out := make([]tasks.Note, len(notes))
	for i, n := range notes {
		out[i] = *n
	}
	return out
}

// testNotesGoWithTask deletes a task with notes: they go with it, and its event says
// how many; another task's notes stay, and pruning the log leaves notes alone.
func testNotesGoWithTask(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	ctx := context.Background()
	doomed, kept, bare := create(t, svc, tasks.Update{}), create(t, svc, tasks.Update{}), create(t, svc, tasks.Update{})
	for i := range 3 {
		addNote(t, svc, "alice", doomed.ID, fmt.Sprint("doomed ", i))
	}
	keptNote := addNote(t, svc, "alice", kept.ID, "kept")
	if err := svc.Delete(as("bob"), doomed.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(as("bob"), bare.ID, 0); err != nil {
		t.Fatal(err)
	}
	if left := allNotes(t, store, doomed.ID); len(left) != 0 {
		t.Errorf("the deleted task's notes are still there: %+v", deref(left))
	}
	_, decoded := events(t, store)
	deletes := map[int64]int{}
	for _, e := range decoded {
		if e.Type == tasks.EventTaskDeleted {
			if e.NotesDeleted == nil {
				t.Errorf("task_deleted event %d says nothing of notes", e.Seq)
				continue
			}
			deletes[e.TaskID] = *e.NotesDeleted
		}
	}
	if want := map[int64]int{doomed.ID: 3, bare.ID: 0}; fmt.Sprint(deletes) != fmt.Sprint(want) {
		t.Errorf("notes_deleted by task %v, want %v", deletes, want)
	}

	if _, err := store.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := allNotes(t, store, kept.ID); len(got) != 1 || *got[0] != *keptNote {
		t.Errorf("after pruning every event, task %d has notes %+v, want %+v", kept.ID, deref(got), *keptNote)
	}
	// A new note's id is above every id given before, also those of deleted notes.
	if n := addNote(t, svc, "alice", kept.ID, "after"); n.ID <= keptNote.ID {
		t.Errorf("a new note has id %d, want above %d", n.ID, keptNote.ID)
	}
}

// testNotesConcurrent has many writers add notes to one task at once: every note is
// kept once, the ids are unique, and the task's thread, its ids and the log agree on
// one order, in which each writer's notes come as it added them.
func testNotesConcurrent(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{})
	other := create(t, svc, tasks.Update{})
	const writers, each = 16, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := task.ID
				if i%5 == 4 {
					id = other.ID
				}
				if _, err := svc.AddNote(as(fmt.Sprint("w", w)), id, fmt.Sprintf("w%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	notes := allNotes(t, store, task.ID)
	if want := writers * (each - each/5); len(notes) != want {
		t.Fatalf("%d notes on task %d, want %d", len(notes), task.ID, want)
	}
	seen := map[int64]bool{}
	last := map[string]int{}
	for i, n := range notes {
		if seen[n.ID] || i > 0 && n.ID <= notes[i-1].ID {
			t.Errorf("note %d at position %d: ids must be unique and in order", n.ID, i)
		}
		seen[n.ID] = true
		var w, k int
		if _, err := fmt.Sscanf(n.Text, "w%d-%d", &w, &k); err != nil || n.Author != fmt.Sprint("w", w) {
			t.Fatalf("note %+v", *n)
		}
		if prev, ok := last[n.Author]; ok && k <= prev {
			t.Errorf("%s's note %d comes after its note %d", n.Author, k, prev)
		}
		last[n.Author] = k
	}
	// The log has the notes in the same order: the event of a note with a higher id
	// has a higher seq.
	var logged []int64
	_, decoded := events(t, store)
	for _, e := range decoded {
		if e.Type == tasks.EventTaskNoteAdded && e.TaskID == task.ID {
			logged = append(logged, e.AddedNote.ID)
		}
	}
	var ids []int64
	for _, n := range notes {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(logged, ids) {
		t.Errorf("the log has the notes in the order %v, the thread in %v", logged, ids)
	}
	if got := len(allNotes(t, store, other.ID)); got != writers*(each/5) {
		t.Errorf("%d notes on task %d, want %d", got, other.ID, writers*(each/5))
	}
}

// testNoteLimitRace fills a task up to a few notes short of MaxNotesPerTask, then has
// more writers than that add one at once: exactly as many as there is room for get
// in, and the others are told the task is full.
func testNoteLimitRace(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{})
	const room, writers = 3, 12
	err := store.Write(context.Background(), func(tx tasks.Tx) error {
		at := tasks.NewTime(time.Now())
		for i := range tasks.MaxNotesPerTask - room {
			if err := tx.AddNote(&tasks.Note{TaskID: task.ID, Author: "filler", Time: at, Text: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, before := events(t, store)
	won := race(t, writers, tasks.EConflict, func(i int) error {
		_, err := svc.AddNote(as(fmt.Sprint("w", i)), task.ID, "one more")
		return err
	})
	if won != room {
		t.Errorf("%d notes went in with room for %d", won, room)
	}
	if got := len(allNotes(t, store, task.ID)); got != tasks.MaxNotesPerTask {
		t.Errorf("%d notes, want %d", got, tasks.MaxNotesPerTask)
	}
	if _, after := events(t, store); len(after) != len(before)+room {
		t.Errorf("%d events appended, want %d: one for each note added", len(after)-len(before), room)
	}
}
