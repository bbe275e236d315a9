package tasks_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"taskhub/tasks"
	"taskhub/tasks/sqlite"
	"taskhub/tasks/storetest"
)

// newService returns a Service over a fresh database file, and the file's path.
func newService(t testing.TB) (*tasks.Service, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "taskhub.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return tasks.NewService(db), path
}

// rawDB opens a second, plain connection to the file, to look behind the store's back
// or to sabotage it with triggers.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func create(t *testing.T, svc *tasks.Service, u tasks.Update) *tasks.Task {
	t.Helper()
	if !u.Title.Set {
		u.Title = tasks.Value("a task")
	}
	task, err := svc.Create(context.Background(), u)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return task
}

// wantError fails t unless err is a *tasks.Error with code and field.
func wantError(t *testing.T, err error, code, field string) {
	t.Helper()
	e, ok := errors.AsType[*tasks.Error](err)
	if !ok {
		t.Fatalf("got error %v, want a %s error on %q", err, code, field)
	}
	if e.Code != code || e.Field != field {
		t.Fatalf("got %s on %q (%s), want %s on %q", e.Code, e.Field, e.Message, code, field)
	}
}

func allEvents(t *testing.T, svc *tasks.Service) []tasks.Event {
	t.Helper()
	records, _, err := svc.Events(context.Background(), 0, tasks.MaxEventsLimit)
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Decode(t, records)
}

