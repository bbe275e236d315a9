// Package storetest is the conformance suite of tasks.Store: what the Service and the
// Tailer rely on, checked against a real store. Every store runs it from its own
// tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tasks.Store { return openTestDB(t) })
//	}
//
// The concurrency cases run many writers at once through the Service, so a store that
// keeps the contract only because it happens to run one Write at a time still passes
// on that store, but one that lets a check be overtaken, or gives seqs out of commit
// order, fails them.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"taskhub/tasks"
)

// Open returns a new, empty store that lives until t ends.
type Open func(t *testing.T) tasks.Store

// Run runs every case of the suite, each on a store of its own.
func Run(t *testing.T, open Open) {
	cases := []struct {
		name string
		fn   func(*testing.T, tasks.Store)
	}{
		{"ReadYourWrites", testReadYourWrites},
		{"Records", testRecords},
		{"EventQuery", testEventQuery},
		{"FailedWriteLeavesNothing", testFailedWrite},
		{"SeqsInCommitOrder", testSeqsInCommitOrder},
		{"ChangesToATaskInOrder", testChangesInOrder},
		{"VersionCheckIsAtomic", testVersionCheck},
		{"ClaimNextNeverTwice", testClaimNext},
		{"ClaimByIDOnce", testClaimByID},
		{"ReadyRule", testReadyRule},
		{"DependencyCycleRace", testDependencyCycleRace},
		{"ParentCycleRace", testParentCycleRace},
		{"Committed", testCommitted},
		{"Prune", testPrune},
		{"Notes", testNotes},
		{"NotesGoWithTask", testNotesGoWithTask},
		{"NotesConcurrent", testNotesConcurrent},
		{"NoteLimitRace", testNoteLimitRace},
		{"Values", testValues},
	}
	cases = append(cases, leaseCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func as(name string) context.Context {
	return tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: name})
}

func create(t *testing.T, svc *tasks.Service, u tasks.Update) *tasks.Task {
	t.Helper()
	if !u.Title.Set {
		u.Title = tasks.Value("a task")
	}
	task, err := svc.Create(as("alice"), u)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return task
}

func code(err error) string { return tasks.ErrorCode(err) }

// events returns every event of the store's log, as stored and decoded.
func events(t *testing.T, store tasks.Store) ([]tasks.Record, []tasks.Event) {
	t.Helper()
	records, err := store.Events(context.Background(), tasks.EventQuery{Limit: tasks.MaxEventsLimit})
	if err != nil {
		t.Fatal(err)
	}
	return records, Decode(t, records)
}

// Decode reads records back into events, after checking that each record's fields
// agree with its JSON.
func Decode(t testing.TB, records []tasks.Record) []tasks.Event {
	t.Helper()
	decoded := make([]tasks.Event, len(records))
	for i, r := range records {
		if err := json.Unmarshal(r.Data, &decoded[i]); err != nil {
			t.Fatalf("event %d: %v in %s", r.Seq, err, r.Data)
		}
		if e := decoded[i]; e.Seq != r.Seq || e.Type != r.Type || e.TaskID != r.TaskID || e.Source != r.Source {
			t.Fatalf("record %d/%s/%d/%s disagrees with its JSON %s", r.Seq, r.Type, r.TaskID, r.Source, r.Data)
		}
	}
	return decoded
}

