package tasklog_test

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

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

// follow runs a tailer of store's log that wakes waits, until t ends. seen receives
// the seq of each record once waits has had it.
func follow(t *testing.T, store tasks.Store, waits *broadcaster.Waits) (seen <-chan int64) {
	t.Helper()
	tailer, err := tasks.NewTailer(context.Background(), store, tasks.TailerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan int64, 100)
	tailer.Listen(tasklog.Wake(waits))
	tailer.Listen(func(r *tasks.Record) { ch <- r.Seq })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tailer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// waitFor receives from seen until seq has come.
func waitFor(t *testing.T, seen <-chan int64, seq int64) {
	t.Helper()
	for s := range seen {
		if s >= seq {
			return
		}
	}
}

type waitAnswer struct {
	events []tasks.Record
	last   int64
	err    error
}

// TestWait: a call waits through a commit its filter does not match and returns on
// the first one it does, with that event; with nothing after its seq it answers at
// once without waiting; and a refused argument is refused before it waits.
func TestWait(t *testing.T) {
	store := openStore(t)
	svc := tasks.NewService(store)
	waits := broadcaster.NewWaits(broadcaster.WaitsConfig{})
	seen := follow(t, store, waits)
	a, err := svc.Create(as("alice"), tasks.Update{Title: tasks.Value("a")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Create(as("alice"), tasks.Update{Title: tasks.Value("b")})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, seen, 2)

	req := tasklog.WaitRequest{Owner: "alice", After: 2, Filter: broadcaster.Filter{TaskIDs: []int64{a.ID}, Statuses: []string{"done"}},
		Limit: 10, Timeout: time.Minute}
	answer := make(chan waitAnswer, 1)
	go func() {
		events, last, err := tasklog.Wait(context.Background(), svc, waits, req)
		answer <- waitAnswer{events, last, err}
	}()
	for waits.Waiting() == 0 {
		runtime.Gosched()
	}
	if _, err := svc.Update(as("bob"), b.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(as("bob"), a.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusReview)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, seen, 4)
	select {
	case got := <-answer:
		t.Fatalf("returned on events it does not match: %+v", got)
	default:
	}
	start := time.Now()
	if _, err := svc.Update(as("bob"), a.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	got := <-answer
	if got.err != nil || len(got.events) != 1 || got.events[0].Seq != 5 || got.last != 5 {
		t.Fatalf("Wait = %d events, last %d, %v; want event 5", len(got.events), got.last, got.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("returned %s after the commit", took)
	}
	if waits.Waiting() != 0 {
		t.Errorf("%d calls still waiting", waits.Waiting())
	}

	// Events there already: at once.
	req.After = 0
	if events, last, err := tasklog.Wait(context.Background(), svc, waits, req); err != nil || len(events) != 1 || last != 5 {
		t.Errorf("with the event in the log: %d events, last %d, %v", len(events), last, err)
	}
	// No wait asked for: at once, with where the log ends.
	req.After, req.Timeout = 5, 0
	if events, last, err := tasklog.Wait(context.Background(), svc, waits, req); err != nil || len(events) != 0 || last != 5 {
		t.Errorf("without a wait: %d events, last %d, %v", len(events), last, err)
	}
	// A bad argument, even from an owner at its bound, is the argument's error.
	full := broadcaster.NewWaits(broadcaster.WaitsConfig{Max: 1})
	req.Timeout, req.Filter = time.Minute, broadcaster.Filter{Statuses: []string{"doing"}}
	if _, _, err := tasklog.Wait(context.Background(), svc, full, req); tasks.ErrorCode(err) != tasks.EInvalid {
		t.Errorf("a bad status: %v, want invalid_argument", err)
	}
}