func TestCreateDefaults(t *testing.T) {
	svc, _ := newService(t)
	ctx := tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: "alice"})
	got, err := svc.Create(ctx, tasks.Update{
		Title:  tasks.Value("  Write docs  "),
		Labels: tasks.Value([]string{"b", " a ", "b"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID < 1 || got.Version != 1 || got.Title != "Write docs" || got.Status != tasks.StatusTodo ||
		got.Priority != tasks.PriorityMedium || !slices.Equal(got.Labels, []string{"a", "b"}) ||
		got.DependsOn == nil || got.ParentID != nil || got.DueAt != nil ||
		got.CreatedBy != "alice" || got.UpdatedBy != "alice" || got.CreatedAt != got.UpdatedAt {
		t.Errorf("created %+v", got)
	}
	stored, err := svc.Get(context.Background(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !equalTasks(stored, got) {
		t.Errorf("stored %+v\nreturned %+v", stored, got)
	}
	events := allEvents(t, svc)
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	e := events[0]
	if e.Type != tasks.EventTaskCreated || e.TaskID != got.ID || e.Source != tasks.SourceREST ||
		e.Actor != "alice" || !equalTasks(e.Task, got) || e.Time != got.CreatedAt {
		t.Errorf("event %+v", e)
	}
}

func equalTasks(a, b *tasks.Task) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Description == b.Description && a.Status == b.Status &&
		a.Priority == b.Priority && a.Assignee == b.Assignee && a.Project == b.Project &&
		slices.Equal(a.Labels, b.Labels) && slices.Equal(a.DependsOn, b.DependsOn) &&
		equalPtr(a.ParentID, b.ParentID) && equalPtr(a.DueAt, b.DueAt) && a.Version == b.Version &&
		a.CreatedAt.Equal(b.CreatedAt.Time) && a.UpdatedAt.Equal(b.UpdatedAt.Time) &&
		a.CreatedBy == b.CreatedBy && a.UpdatedBy == b.UpdatedBy
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// TestValidation checks each rule of a task, at its edge, on create and on update.
func TestValidation(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	other := create(t, svc, tasks.Update{})
	labels := func(n, size int) []string {
		l := make([]string, n)
		for i := range l {
			l[i] = strings.Repeat("x", size-1) + string(rune('a'+i))
		}
		return l
	}
	id := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name  string
		u     tasks.Update
		field string // "" when valid
	}{
		{"title empty", tasks.Update{Title: tasks.Value("")}, "title"},
		{"title blank", tasks.Update{Title: tasks.Value(" \t\n ")}, "title"},
		{"title 200 characters", tasks.Update{Title: tasks.Value(strings.Repeat("é", 200))}, ""},
		{"title 201 characters", tasks.Update{Title: tasks.Value(strings.Repeat("é", 201))}, "title"},
		{"title 200 after trimming", tasks.Update{Title: tasks.Value("  " + strings.Repeat("x", 200) + "  ")}, ""},
		{"description 64 KiB", tasks.Update{Description: tasks.Value(strings.Repeat("x", 64<<10))}, ""},
		{"description over 64 KiB", tasks.Update{Description: tasks.Value(strings.Repeat("x", 64<<10+1))}, "description"},
		{"status unknown", tasks.Update{Status: tasks.Value(tasks.Status("doing"))}, "status"},
		{"status empty", tasks.Update{Status: tasks.Value(tasks.Status(""))}, "status"},
		{"priority unknown", tasks.Update{Priority: tasks.Value(tasks.Priority("asap"))}, "priority"},
		{"assignee 100", tasks.Update{Assignee: tasks.Value(strings.Repeat("a", 100))}, ""},
		{"assignee 101", tasks.Update{Assignee: tasks.Value(strings.Repeat("a", 101))}, "assignee"},
		{"project 100", tasks.Update{Project: tasks.Value(strings.Repeat("p", 100))}, ""},
		{"project 101", tasks.Update{Project: tasks.Value(strings.Repeat("p", 101))}, "project"},
		{"20 labels of 50", tasks.Update{Labels: tasks.Value(labels(20, 50))}, ""},
		{"21 labels", tasks.Update{Labels: tasks.Value(labels(21, 5))}, "labels"},
		{"21 labels, 20 unique", tasks.Update{Labels: tasks.Value(append(labels(20, 5), labels(1, 5)...))}, ""},
		{"label of 51", tasks.Update{Labels: tasks.Value(labels(1, 51))}, "labels"},
		{"label empty", tasks.Update{Labels: tasks.Value([]string{"ok", " "})}, "labels"},
		{"depends_on missing", tasks.Update{DependsOn: tasks.Value([]int64{other.ID, 9999})}, "depends_on"},
		{"depends_on repeated", tasks.Update{DependsOn: tasks.Value(slices.Repeat([]int64{other.ID}, 101))}, ""},
		{"parent missing", tasks.Update{ParentID: tasks.Value(id(9999))}, "parent_id"},
		{"parent exists", tasks.Update{ParentID: tasks.Value(id(other.ID))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := allEvents(t, svc)
			u := tc.u
			if !u.Title.Set {
				u.Title = tasks.Value("title")
			}
			_, err := svc.Create(ctx, u)
			checkValid(t, "create", err, tc.field)
			target := create(t, svc, tasks.Update{})
			_, err = svc.Update(ctx, target.ID, 0, tc.u)
			checkValid(t, "update", err, tc.field)
			if tc.field != "" {
				if got, _ := svc.Get(ctx, target.ID); !equalTasks(got, target) {
					t.Errorf("a refused update changed the task: %+v", got)
				}
				if got := len(allEvents(t, svc)); got != len(before)+1 { // +1: the target's creation
					t.Errorf("refused changes appended %d events", got-len(before)-1)
				}
			}
		})
	}
}

func checkValid(t *testing.T, op string, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("%s: %v", op, err)
		}
		return
	}
	e, ok := errors.AsType[*tasks.Error](err)
	if !ok || e.Code != tasks.EInvalid || e.Field != field {
		t.Errorf("%s: got %v, want invalid_argument on %s", op, err, field)
	}
}

func TestDependencyCycles(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	a := create(t, svc, tasks.Update{})
	b := create(t, svc, tasks.Update{DependsOn: tasks.Value([]int64{a.ID})})
	c := create(t, svc, tasks.Update{DependsOn: tasks.Value([]int64{b.ID})})

	_, err := svc.Update(ctx, a.ID, 0, tasks.Update{DependsOn: tasks.Value([]int64{a.ID})})
	wantError(t, err, tasks.EInvalid, "depends_on")

	_, err = svc.Update(ctx, a.ID, 0, tasks.Update{DependsOn: tasks.Value([]int64{c.ID})})
	wantError(t, err, tasks.EInvalid, "depends_on")
	if want := "1 → 3 → 2 → 1"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not show the cycle %s", err, want)
	}

	// A diamond is not a cycle.
	d := create(t, svc, tasks.Update{DependsOn: tasks.Value([]int64{b.ID, c.ID})})
	if _, err := svc.Update(ctx, d.ID, 0, tasks.Update{DependsOn: tasks.Value([]int64{a.ID, b.ID, c.ID})}); err != nil {
		t.Errorf("diamond: %v", err)
	}

	// Parents: no task may become its own ancestor.
	pa := func(id int64) tasks.Field[*int64] { return tasks.Value(&id) }
	child := create(t, svc, tasks.Update{ParentID: pa(a.ID)})
	grandchild := create(t, svc, tasks.Update{ParentID: pa(child.ID)})
	_, err = svc.Update(ctx, a.ID, 0, tasks.Update{ParentID: pa(grandchild.ID)})
	wantError(t, err, tasks.EInvalid, "parent_id")
	_, err = svc.Update(ctx, a.ID, 0, tasks.Update{ParentID: pa(a.ID)})
	wantError(t, err, tasks.EInvalid, "parent_id")
}

func TestDeleteRefusesReferencedTasks(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	a := create(t, svc, tasks.Update{})
	b := create(t, svc, tasks.Update{DependsOn: tasks.Value([]int64{a.ID})})
	p := create(t, svc, tasks.Update{})
	create(t, svc, tasks.Update{ParentID: tasks.Value(&p.ID)})

	wantError(t, svc.Delete(ctx, a.ID, 0), tasks.EConflict, "")
	wantError(t, svc.Delete(ctx, p.ID, 0), tasks.EConflict, "")
	if err := svc.Delete(ctx, b.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, a.ID, 0); err != nil {
		t.Errorf("a is free once b is gone: %v", err)
	}
	wantError(t, svc.Delete(ctx, a.ID, 0), tasks.ENotFound, "")
	records, err := svc.TaskEvents(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	history := storetest.Decode(t, records)
	if got := []tasks.EventType{history[0].Type, history[len(history)-1].Type}; got[0] != tasks.EventTaskCreated || got[1] != tasks.EventTaskDeleted {
		t.Errorf("history of a deleted task: %v", got)
	}
}

func TestUpdateEvent(t *testing.T) {
	svc, _ := newService(t)
	ctx := tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceMCP, Name: "claude-code"})
	task := create(t, svc, tasks.Update{Labels: tasks.Value([]string{"x"}), Assignee: tasks.Value("bob")})

	same, err := svc.Update(ctx, task.ID, 1, tasks.Update{Assignee: tasks.Value("bob"), Labels: tasks.Value([]string{"x", "x"})})
	if err != nil {
		t.Fatal(err)
	}
	if same.Version != 1 || len(allEvents(t, svc)) != 1 {
		t.Errorf("an update that changes nothing made version %d and %d events", same.Version, len(allEvents(t, svc)))
	}

	got, err := svc.Update(ctx, task.ID, 1, tasks.Update{Status: tasks.Value(tasks.StatusDone), Labels: tasks.Value[[]string](nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.UpdatedBy != "claude-code" || got.CreatedBy != "system" || len(got.Labels) != 0 || got.Labels == nil {
		t.Errorf("updated %+v", got)
	}
	events := allEvents(t, svc)
	e := events[len(events)-1]
	want := map[string][2]string{"status": {`"todo"`, `"done"`}, "labels": {`["x"]`, `[]`}}
	if e.Type != tasks.EventTaskUpdated || e.Source != tasks.SourceMCP || e.Actor != "claude-code" || len(e.Changes) != len(want) {
		t.Fatalf("event %+v", e)
	}
	for field, w := range want {
		if c := e.Changes[field]; string(c[0]) != w[0] || string(c[1]) != w[1] {
			t.Errorf("changes[%s] = %s, %s; want %s, %s", field, c[0], c[1], w[0], w[1])
		}
	}
}

// TestChangeAndEventAreOneTransaction makes SQLite itself refuse one half of a change,
// with a trigger, and checks that the other half is not kept either.
func TestChangeAndEventAreOneTransaction(t *testing.T) {
	for _, tc := range []struct {
		name, trigger string
	}{
		{"event refused", "CREATE TRIGGER sabotage BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'no events'); END"},
		{"task refused", "CREATE TRIGGER sabotage BEFORE UPDATE ON tasks BEGIN SELECT RAISE(ABORT, 'no updates'); END"},
		{"labels refused", "CREATE TRIGGER sabotage BEFORE INSERT ON task_labels BEGIN SELECT RAISE(ABORT, 'no labels'); END"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, path := newService(t)
			ctx := context.Background()
			task := create(t, svc, tasks.Update{})
			raw := rawDB(t, path)
			if _, err := raw.Exec(tc.trigger); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Update(ctx, task.ID, 0, tasks.Update{Title: tasks.Value("new"), Labels: tasks.Value([]string{"l"})}); err == nil {
				t.Fatal("update succeeded through the trigger")
			}
			if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("new"), Labels: tasks.Value([]string{"l"})}); err == nil && tc.name != "task refused" {
				t.Fatal("create succeeded through the trigger")
			}
			if _, err := raw.Exec("DROP TRIGGER sabotage"); err != nil {
				t.Fatal(err)
			}
			var tasksN, eventsN, labelsN int
			if err := raw.QueryRow("SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM events), (SELECT count(*) FROM task_labels)").Scan(&tasksN, &eventsN, &labelsN); err != nil {
				t.Fatal(err)
			}
			wantTasks := 1
			if tc.name == "task refused" { // the trigger blocks updates only: the create went through
				wantTasks = 2
			}
			if tasksN != wantTasks || eventsN != tasksN || labelsN != tasksN-1 {
				t.Errorf("after refused changes: %d tasks, %d events, %d labels", tasksN, eventsN, labelsN)
			}
			if got, _ := svc.Get(ctx, task.ID); !equalTasks(got, task) {
				t.Errorf("task changed: %+v", got)
			}
		})
	}
}

