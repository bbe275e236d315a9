package tasks_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

// openStore returns a fresh database, closed when t ends.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "taskhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// before is what a refused call must leave as it was: the task's version and where
// the log ends.
type before struct{ version, lastSeq int64 }

func record(t *testing.T, svc *tasks.Service, id int64) before {
	t.Helper()
	task, err := svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return before{task.Version, lastSeq(t, svc)}
}

func lastSeq(t *testing.T, svc *tasks.Service) int64 {
	t.Helper()
	_, last, err := svc.Events(context.Background(), 1<<62, 1)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// wantSame fails t unless the task with id and the log are as b recorded them.
func wantSame(t *testing.T, svc *tasks.Service, id int64, b before) {
	t.Helper()
	if now := record(t, svc, id); now != b {
		t.Errorf("task %d at version %d, the log ending at %d; it was %d and %d", id, now.version, now.lastSeq, b.version, b.lastSeq)
	}
}

func TestClaimLeaseSeconds(t *testing.T) {
	store := openStore(t)
	svc := tasks.NewService(store)
	task := create(t, svc, tasks.Update{})
	was := record(t, svc, task.ID)
	for _, n := range []int64{-1, 0, 59, 86401, 365 * 24 * 3600} {
		_, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID, LeaseSeconds: tasks.Value(n)})
		wantError(t, err, tasks.EInvalid, "lease_seconds")
		if !strings.Contains(err.Error(), "60 to 86400") {
			t.Errorf("lease_seconds %d: %v does not say what is allowed", n, err)
		}
		wantSame(t, svc, task.ID, was)
	}
	for _, n := range []int64{60, 86400} {
		task := create(t, svc, tasks.Update{})
		start := time.Now()
		got, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID, LeaseSeconds: tasks.Value(n)})
		if err != nil {
			t.Fatalf("lease_seconds %d: %v", n, err)
		}
		if d := got.LeaseExpiresAt.Sub(start); d < time.Duration(n)*time.Second-time.Millisecond || d > time.Duration(n)*time.Second+time.Minute {
			t.Errorf("lease_seconds %d: the lease runs out %s after the claim", n, d)
		}
	}
	// Without lease_seconds, the Service's lease; without one, DefaultClaimLease.
	for _, tc := range []struct {
		svc  *tasks.Service
		want time.Duration
	}{
		{svc, tasks.DefaultClaimLease},
		{tasks.NewService(store, tasks.WithClaimLease(2*time.Second)), 2 * time.Second},
	} {
		task := create(t, tc.svc, tasks.Update{})
		start := time.Now()
		got, err := tc.svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID})
		if err != nil {
			t.Fatal(err)
		}
		if d := got.LeaseExpiresAt.Sub(start); d < tc.want-time.Millisecond || d > tc.want+time.Minute {
			t.Errorf("default lease: runs out %s after the claim, want %s", d, tc.want)
		}
	}
}

func TestProgressBadInput(t *testing.T) {
	svc, _ := newService(t)
	task := create(t, svc, tasks.Update{})
	if _, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID}); err != nil {
		t.Fatal(err)
	}
	was := record(t, svc, task.ID)
	for _, tc := range []struct {
		progress int
		message  string
		field    string
	}{
		{-1, "", "progress"},
		{101, "", "progress"},
		{50, strings.Repeat("é", tasks.MaxProgressMessage+1), "progress_message"},
	} {
		_, err := svc.ReportProgress(as("alice"), task.ID, tc.progress, tc.message)
		wantError(t, err, tasks.EInvalid, tc.field)
		_, err = svc.Update(as("alice"), task.ID, 0, tasks.Update{Progress: tasks.Value(tc.progress), ProgressMessage: tasks.Value(tc.message)})
		wantError(t, err, tasks.EInvalid, tc.field)
		wantSame(t, svc, task.ID, was)
	}
	// The edges are allowed, and a message counts characters, trimmed.
	for _, p := range []int{0, 100} {
		msg := " " + strings.Repeat("é", tasks.MaxProgressMessage) + " "
		got, err := svc.ReportProgress(as("alice"), task.ID, p, msg)
		if err != nil || got.Progress != p || got.ProgressMessage != strings.TrimSpace(msg) {
			t.Errorf("progress %d: %+v, %v", p, got, err)
		}
	}
}

