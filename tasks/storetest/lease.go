package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"taskhub/tasks"
)

// leaseCases are the cases of the suite about claim leases and progress.
var leaseCases = []struct {
	name string
	fn   func(*testing.T, tasks.Store)
}{
	{"LeaseRoundTrip", testLeaseRoundTrip},
	{"NextLease", testNextLease},
	{"ExpireDueOnly", testExpireDueOnly},
	{"ExpireOnce", testExpireOnce},
	{"ExpireOrRenew", testExpireOrRenew},
}

// testLeaseRoundTrip claims, renews, reports progress and releases, and reads each
// state back from the store: the lease, its length (which a renewal extends by) and
// the progress fields are kept.
func testLeaseRoundTrip(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store, tasks.WithClaimLease(90*time.Second))
	ctx := context.Background()
	task := create(t, svc, tasks.Update{})
	before := time.Now()
	claimed, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID, LeaseSeconds: tasks.Value[int64](600)})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.Task(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.LeaseExpiresAt == nil || !stored.LeaseExpiresAt.Equal(claimed.LeaseExpiresAt.Time) ||
		stored.LeaseLength != 10*time.Minute || stored.Version != 2 {
		t.Fatalf("stored after the claim: lease %v, length %s, version %d; the claim returned %v",
			stored.LeaseExpiresAt, stored.LeaseLength, stored.Version, claimed.LeaseExpiresAt)
	}
	if d := stored.LeaseExpiresAt.Sub(before); d < 10*time.Minute || d > 10*time.Minute+time.Minute {
		t.Errorf("lease runs out %s after the claim, want 10m", d)
	}

	renewed, err := svc.Heartbeat(as("alice"), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ = store.Task(ctx, task.ID)
	if stored.Version != 2 || !stored.LeaseExpiresAt.Equal(renewed.LeaseExpiresAt.Time) ||
		renewed.LeaseExpiresAt.Before(claimed.LeaseExpiresAt.Time) || !stored.UpdatedAt.Equal(claimed.UpdatedAt.Time) {
		t.Errorf("after a renewal: version %d, lease %v (returned %v, was %v), updated_at %v (was %v)",
			stored.Version, stored.LeaseExpiresAt, renewed.LeaseExpiresAt, claimed.LeaseExpiresAt, stored.UpdatedAt, claimed.UpdatedAt)
	}

	if _, err := svc.ReportProgress(as("alice"), task.ID, 40, "  halfway there, nearly  "); err != nil {
		t.Fatal(err)
	}
	stored, _ = store.Task(ctx, task.ID)
	if stored.Progress != 40 || stored.ProgressMessage != "halfway there, nearly" || stored.Version != 3 {
		t.Errorf("after a progress report: %d %q, version %d", stored.Progress, stored.ProgressMessage, stored.Version)
	}

	released, err := svc.Release(as("alice"), task.ID, "over to you")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ = store.Task(ctx, task.ID)
	if stored.LeaseExpiresAt != nil || stored.LeaseLength != 0 || stored.Status != tasks.StatusTodo || stored.Assignee != "" ||
		stored.Version != released.Version || stored.Progress != 40 {
		t.Errorf("after the release: %+v", stored)
	}
	_, all := events(t, store)
	types := make([]tasks.EventType, len(all))
	for i, e := range all {
		types[i] = e.Type
	}
	want := []tasks.EventType{tasks.EventTaskCreated, tasks.EventTaskUpdated, tasks.EventTaskLeaseRenewed, tasks.EventTaskUpdated, tasks.EventTaskUpdated}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	if e := all[2]; e.Task.Version != 2 || e.Task.LeaseExpiresAt == nil || len(e.Changes) != 1 || e.Changes["lease_expires_at"][0] == nil {
		t.Errorf("renewal event %+v", e)
	}
	if e := all[4]; e.Note != "over to you" || e.Task.LeaseExpiresAt != nil {
		t.Errorf("release event %+v", e)
	}
}

// testNextLease: the store gives the earliest lease of all, and none once no task
// holds one.
func testNextLease(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	ctx := context.Background()
	if next, err := store.NextLease(ctx); err != nil || next != nil {
		t.Fatalf("NextLease with no task: %v, %v; want none", next, err)
	}
	var claimed []*tasks.Task
	for _, seconds := range []int64{3600, 60, 600} {
		task := create(t, svc, tasks.Update{})
		c, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID, LeaseSeconds: tasks.Value(seconds)})
		if err != nil {
			t.Fatal(err)
		}
		claimed = append(claimed, c)
	}
	create(t, svc, tasks.Update{}) // no lease
	next, err := store.NextLease(ctx)
	if err != nil || next == nil || !next.Equal(claimed[1].LeaseExpiresAt.Time) {
		t.Fatalf("NextLease %v, %v; want the 60 s lease's %v", next, err, claimed[1].LeaseExpiresAt)
	}
	if _, err := svc.Update(as("alice"), claimed[1].ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusReview)}); err != nil {
		t.Fatal(err)
	}
	if next, err := store.NextLease(ctx); err != nil || next == nil || !next.Equal(claimed[2].LeaseExpiresAt.Time) {
		t.Errorf("NextLease once the earliest task went to review: %v, %v; want %v", next, err, claimed[2].LeaseExpiresAt)
	}
}

