package tasklog_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

func openStore(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "taskhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func as(name string) context.Context {
	return tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceMCP, Name: name})
}

// TestQueryAgreesWithFilter: the log, read with Query(f), holds exactly the events
// the stream's filter f lets through, so that a waiting call woken by f finds what
// woke it, and a list and a stream with the same filters agree.
func TestQueryAgreesWithFilter(t *testing.T) {
	store := openStore(t)
	svc := tasks.NewService(store)
	ctx := context.Background()
	a, err := svc.Create(as("alice"), tasks.Update{Title: tasks.Value("a"), Project: tasks.Value("p"), Labels: tasks.Value([]string{"x", "y"})})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Create(as("bob"), tasks.Update{Title: tasks.Value("b"), Project: tasks.Value("q"), Assignee: tasks.Value("bob")})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		id int64
		u  tasks.Update
	}{
		{a.ID, tasks.Update{Status: tasks.Value(tasks.StatusInProgress), Assignee: tasks.Value("alice")}},
		{b.ID, tasks.Update{Project: tasks.Value("p"), Labels: tasks.Value([]string{"y"})}},
		{a.ID, tasks.Update{Labels: tasks.Value([]string{"z"}), Assignee: tasks.Value("")}},
		{b.ID, tasks.Update{Status: tasks.Value(tasks.StatusDone)}},
	} {
		if _, err := svc.Update(as("carol"), step.id, 0, step.u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.RecordFileChange(ctx, tasks.FileChange{Dir: "/w", Path: "a.md", Op: tasks.FileWrite}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(as("alice"), a.ID, 0); err != nil {
		t.Fatal(err)
	}
	all, _, err := svc.EventsFor(ctx, tasks.EventQuery{Limit: tasks.MaxEventsLimit})
	if err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, f := range []broadcaster.Filter{
		{},
		{TaskIDs: []int64{a.ID}}, {TaskIDs: []int64{a.ID, b.ID}},
		{Types: []string{"task_updated"}}, {Types: []string{"file_changed", "task_deleted"}},
		{Sources: []string{"mcp_tool"}}, {Sources: []string{"file_watch"}},
		{Projects: []string{"p"}}, {Projects: []string{"q"}}, {Projects: []string{"q", "r"}},
		{Assignees: []string{"alice"}}, {Assignees: []string{"bob"}}, {Assignees: []string{""}},
		{Statuses: []string{"todo"}}, {Statuses: []string{"done"}}, {Statuses: []string{"in_progress", "review"}},
		{Labels: []string{"x"}}, {Labels: []string{"z"}}, {Labels: []string{"y", "w"}},
		{Projects: []string{"p"}, Statuses: []string{"in_progress"}, Types: []string{"task_updated"}},
		{TaskIDs: []int64{b.ID}, Labels: []string{"y"}},
	} {
		got, _, err := svc.EventsFor(ctx, tasklog.Query(0, f, tasks.MaxEventsLimit))
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var want, have []int64
		for i := range all {
			if e := tasklog.Event(&all[i]); f.Match(&e) {
				want = append(want, all[i].Seq)
			}
		}
		for _, r := range got {
			have = append(have, r.Seq)
		}
		if !slices.Equal(have, want) {
			t.Errorf("%+v: the log gives %v, the filter lets through %v", f, have, want)
		}
		if len(want) > 0 {
			matched++
		}
	}
	if matched < 18 {
		t.Errorf("only %d filters match any event: the cases test little", matched)
	}
}