// TestOnlyTheHolder: heartbeat, release and progress reports are the holder's, and a
// heartbeat needs a lease that still runs; each refusal says why, names task_id and
// changes nothing.
func TestOnlyTheHolder(t *testing.T) {
	store := openStore(t)
	svc := tasks.NewService(store)
	held := create(t, svc, tasks.Update{Title: tasks.Value("held")})
	if _, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: held.ID}); err != nil {
		t.Fatal(err)
	}
	free := create(t, svc, tasks.Update{Title: tasks.Value("free")})
	inReview := create(t, svc, tasks.Update{Title: tasks.Value("in review")})
	if _, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: inReview.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(as("alice"), inReview.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusReview)}); err != nil {
		t.Fatal(err)
	}
	done := create(t, svc, tasks.Update{Title: tasks.Value("done"), Assignee: tasks.Value("alice"), Status: tasks.Value(tasks.StatusDone)})
	short := tasks.NewService(store, tasks.WithClaimLease(time.Microsecond))
	ranOut := create(t, svc, tasks.Update{Title: tasks.Value("ran out")})
	if _, err := short.Claim(as("alice"), tasks.ClaimRequest{TaskID: ranOut.ID}); err != nil {
		t.Fatal(err)
	}

	heartbeat := func(ctx context.Context, id int64) error { _, err := svc.Heartbeat(ctx, id); return err }
	release := func(ctx context.Context, id int64) error { _, err := svc.Release(ctx, id, "bye"); return err }
	report := func(ctx context.Context, id int64) error { _, err := svc.ReportProgress(ctx, id, 10, "x"); return err }
	for _, tc := range []struct {
		name string
		call func(context.Context, int64) error
		who  string
		id   int64
		want string
	}{
		{"heartbeat by another", heartbeat, "bob", held.ID, "held by alice"},
		{"release by another", release, "bob", held.ID, "held by alice"},
		{"report by another", report, "bob", held.ID, "held by alice"},
		{"heartbeat unclaimed", heartbeat, "alice", free.ID, "not claimed by anyone"},
		{"release unclaimed", release, "alice", free.ID, "not claimed by anyone"},
		{"report unclaimed", report, "alice", free.ID, "not claimed by anyone"},
		{"heartbeat without a lease", heartbeat, "alice", inReview.ID, "holds no lease: it is review"},
		{"heartbeat after the lease ran out", heartbeat, "alice", ranOut.ID, "ran out"},
		{"release of a done task", release, "alice", done.ID, "is done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			was := record(t, svc, tc.id)
			err := tc.call(as(tc.who), tc.id)
			wantError(t, err, tasks.EConflict, "task_id")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v does not say %q", err, tc.want)
			}
			wantSame(t, svc, tc.id, was)
		})
	}
	if _, err := svc.Heartbeat(as("alice"), 999); tasks.ErrorCode(err) != tasks.ENotFound {
		t.Errorf("heartbeat of a missing task: %v", err)
	}
}

// TestLeaseRules: only in_progress keeps a lease; the holder's changes renew it, in
// the change; nobody else's do; and only a claim grants one.
func TestLeaseRules(t *testing.T) {
	store := openStore(t)
	svc := tasks.NewService(store, tasks.WithClaimLease(time.Hour))
	task := create(t, svc, tasks.Update{})
	claimed, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID})
	if err != nil {
		t.Fatal(err)
	}

	// Someone else's change leaves the lease as it is.
	other, err := svc.Update(as("bob"), task.ID, 0, tasks.Update{Description: tasks.Value("by bob")})
	if err != nil {
		t.Fatal(err)
	}
	if !other.LeaseExpiresAt.Equal(claimed.LeaseExpiresAt.Time) {
		t.Errorf("bob's change moved the lease from %v to %v", claimed.LeaseExpiresAt, other.LeaseExpiresAt)
	}
	// The holder's change renews it, and says so among its changes.
	mine, err := svc.Update(as("alice"), task.ID, 0, tasks.Update{Description: tasks.Value("by alice")})
	if err != nil {
		t.Fatal(err)
	}
	if !mine.LeaseExpiresAt.After(claimed.LeaseExpiresAt.Time) || mine.Version != other.Version+1 {
		t.Errorf("alice's change: lease %v (was %v), version %d", mine.LeaseExpiresAt, claimed.LeaseExpiresAt, mine.Version)
	}
	events := allEvents(t, svc)
	if e := events[len(events)-1]; len(e.Changes) != 2 || e.Changes["lease_expires_at"][1] == nil {
		t.Errorf("changes of alice's change: %v", e.Changes)
	}
	// A heartbeat renews it without a new version.
	beat, err := svc.Heartbeat(as("alice"), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if beat.Version != mine.Version || beat.LeaseExpiresAt.Before(mine.LeaseExpiresAt.Time) || beat.UpdatedAt != mine.UpdatedAt {
		t.Errorf("heartbeat: version %d (was %d), lease %v (was %v)", beat.Version, mine.Version, beat.LeaseExpiresAt, mine.LeaseExpiresAt)
	}
	// If-Match with the version before the heartbeat still holds.
	if _, err := svc.Update(as("bob"), task.ID, beat.Version, tasks.Update{Priority: tasks.Value(tasks.PriorityHigh)}); err != nil {
		t.Errorf("an If-Match of the version before a renewal: %v", err)
	}
	// Out of in_progress, the lease ends; the assignee stays.
	review, err := svc.Update(as("alice"), task.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusReview)})
	if err != nil {
		t.Fatal(err)
	}
	if review.LeaseExpiresAt != nil || review.Assignee != "alice" {
		t.Errorf("in review: lease %v, assignee %q", review.LeaseExpiresAt, review.Assignee)
	}
	// Back in progress by hand: no claim, so no lease.
	back, err := svc.Update(as("alice"), task.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusInProgress)})
	if err != nil {
		t.Fatal(err)
	}
	if back.LeaseExpiresAt != nil {
		t.Errorf("moved back to in_progress by hand: lease %v", back.LeaseExpiresAt)
	}

	// A change the holder makes once the lease ran out does not bring it back.
	short := tasks.NewService(store, tasks.WithClaimLease(time.Microsecond))
	lapsed := create(t, svc, tasks.Update{})
	lapsedClaim, err := short.Claim(as("carol"), tasks.ClaimRequest{TaskID: lapsed.ID})
	if err != nil {
		t.Fatal(err)
	}
	late, err := svc.Update(as("carol"), lapsed.ID, 0, tasks.Update{Description: tasks.Value("late")})
	if err != nil {
		t.Fatal(err)
	}
	if !late.LeaseExpiresAt.Equal(lapsedClaim.LeaseExpiresAt.Time) {
		t.Errorf("a change after the lease ran out moved it from %v to %v", lapsedClaim.LeaseExpiresAt, late.LeaseExpiresAt)
	}
}