// testExpireDueOnly expires the leases due by a time, and only those: each back to
// todo, unassigned, in one change by the system with its reason and the old holder.
func testExpireDueOnly(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	ctx := context.Background()
	short := create(t, svc, tasks.Update{Title: tasks.Value("short")})
	long := create(t, svc, tasks.Update{Title: tasks.Value("long")})
	a, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: short.ID, LeaseSeconds: tasks.Value[int64](60)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Claim(as("bob"), tasks.ClaimRequest{TaskID: long.ID, LeaseSeconds: tasks.Value[int64](3600)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc.ExpireLeases(ctx, a.LeaseExpiresAt.Add(-time.Microsecond)); err != nil || n != 0 {
		t.Fatalf("expire just before the first lease runs out: %d, %v; want 0", n, err)
	}
	if n, err := svc.ExpireLeases(ctx, a.LeaseExpiresAt.Time); err != nil || n != 1 {
		t.Fatalf("expire as the first lease runs out: %d, %v; want 1", n, err)
	}
	got, _ := store.Task(ctx, short.ID)
	if got.Status != tasks.StatusTodo || got.Assignee != "" || got.LeaseExpiresAt != nil || got.Version != a.Version+1 || got.UpdatedBy != "system" {
		t.Errorf("expired task %+v", got)
	}
	if got, _ := store.Task(ctx, long.ID); got.Status != tasks.StatusInProgress || got.Assignee != "bob" || got.Version != b.Version {
		t.Errorf("the task whose lease runs: %+v", got)
	}
	records, all := events(t, store)
	e, r := all[len(all)-1], records[len(records)-1]
	if e.Type != tasks.EventTaskUpdated || e.TaskID != short.ID || e.Source != tasks.SourceSystem || e.Actor != "system" || e.Reason != tasks.ReasonLeaseExpired {
		t.Fatalf("expiry event %s", r.Data)
	}
	want := map[string][2]string{
		"status":           {`"in_progress"`, `"todo"`},
		"assignee":         {`"alice"`, `""`},
		"lease_expires_at": {string(mustJSON(t, a.LeaseExpiresAt)), `null`},
	}
	if len(e.Changes) != len(want) {
		t.Errorf("expiry changes %s, want %v", r.Data, want)
	}
	for field, w := range want {
		if c := e.Changes[field]; string(c[0]) != w[0] || string(c[1]) != w[1] {
			t.Errorf("changes[%s] = %s, %s; want %s, %s", field, c[0], c[1], w[0], w[1])
		}
	}
	if fmt.Sprint(r.Match.Assignees) != "[ alice]" {
		t.Errorf("the expiry matches assignees %v, want the old holder too", r.Match.Assignees)
	}
	// Claimed again, by someone else.
	if again, err := svc.Claim(as("carol"), tasks.ClaimRequest{}); err != nil || again.ID != short.ID {
		t.Errorf("claim after the expiry: %v, %v; want task %d", again, err, short.ID)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testExpireOnce has several expirers at once expire more leases than one Write
// takes: each lease is expired exactly once, with one event, and the counts add up.
func testExpireOnce(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	const leases, expirers = 250, 6
	var last *tasks.Task
	for range leases {
		task := create(t, svc, tasks.Update{})
		var err error
		if last, err = svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID, LeaseSeconds: tasks.Value[int64](60)}); err != nil {
			t.Fatal(err)
		}
	}
	by := last.LeaseExpiresAt.Time
	var wg sync.WaitGroup
	counts := make([]int, expirers)
	for i := range expirers {
		wg.Go(func() {
			n, err := svc.ExpireLeases(context.Background(), by)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	sum := 0
	for _, n := range counts {
		sum += n
	}
	if sum != leases {
		t.Errorf("expirers report %v, %d in all; want %d", counts, sum, leases)
	}
	_, all := events(t, store)
	expired := map[int64]int{}
	for _, e := range all {
		if e.Reason == tasks.ReasonLeaseExpired {
			expired[e.TaskID]++
		}
	}
	for id, n := range expired {
		if n != 1 {
			t.Errorf("task %d expired %d times", id, n)
		}
	}
	if len(expired) != leases {
		t.Errorf("%d tasks expired, want %d", len(expired), leases)
	}
	if next, err := store.NextLease(context.Background()); err != nil || next != nil {
		t.Errorf("NextLease after expiring all: %v, %v", next, err)
	}
}

// testExpireOrRenew races the expiry of leases, at a time just after they run out,
// against their holders' renewals, made before: either the renewal wins, and the
// lease then runs later and is not expired, or the expiry wins and the renewal finds
// no claim. Never both, never neither.
func testExpireOrRenew(t *testing.T, store tasks.Store) {
	svc := tasks.NewService(store)
	const n = 20
	claimed := make([]*tasks.Task, n)
	for i := range n {
		task := create(t, svc, tasks.Update{})
		var err error
		if claimed[i], err = svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID, LeaseSeconds: tasks.Value[int64](60)}); err != nil {
			t.Fatal(err)
		}
	}
	by := claimed[n-1].LeaseExpiresAt.Time
	renewErrs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, renewErrs[i] = svc.Heartbeat(as("alice"), claimed[i].ID) })
	}
	wg.Go(func() {
		for range 5 {
			if _, err := svc.ExpireLeases(context.Background(), by); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if _, err := svc.ExpireLeases(context.Background(), by); err != nil {
		t.Fatal(err)
	}
	_, all := events(t, store)
	expired := map[int64]int{}
	renewed := map[int64]int{}
	for _, e := range all {
		switch {
		case e.Reason == tasks.ReasonLeaseExpired:
			expired[e.TaskID]++
		case e.Type == tasks.EventTaskLeaseRenewed:
			renewed[e.TaskID]++
		}
	}
	for i, c := range claimed {
		got, err := store.Task(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case renewErrs[i] == nil:
			if renewed[c.ID] != 1 || expired[c.ID] != 0 || got.Status != tasks.StatusInProgress || !got.LeaseExpiresAt.After(by) {
				t.Errorf("task %d renewed: %d renewals, %d expiries, %s, lease %v", c.ID, renewed[c.ID], expired[c.ID], got.Status, got.LeaseExpiresAt)
			}
		case code(renewErrs[i]) == tasks.EConflict:
			if renewed[c.ID] != 0 || expired[c.ID] != 1 || got.Status != tasks.StatusTodo {
				t.Errorf("task %d expired: %d renewals, %d expiries, %s", c.ID, renewed[c.ID], expired[c.ID], got.Status)
			}
		default:
			t.Errorf("renew task %d: %v", c.ID, renewErrs[i])
		}
	}
}