// TestFailureInBatchIsolated runs many concurrent writes, of which those on one task
// fail inside SQLite, and checks that the failures undo only themselves even though
// the writes share transactions.
func TestFailureInBatchIsolated(t *testing.T) {
	svc, path := newService(t)
	ctx := context.Background()
	good := create(t, svc, tasks.Update{})
	bad := create(t, svc, tasks.Update{})
	raw := rawDB(t, path)
	trigger := fmt.Sprintf("CREATE TRIGGER sabotage BEFORE INSERT ON events WHEN NEW.task_id = %d BEGIN SELECT RAISE(ABORT, 'no'); END", bad.ID)
	if _, err := raw.Exec(trigger); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := good.ID
				if (w+i)%2 == 0 {
					id = bad.ID
				}
				_, err := svc.Update(ctx, id, 0, tasks.Update{Description: tasks.Value(fmt.Sprintf("writer %d, change %d", w, i))})
				if (err != nil) != (id == bad.ID) {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected outcome: %v", err)
	}
	g, _ := svc.Get(ctx, good.ID)
	b, _ := svc.Get(ctx, bad.ID)
	if g.Version != 1+writers*each/2 || b.Version != 1 {
		t.Errorf("versions: good %d, bad %d", g.Version, b.Version)
	}
	if n := len(allEvents(t, svc)); n != 2+writers*each/2 {
		t.Errorf("%d events, want %d", n, 2+writers*each/2)
	}
}