func TestReleaseAndProgressEvents(t *testing.T) {
	svc, _ := newService(t)
	task := create(t, svc, tasks.Update{})
	if _, err := svc.Claim(as("alice"), tasks.ClaimRequest{TaskID: task.ID}); err != nil {
		t.Fatal(err)
	}
	reported, err := svc.ReportProgress(as("alice"), task.ID, 30, "tests written")
	if err != nil {
		t.Fatal(err)
	}
	// The same report again changes nothing.
	again, err := svc.ReportProgress(as("alice"), task.ID, 30, " tests written ")
	if err != nil || again.Version != reported.Version {
		t.Errorf("the same report again: %+v, %v", again, err)
	}
	// A report without a message clears the last one.
	cleared, err := svc.ReportProgress(as("alice"), task.ID, 60, "")
	if err != nil || cleared.ProgressMessage != "" || cleared.Progress != 60 {
		t.Errorf("a report without a message: %+v, %v", cleared, err)
	}
	long := strings.Repeat("x", tasks.MaxNoteText+1)
	was := record(t, svc, task.ID)
	_, err = svc.Release(as("alice"), task.ID, long)
	wantError(t, err, tasks.EInvalid, "note")
	wantSame(t, svc, task.ID, was)
	released, err := svc.Release(as("alice"), task.ID, "  stuck on the API key  ")
	if err != nil {
		t.Fatal(err)
	}
	if released.Status != tasks.StatusTodo || released.Assignee != "" || released.LeaseExpiresAt != nil || released.Progress != 60 {
		t.Errorf("released %+v", released)
	}

	events := allEvents(t, svc)
	if len(events) != 6 {
		t.Fatalf("%d events, want 6: create, claim, two reports, release, its note", len(events))
	}
	progress := events[2]
	if progress.Type != tasks.EventTaskUpdated || progress.Actor != "alice" ||
		string(progress.Changes["progress"][0]) != "0" || string(progress.Changes["progress"][1]) != "30" ||
		string(progress.Changes["progress_message"][1]) != `"tests written"` || progress.Changes["lease_expires_at"][1] == nil {
		t.Errorf("progress event %+v", progress)
	}
	release := events[4]
	if string(release.Changes["assignee"][0]) != `"alice"` || string(release.Changes["lease_expires_at"][1]) != "null" {
		t.Errorf("release event %+v", release)
	}
	if note := events[5]; note.Type != tasks.EventTaskNoteAdded || note.AddedNote == nil ||
		note.AddedNote.Text != "stuck on the API key" || note.AddedNote.Author != "alice" {
		t.Errorf("the release's note event %+v", note)
	}
	page, err := svc.Notes(context.Background(), task.ID, "", 10)
	if err != nil || len(page.Notes) != 1 || page.Notes[0].Text != "stuck on the API key" {
		t.Errorf("notes after the release: %+v, %v", page, err)
	}
}
