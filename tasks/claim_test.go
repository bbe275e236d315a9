package tasks_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"taskhub/tasks"
	"taskhub/tasks/storetest"
)

func as(name string) context.Context {
	return tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceMCP, Name: name})
}

func TestClaimConcurrent(t *testing.T) {
	svc, _ := newService(t)
	for i := range 3 {
		create(t, svc, tasks.Update{Title: tasks.Value(fmt.Sprintf("ready %d", i)), Project: tasks.Value("p")})
	}
	create(t, svc, tasks.Update{Title: tasks.Value("elsewhere"), Project: tasks.Value("other")})

	var wg sync.WaitGroup
	results := make([]*tasks.Task, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			results[i], errs[i] = svc.Claim(as(fmt.Sprintf("agent-%d", i)), tasks.ClaimRequest{Project: "p"})
		})
	}
	wg.Wait()
	winners := map[int64]string{}
	for i := range 8 {
		if errs[i] != nil {
			if tasks.ErrorCode(errs[i]) != tasks.ENotFound {
				t.Errorf("agent-%d: %v", i, errs[i])
			}
			continue
		}
		task := results[i]
		if prev, ok := winners[task.ID]; ok {
			t.Errorf("task %d claimed by %s and agent-%d", task.ID, prev, i)
		}
		winners[task.ID] = task.Assignee
		if task.Assignee != fmt.Sprintf("agent-%d", i) || task.Status != tasks.StatusInProgress || task.Project != "p" {
			t.Errorf("agent-%d got %+v", i, task)
		}
	}
	if len(winners) != 3 {
		t.Errorf("%d winners, want 3: %v", len(winners), winners)
	}
}

func TestClaimOrderAndDependencies(t *testing.T) {
	svc, _ := newService(t)
	ctx := as("agent")
	low := create(t, svc, tasks.Update{Priority: tasks.Value(tasks.PriorityLow)})
	urgent := create(t, svc, tasks.Update{Priority: tasks.Value(tasks.PriorityUrgent), DependsOn: tasks.Value([]int64{low.ID})})
	high1 := create(t, svc, tasks.Update{Priority: tasks.Value(tasks.PriorityHigh), Labels: tasks.Value([]string{"x"})})
	high2 := create(t, svc, tasks.Update{Priority: tasks.Value(tasks.PriorityHigh)})

	// The urgent task waits on the low one: the high ones come first, oldest first.
	for _, want := range []int64{high1.ID, high2.ID, low.ID} {
		got, err := svc.Claim(ctx, tasks.ClaimRequest{})
		if err != nil || got.ID != want {
			t.Fatalf("claim: %v, %v; want task %d", got, err, want)
		}
	}
	_, err := svc.Claim(ctx, tasks.ClaimRequest{})
	wantError(t, err, tasks.ENotFound, "")
	_, err = svc.Claim(ctx, tasks.ClaimRequest{TaskID: urgent.ID})
	wantError(t, err, tasks.EConflict, "task_id")

	if _, err := svc.Update(ctx, low.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Claim(ctx, tasks.ClaimRequest{})
	if err != nil || got.ID != urgent.ID {
		t.Fatalf("after its dependency is done: %v, %v", got, err)
	}
}

func TestClaimByID(t *testing.T) {
	svc, _ := newService(t)
	task := create(t, svc, tasks.Update{Labels: tasks.Value([]string{"x"})})
	got, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID})
	if err != nil || got.Assignee != "alice" || got.Status != tasks.StatusInProgress || got.Version != 2 {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	// Claiming it again is a conflict, also under the same name: without tokens two
	// agents can share one, and only one of them may get the task.
	_, err = svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID})
	wantError(t, err, tasks.EConflict, "task_id")
	_, err = svc.Claim(as("bob"), tasks.ClaimRequest{TaskID: task.ID})
	wantError(t, err, tasks.EConflict, "task_id")
	// A project or label given with task_id must match the task.
	other := create(t, svc, tasks.Update{Project: tasks.Value("p"), Labels: tasks.Value([]string{"x"})})
	_, err = svc.Claim(as("bob"), tasks.ClaimRequest{TaskID: other.ID, Project: "q"})
	wantError(t, err, tasks.EConflict, "project")
	_, err = svc.Claim(as("bob"), tasks.ClaimRequest{TaskID: other.ID, Label: "y"})
	wantError(t, err, tasks.EConflict, "label")
	_, err = svc.Claim(as("bob"), tasks.ClaimRequest{TaskID: 999})
	wantError(t, err, tasks.ENotFound, "")

	// One event, with the three changes (the lease among them), attributed to the
	// claimer.
	records, err := svc.TaskEvents(context.Background(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	events := storetest.Decode(t, records)
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	e := events[1]
	if e.Type != tasks.EventTaskUpdated || e.Source != tasks.SourceMCP || e.Actor != "alice" ||
		len(e.Changes) != 3 || e.Changes["assignee"][1] == nil || e.Changes["status"][1] == nil || e.Changes["lease_expires_at"][1] == nil {
		t.Errorf("event %+v", e)
	}

	// Done with a note: the note is on the event.
	if _, err := svc.Update(as("alice"), task.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone), Note: "shipped"}); err != nil {
		t.Fatal(err)
	}
	records, _ = svc.TaskEvents(context.Background(), task.ID)
	events = storetest.Decode(t, records)
	if n := events[len(events)-1].Note; n != "shipped" {
		t.Errorf("note %q", n)
	}
}