func testReadYourWrites(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{Labels: tasks.Value([]string{"b", "a"}), Project: tasks.Value("p")})
	got, err := store.Task(context.Background(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != task.Title || !slices.Equal(got.Labels, []string{"a", "b"}) || got.Project != "p" || got.Version != 1 {
		t.Errorf("read back %+v, wrote %+v", got, task)
	}
	if _, err := store.Task(context.Background(), task.ID+1); code(err) != tasks.ENotFound {
		t.Errorf("a missing task: %v, want not_found", err)
	}
	list, err := store.Tasks(context.Background(), tasks.TaskQuery{Label: "a", Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != task.ID {
		t.Errorf("list by label: %v, %v", list, err)
	}
}

func testRecords(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{Assignee: tasks.Value("alice"), Labels: tasks.Value([]string{"x"})})
	_, err := svc.Update(as("bob"), task.ID, 0, tasks.Update{
		Assignee: tasks.Value("bob"), Status: tasks.Value(tasks.StatusInProgress), Labels: tasks.Value([]string{"y"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(as("bob"), task.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordFileChange(context.Background(), tasks.FileChange{Dir: "/w", Path: "a.md", Op: tasks.FileWrite}); err != nil {
		t.Fatal(err)
	}
	records, decoded := events(t, store)
	if len(records) != 4 {
		t.Fatalf("%d events, want 4", len(records))
	}
	for i, r := range records {
		if r.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d, want %d", i, r.Seq, i+1)
		}
	}
	wantTypes := []tasks.EventType{tasks.EventTaskCreated, tasks.EventTaskUpdated, tasks.EventTaskDeleted, tasks.EventFileChanged}
	for i, e := range decoded {
		if e.Type != wantTypes[i] {
			t.Errorf("event %d is %s, want %s", i+1, e.Type, wantTypes[i])
		}
	}
	want := []tasks.Match{
		{Assignees: []string{"alice"}, Projects: []string{""}, Statuses: []string{"todo"}, Labels: []string{"x"}},
		{Assignees: []string{"bob", "alice"}, Projects: []string{""}, Statuses: []string{"in_progress", "todo"}, Labels: []string{"y", "x"}},
		{Assignees: []string{"bob"}, Projects: []string{""}, Statuses: []string{"in_progress"}, Labels: []string{"y"}},
		{},
	}
	for i, r := range records {
		if fmt.Sprint(r.Match) != fmt.Sprint(want[i]) {
			t.Errorf("event %d matches on %+v, want %+v", r.Seq, r.Match, want[i])
		}
	}
	if decoded[1].Actor != "bob" || decoded[1].Task.Assignee != "bob" || len(decoded[1].Changes) != 3 {
		t.Errorf("update event %s", records[1].Data)
	}
	if records[3].TaskID != 0 || decoded[3].File == nil || decoded[3].File.Path != "a.md" {
		t.Errorf("file event %s", records[3].Data)
	}
}

func testEventQuery(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	a := create(t, svc, tasks.Update{Project: tasks.Value("p"), Labels: tasks.Value([]string{"x"})})
	b := create(t, svc, tasks.Update{})
	if _, err := svc.Update(as("bob"), a.ID, 0, tasks.Update{Title: tasks.Value("renamed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordFileChange(context.Background(), tasks.FileChange{Dir: "/w", Path: "a.md", Op: tasks.FileWrite}); err != nil {
		t.Fatal(err)
	}
	c := create(t, svc, tasks.Update{Project: tasks.Value("q"), Assignee: tasks.Value("alice")})
	// Event 6 moves c out of everything it was in: it matches its old values too.
	if _, err := svc.Update(as("bob"), c.ID, 0, tasks.Update{Project: tasks.Value("r"), Assignee: tasks.Value("bob"),
		Status: tasks.Value(tasks.StatusInProgress), Labels: tasks.Value([]string{"y"})}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    tasks.EventQuery
		want []int64
	}{
		{tasks.EventQuery{Limit: 10}, []int64{1, 2, 3, 4, 5, 6}},
		{tasks.EventQuery{After: 2, Limit: 10}, []int64{3, 4, 5, 6}},
		{tasks.EventQuery{Limit: 2}, []int64{1, 2}},
		{tasks.EventQuery{TaskIDs: []int64{a.ID}, Limit: 10}, []int64{1, 3}},
		{tasks.EventQuery{TaskIDs: []int64{b.ID}, Limit: 10}, []int64{2}},
		{tasks.EventQuery{TaskIDs: []int64{a.ID, c.ID}, After: 1, Limit: 10}, []int64{3, 5, 6}},
		{tasks.EventQuery{Types: []tasks.EventType{tasks.EventTaskUpdated, tasks.EventFileChanged}, Limit: 10}, []int64{3, 4, 6}},
		{tasks.EventQuery{Sources: []tasks.Source{tasks.SourceFileWatch}, Limit: 10}, []int64{4}},
		{tasks.EventQuery{Projects: []string{"p"}, Limit: 10}, []int64{1, 3}},
		{tasks.EventQuery{Projects: []string{"q"}, Limit: 10}, []int64{5, 6}},
		{tasks.EventQuery{Projects: []string{"p", "r"}, Limit: 10}, []int64{1, 3, 6}},
		{tasks.EventQuery{Assignees: []string{"alice"}, Limit: 10}, []int64{5, 6}},
		{tasks.EventQuery{Assignees: []string{"bob"}, Limit: 10}, []int64{6}},
		{tasks.EventQuery{Statuses: []tasks.Status{tasks.StatusTodo}, Limit: 10}, []int64{1, 2, 3, 5, 6}},
		{tasks.EventQuery{Statuses: []tasks.Status{tasks.StatusInProgress, tasks.StatusDone}, Limit: 10}, []int64{6}},
		{tasks.EventQuery{Labels: []string{"x"}, Limit: 10}, []int64{1, 3}},
		{tasks.EventQuery{Labels: []string{"y"}, Limit: 10}, []int64{6}},
		{tasks.EventQuery{Projects: []string{"q"}, Statuses: []tasks.Status{tasks.StatusTodo}, Types: []tasks.EventType{tasks.EventTaskCreated}, Limit: 10}, []int64{5}},
		// A file event has no task: no task filter matches it.
		{tasks.EventQuery{Types: []tasks.EventType{tasks.EventFileChanged}, Statuses: []tasks.Status{tasks.StatusTodo}, Limit: 10}, nil},
	} {
		checkQuery(t, store, tc.q, tc.want)
	}
}

// checkQuery reports an error unless the events q finds in store have the seqs want.
func checkQuery(t *testing.T, store tasks.Store, q tasks.EventQuery, want []int64) {
	t.Helper()
	records, err := store.Events(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range records {
		got = append(got, r.Seq)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%+v: seqs %v, want %v", q, got, want)
	}
}

var errAbort = errors.New("abort")

func testFailedWrite(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	create(t, svc, tasks.Update{})
	ctx := context.Background()
	err := store.Write(ctx, func(tx tasks.Tx) error {
		task := &tasks.Task{Title: "doomed", Status: tasks.StatusTodo, Priority: tasks.PriorityMedium,
			Labels: []string{}, DependsOn: []int64{}, Version: 1, CreatedAt: tasks.NewTime(time.Now()), UpdatedAt: tasks.NewTime(time.Now())}
		if err := tx.CreateTask(task); err != nil {
			return err
		}
		if err := tx.AppendEvent(&tasks.Event{Type: tasks.EventTaskCreated, TaskID: task.ID, Source: tasks.SourceSystem, Task: task}); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Write returned %v, want fn's error", err)
	}
	if list, _ := store.Tasks(ctx, tasks.TaskQuery{Limit: 10}); len(list) != 1 {
		t.Errorf("%d tasks after a failed write, want 1", len(list))
	}
	create(t, svc, tasks.Update{})
	records, _ := events(t, store)
	if len(records) != 2 || records[1].Seq != 2 {
		t.Errorf("after a failed write the log holds %v: its seq must not be used up", records)
	}
	if last, err := store.LastSeq(ctx); err != nil || last != 2 {
		t.Errorf("LastSeq %d, %v; want 2", last, err)
	}
}

// testSeqsInCommitOrder has many writers append at once while a reader follows the
// log by its last seq, as the Tailer does: every read must go on right after the last
// seq seen, with no gap that a later commit could fill.
func testSeqsInCommitOrder(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	const writers, each = 16, 25
	ctx := context.Background()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := svc.Create(as("w"), tasks.Update{Title: tasks.Value(fmt.Sprintf("w%d-%d", w, i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	var last int64
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true // one more read takes what the last writes committed
		default:
		}
		records, err := store.Events(ctx, tasks.EventQuery{After: last, Limit: tasks.MaxEventsLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			if r.Seq != last+1 {
				t.Fatalf("after seq %d the reader saw %d: seqs must follow commit order with no gap", last, r.Seq)
			}
			last = r.Seq
		}
	}
	if last != writers*each {
		t.Errorf("the reader saw %d events, want %d", last, writers*each)
	}
	if got, err := store.LastSeq(ctx); err != nil || got != last {
		t.Errorf("LastSeq %d, %v; want %d", got, err, last)
	}
}

// testChangesInOrder has many writers change one task at once, each change waiting
// for the one before it: the log must hold their events in the order they were made,
// each with the version after the one before it.
func testChangesInOrder(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{})
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := svc.Update(as("w"), task.ID, 0, tasks.Update{Description: tasks.Value(fmt.Sprintf("w%d-%d", w, i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	_, all := events(t, store)
	if len(all) != 1+writers*each {
		t.Fatalf("%d events, want %d", len(all), 1+writers*each)
	}
	for i, e := range all {
		var version int64
		if e.Task != nil {
			version = e.Task.Version
		}
		if version != int64(i+1) {
			t.Fatalf("event %d is %s of task %d at version %d, want version %d: the log must keep the order of changes",
				e.Seq, e.Type, e.TaskID, version, i+1)
		}
	}
}

// race runs attempt(0) to attempt(n-1) at once and returns how many succeeded; each
// of the others must fail with lost, the code of losing the race.
func race(t *testing.T, n int, lost string, attempt func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = attempt(i) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch code(err) {
		case "":
			won++
		case lost:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	return won
}

func testVersionCheck(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{})
	const n = 20
	won := race(t, n, tasks.EPreconditionFailed, func(i int) error {
		_, err := svc.Update(as("w"), task.ID, task.Version, tasks.Update{Description: tasks.Value(fmt.Sprint(i))})
		return err
	})
	if won != 1 {
		t.Errorf("%d updates at version %d went through, want exactly 1", won, task.Version)
	}
	if got, _ := store.Task(context.Background(), task.ID); got.Version != 2 {
		t.Errorf("version %d, want 2", got.Version)
	}
}

func testClaimNext(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	const ready, claimers = 10, 30
	for range ready {
		create(t, svc, tasks.Update{})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int64]string{}
	notFound := 0
	for i := range claimers {
		wg.Go(func() {
			name := fmt.Sprintf("agent-%d", i)
			task, err := svc.Claim(as(name), tasks.ClaimRequest{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if other, ok := got[task.ID]; ok {
					t.Errorf("task %d claimed by %s and %s", task.ID, other, name)
				}
				got[task.ID] = name
			case code(err) == tasks.ENotFound:
				notFound++
			default:
				t.Errorf("claim: %v", err)
			}
		})
	}
	wg.Wait()
	if len(got) != ready || notFound != claimers-ready {
		t.Errorf("%d claims won, %d found nothing; want %d and %d", len(got), notFound, ready, claimers-ready)
	}
	for id, name := range got {
		if task, _ := store.Task(context.Background(), id); task.Assignee != name || task.Status != tasks.StatusInProgress {
			t.Errorf("task %d is %s by %q, want in_progress by %s", id, task.Status, task.Assignee, name)
		}
	}
}

func testClaimByID(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{})
	const n = 10
	won := race(t, n, tasks.EConflict, func(i int) error {
		_, err := svc.Claim(as(fmt.Sprintf("agent-%d", i)), tasks.ClaimRequest{TaskID: task.ID})
		return err
	})
	if won != 1 {
		t.Errorf("%d claims of task %d went through, want 1", won, task.ID)
	}
	if _, all := events(t, store); len(all) != 2 {
		t.Errorf("%d events, want 2: the create and the one claim", len(all))
	}
}

// testReadyRule checks that claiming by id and claiming the next task agree on what is
// ready (tasks.ReadyQuery), and that the next is chosen by priority, then age.
func testReadyRule(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	dep := create(t, svc, tasks.Update{Title: tasks.Value("dependency"), Status: tasks.Value(tasks.StatusBlocked)})
	waiting := create(t, svc, tasks.Update{Title: tasks.Value("waiting"), Priority: tasks.Value(tasks.PriorityUrgent), DependsOn: tasks.Value([]int64{dep.ID})})
	theirs := create(t, svc, tasks.Update{Title: tasks.Value("theirs"), Priority: tasks.Value(tasks.PriorityUrgent), Assignee: tasks.Value("bob")})
	mine := create(t, svc, tasks.Update{Title: tasks.Value("mine"), Priority: tasks.Value(tasks.PriorityLow), Assignee: tasks.Value("carol")})
	high1 := create(t, svc, tasks.Update{Title: tasks.Value("high, older"), Priority: tasks.Value(tasks.PriorityHigh)})
	high2 := create(t, svc, tasks.Update{Title: tasks.Value("high, newer"), Priority: tasks.Value(tasks.PriorityHigh)})
	medium := create(t, svc, tasks.Update{Title: tasks.Value("medium")})

	// Not ready for carol: an undone dependency, someone else's.
	for _, id := range []int64{waiting.ID, theirs.ID} {
		if _, err := svc.Claim(as("carol"), tasks.ClaimRequest{TaskID: id}); code(err) != tasks.EConflict {
			t.Errorf("carol claims task %d: %v, want conflict", id, err)
		}
	}
	var order []int64
	for {
		task, err := svc.Claim(as("carol"), tasks.ClaimRequest{})
		if code(err) == tasks.ENotFound {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, task.ID)
	}
	if want := []int64{high1.ID, high2.ID, medium.ID, mine.ID}; !slices.Equal(order, want) {
		t.Errorf("claim next took %v, want %v (priority, then age; hers too; not bob's, not one waiting)", order, want)
	}
	// Once the dependency is done, the waiting task is ready, by id as by next.
	if _, err := svc.Update(as("carol"), dep.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	if task, err := svc.Claim(as("dave"), tasks.ClaimRequest{}); err != nil || task.ID != waiting.ID {
		t.Errorf("claim next once the dependency is done: %v, %v; want task %d", task, err, waiting.ID)
	}
	if task, err := svc.Claim(as("bob"), tasks.ClaimRequest{TaskID: theirs.ID}); err != nil || task.Assignee != "bob" {
		t.Errorf("bob claims the task assigned to him: %v, %v", task, err)
	}
}

// testDependencyCycleRace makes pairs of tasks depend on each other from two writers
// at once: at most one edge of each pair may be stored, or the graph has a cycle.
func testDependencyCycleRace(t *testing.T, store tasks.Store) {
	raceEdges(t, store, "depend on each other", func(other int64) tasks.Update {
		return tasks.Update{DependsOn: tasks.Value([]int64{other})}
	})
}

// testParentCycleRace is testDependencyCycleRace with parents.
func testParentCycleRace(t *testing.T, store tasks.Store) {
	raceEdges(t, store, "are each other's parent", func(other int64) tasks.Update {
		return tasks.Update{ParentID: tasks.Value(&other)}
	})
}

// raceEdges has two writers at once point each of a pair of tasks at the other with
// edge, ten times: at most one of each pair may win, and the loser is told why.
func raceEdges(t *testing.T, store tasks.Store, cycle string, edge func(other int64) tasks.Update) {
	svc := tasks.NewService(store)
	for range 10 {
		a, b := create(t, svc, tasks.Update{}), create(t, svc, tasks.Update{})
		var wg sync.WaitGroup
		var errA, errB error
		wg.Go(func() { _, errA = svc.Update(as("x"), a.ID, 0, edge(b.ID)) })
		wg.Go(func() { _, errB = svc.Update(as("y"), b.ID, 0, edge(a.ID)) })
		wg.Wait()
		if errA == nil && errB == nil {
			t.Fatalf("tasks %d and %d now %s", a.ID, b.ID, cycle)
		}
		for _, err := range []error{errA, errB} {
			if err != nil && code(err) != tasks.EInvalid {
				t.Errorf("the losing edit: %v, want invalid_argument", err)
			}
		}
	}
}

func testCommitted(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	wake := store.Committed()
	for { // drain what opening the store may have signalled
		select {
		case <-wake:
			continue
		default:
		}
		break
	}
	create(t, svc, tasks.Update{})
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after a commit")
	}
}

func testPrune(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	ctx := context.Background()
	if first, _ := store.FirstSeq(ctx); first != 1 {
		t.Errorf("FirstSeq of an empty log: %d, want 1", first)
	}
	for range 5 {
		create(t, svc, tasks.Update{})
	}
	_, all := events(t, store)
	n, err := store.PruneEvents(ctx, all[2].Time.Time)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := store.FirstSeq(ctx)
	kept, _ := events(t, store)
	if n < 1 || n > 2 || first != n+1 || len(kept) != 5-int(n) || kept[0].Seq != first {
		t.Errorf("pruned %d before event 3's time: first %d, kept %v", n, first, kept)
	}
	if _, err := store.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	last, _ := store.LastSeq(ctx)
	first, _ = store.FirstSeq(ctx)
	if last != 5 || first != 6 {
		t.Errorf("after pruning all: LastSeq %d, FirstSeq %d; want 5 and 6", last, first)
	}
	// Where the log ends, also for a caller that starts at 0: nothing is lost by going
	// on from there.
	if got, at, err := svc.Events(ctx, 0, 10); err != nil || len(got) != 0 || at != 5 {
		t.Errorf("events after 0 once all were pruned: %d, last_seq %d, %v; want none and 5", len(got), at, err)
	}
	task := create(t, svc, tasks.Update{})
	if records, _ := events(t, store); len(records) != 1 || records[0].Seq != 6 || records[0].TaskID != task.ID {
		t.Errorf("the next event after pruning: %v, want seq 6", records)
	}
}

func testValues(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	var ids []int64 // newest first
	for _, u := range []tasks.Update{
		{Project: tasks.Value("site"), Assignee: tasks.Value("alice"), Labels: tasks.Value([]string{"docs", "ui"})},
		{Project: tasks.Value("api"), Assignee: tasks.Value("bob"), Labels: tasks.Value([]string{"docs"})},
		{Project: tasks.Value("api-v2"), Labels: tasks.Value([]string{"100%", "10_x"})},
		{Project: tasks.Value("Site")},
		{Project: tasks.Value("sité"), Assignee: tasks.Value("alice")},
		{Project: tasks.Value("site")},
	} {
		ids = slices.Insert(ids, 0, create(t, svc, u).ID)
	}
	for range 20 {
		ids = slices.Insert(ids, 0, create(t, svc, tasks.Update{}).ID)
	}
	// The ids with a prefix, newest first: what Values must find by its ranges.
	idsWith := func(prefix string, limit int) []string {
		out := []string{}
		for _, id := range ids {
			if s := strconv.FormatInt(id, 10); strings.HasPrefix(s, prefix) && len(out) < limit {
				out = append(out, s)
			}
		}
		return out
	}
	top := strconv.FormatInt(ids[0], 10)
	for _, tc := range []struct {
		q    tasks.ValuesQuery
		want []string
	}{
		{tasks.ValuesQuery{Field: tasks.FieldProject, Limit: 100}, []string{"Site", "api", "api-v2", "site", "sité"}},
		{tasks.ValuesQuery{Field: tasks.FieldProject, Prefix: "api", Limit: 100}, []string{"api", "api-v2"}},
		{tasks.ValuesQuery{Field: tasks.FieldProject, Prefix: "s", Limit: 100}, []string{"site", "sité"}},
		{tasks.ValuesQuery{Field: tasks.FieldProject, Prefix: "sit", Limit: 1}, []string{"site"}},
		{tasks.ValuesQuery{Field: tasks.FieldProject, Prefix: "sité", Limit: 100}, []string{"sité"}},
		{tasks.ValuesQuery{Field: tasks.FieldProject, Prefix: "z", Limit: 100}, []string{}},
		{tasks.ValuesQuery{Field: tasks.FieldAssignee, Limit: 100}, []string{"alice", "bob"}},
		{tasks.ValuesQuery{Field: tasks.FieldAssignee, Prefix: "b", Limit: 100}, []string{"bob"}},
		{tasks.ValuesQuery{Field: tasks.FieldLabel, Limit: 100}, []string{"100%", "10_x", "docs", "ui"}},
		{tasks.ValuesQuery{Field: tasks.FieldLabel, Prefix: "10%", Limit: 100}, []string{}},
		{tasks.ValuesQuery{Field: tasks.FieldLabel, Prefix: "10_", Limit: 100}, []string{"10_x"}},
		{tasks.ValuesQuery{Field: tasks.FieldLabel, Prefix: "d", Limit: 100}, []string{"docs"}},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Limit: 3}, idsWith("", 3)},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: "1", Limit: 100}, idsWith("1", 100)},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: "1", Limit: 2}, idsWith("1", 2)},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: "2", Limit: 100}, idsWith("2", 100)},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: top, Limit: 100}, []string{top}},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: top + "0", Limit: 100}, []string{}},
		{tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: "9223372036854775807", Limit: 100}, []string{}},
	} {
		got, err := store.Values(context.Background(), tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("%+v: %q, want %q", tc.q, got, tc.want)
		}
	}
}