// TestIfVersionRace has 8 writers update the same task from the same version, round
// after round: exactly one wins each round, the others are told the version moved.
func TestIfVersionRace(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	task := create(t, svc, tasks.Update{})
	for round := range 20 {
		version := int64(round + 1)
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				<-start
				// A value no earlier round set: an update that changes nothing succeeds at any version.
				assignee := fmt.Sprintf("agent-%d-%d", round, w)
				_, err := svc.Update(ctx, task.ID, version, tasks.Update{Assignee: tasks.Value(assignee)})
				results <- err
			})
		}
		close(start)
		wg.Wait()
		close(results)
		wins := 0
		for err := range results {
			switch tasks.ErrorCode(err) {
			case "":
				wins++
			case tasks.EPreconditionFailed:
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins)
		}
	}
	if got, _ := svc.Get(ctx, task.ID); got.Version != 21 {
		t.Errorf("version %d after 20 rounds, want 21", got.Version)
	}
}

func TestListPaging(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	for i := range 7 {
		create(t, svc, tasks.Update{Project: tasks.Value([]string{"a", "b"}[i%2])})
	}
	var seen []int64
	f := tasks.Filter{Project: "a", Limit: 2}
	for {
		page, err := svc.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range page.Tasks {
			seen = append(seen, task.ID)
		}
		if page.NextCursor == "" {
			break
		}
		create(t, svc, tasks.Update{Project: tasks.Value("a")}) // appears on a later page
		f.Cursor = page.NextCursor
	}
	if want := []int64{1, 3, 5, 7, 8, 9}; !slices.Equal(seen, want) {
		t.Errorf("paged through %v, want %v", seen, want)
	}
	for _, f := range []tasks.Filter{{Limit: 0}, {Limit: 501}, {Limit: 1, Cursor: "nope"}, {Limit: 1, Text: strings.Repeat("q", 201)}} {
		if _, err := svc.List(ctx, f); tasks.ErrorCode(err) != tasks.EInvalid {
			t.Errorf("List(%+v): %v, want invalid_argument", f, err)
		}
	}
}

func TestCancelledWriteChangesNothing(t *testing.T) {
	svc, _ := newService(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("never")}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if n := len(allEvents(t, svc)); n != 0 {
		t.Errorf("%d events after a cancelled create", n)
	}
}