func TestClaimFilters(t *testing.T) {
	svc, _ := newService(t)
	create(t, svc, tasks.Update{Project: tasks.Value("p")})
	labelled := create(t, svc, tasks.Update{Project: tasks.Value("p"), Labels: tasks.Value([]string{"go"})})
	got, err := svc.Claim(as("a"), tasks.ClaimRequest{Project: "p", Label: "go"})
	if err != nil || got.ID != labelled.ID {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	_, err = svc.Claim(as("a"), tasks.ClaimRequest{Project: "q"})
	wantError(t, err, tasks.ENotFound, "")
	_, err = svc.Claim(as(""), tasks.ClaimRequest{})
	wantError(t, err, tasks.EInvalid, "assignee")
}

func TestEventsFor(t *testing.T) {
	svc, _ := newService(t)
	a := create(t, svc, tasks.Update{Project: tasks.Value("p")})
	create(t, svc, tasks.Update{Project: tasks.Value("q")})
	if _, err := svc.Update(as("x"), a.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    tasks.EventQuery
		want []int64 // seqs
	}{
		{tasks.EventQuery{Limit: 10}, []int64{1, 2, 3}},
		{tasks.EventQuery{Projects: []string{"p"}, Limit: 10}, []int64{1, 3}},
		{tasks.EventQuery{Types: []tasks.EventType{tasks.EventTaskCreated}, Limit: 10}, []int64{1, 2}},
		{tasks.EventQuery{Sources: []tasks.Source{tasks.SourceMCP}, Limit: 10}, []int64{3}},
		{tasks.EventQuery{TaskIDs: []int64{a.ID}, After: 1, Limit: 10}, []int64{3}},
	} {
		events, _, err := svc.EventsFor(context.Background(), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range events {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: seqs %v, want %v", tc.q, got, tc.want)
		}
	}
	_, _, err := svc.EventsFor(context.Background(), tasks.EventQuery{Types: []tasks.EventType{"nope"}, Limit: 1})
	wantError(t, err, tasks.EInvalid, "types")
	_, _, err = svc.EventsFor(context.Background(), tasks.EventQuery{Sources: []tasks.Source{"nope"}, Limit: 1})
	wantError(t, err, tasks.EInvalid, "source")
	_, _, err = svc.EventsFor(context.Background(), tasks.EventQuery{Statuses: []tasks.Status{"doing"}, Limit: 1})
	wantError(t, err, tasks.EInvalid, "status")
	_, _, err = svc.EventsFor(context.Background(), tasks.EventQuery{TaskIDs: []int64{3, 0}, Limit: 1})
	wantError(t, err, tasks.EInvalid, "task_id")
	_, _, err = svc.EventsFor(context.Background(), tasks.EventQuery{Labels: []string{strings.Repeat("l", tasks.MaxLabel+1)}, Limit: 1})
	wantError(t, err, tasks.EInvalid, "label")
}

// TestNoteWithoutChange: a note on an update that changes nothing would be lost, so the
// update is refused.
func TestNoteWithoutChange(t *testing.T) {
	svc, _ := newService(t)
	task := create(t, svc, tasks.Update{})
	u := tasks.Update{Status: tasks.Value(tasks.StatusTodo), Note: "still waiting on review"}
	_, err := svc.Update(context.Background(), task.ID, 0, u)
	wantError(t, err, tasks.EInvalid, "note")
	if n := len(allEvents(t, svc)); n != 1 {
		t.Errorf("%d events after a refused note, want 1", n)
	}
}
