package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Leases. A claim (Service.Claim) gives its caller, the holder, a lease on the task:
// lease_expires_at, the claim's time plus its lease length (ClaimRequest.LeaseSeconds,
// else the Service's WithClaimLease, else DefaultClaimLease). The holder is the
// task's assignee. A lease is held only while the task is in_progress: a change to
// any other status clears lease_expires_at (the assignee stays). The holder renews
// the lease, by the claim's own length from now, with Heartbeat, which is no new
// version of the task, or by any change it makes to the task while the lease runs,
// inside that change. When a lease runs out, ExpireLeases (run by an Expirer) puts
// the task back to todo, unassigned, in one change by the system with the reason
// ReasonLeaseExpired, so that another agent can claim it. Only claims grant leases:
// a task moved to in_progress otherwise (a person dragging a card) has none, and
// nothing expires it.

// Limits and defaults of leases and progress.
const (
	DefaultClaimLease  = 15 * time.Minute
	MinLeaseSeconds    = 60    // a minute
	MaxLeaseSeconds    = 86400 // a day
	MaxProgress        = 100
	MaxProgressMessage = 200 // characters
)

// ReasonLeaseExpired is the Reason of the event of a task whose lease ran out.
const ReasonLeaseExpired = "lease_expired"

// expireBatch bounds the leases that one Write of ExpireLeases expires.
const expireBatch = 100

// WithClaimLease sets the lease of a claim whose caller asks for none, d: any length
// from a microsecond (the precision of every time the store keeps) up; a shorter d
// changes nothing.
func WithClaimLease(d time.Duration) Option {
	return func(s *Service) {
		if d >= time.Microsecond {
			s.lease = d
		}
	}
}

// cause is what a change is, besides its Update, that changeFor must know: the lease
// of a claim, the reason of a change the system makes.
type cause struct {
	lease  time.Duration
	reason string
}

// leaseOf returns the length of the lease that req asks for.
func (s *Service) leaseOf(req ClaimRequest) (time.Duration, error) {
	if !req.LeaseSeconds.Set {
		return s.lease, nil
	}
	if n := req.LeaseSeconds.Value; n < MinLeaseSeconds || n > MaxLeaseSeconds {
		return 0, Errorf(EInvalid, "lease_seconds", "lease_seconds must be %d to %d (a minute to a day), got %d", MinLeaseSeconds, MaxLeaseSeconds, n)
	}
	return time.Duration(req.LeaseSeconds.Value) * time.Second, nil
}

// leaseRules applies the lease rules to t, changed at now: a claim grants its lease,
// and only an in_progress task keeps one.
func leaseRules(t *Task, c cause, now time.Time) {
	if c.lease > 0 {
		expires := NewTime(now.Add(c.lease))
		t.LeaseExpiresAt, t.LeaseLength = &expires, c.lease
	}
	if t.Status != StatusInProgress {
		t.LeaseExpiresAt, t.LeaseLength = nil, 0
	}
}

// renew extends the lease of next, changed by actor at now from old, when actor holds
// the lease and it still runs: any change the holder makes is a sign of life. It
// reports whether it did.
func renew(old, next *Task, actor Actor, now time.Time) bool {
	if old.LeaseExpiresAt == nil || next.LeaseExpiresAt == nil || next.LeaseLength <= 0 ||
		old.Assignee != actor.Name || next.Assignee != actor.Name || !now.Before(old.LeaseExpiresAt.Time) {
		return false
	}
	expires := NewTime(now.Add(next.LeaseLength))
	next.LeaseExpiresAt = &expires
	return true
}

// assignedTo checks that t is assigned to name, who wants to do what only its holder
// may; if not, the error says who holds it.
func assignedTo(t *Task, name, what string) error {
	switch t.Assignee {
	case name:
		return nil
	case "":
		return Errorf(EConflict, "task_id", "task %d is not claimed by anyone, so there is no claim to %s; claim it first", t.ID, what)
	}
	return Errorf(EConflict, "task_id", "task %d is held by %s, and only its holder may %s", t.ID, t.Assignee, what)
}

// holding checks that name holds a lease on t that still runs at now.
func holding(t *Task, name string, now time.Time) error {
	if err := assignedTo(t, name, "renew its lease"); err != nil {
		return err
	}
	if t.LeaseExpiresAt == nil {
		return Errorf(EConflict, "task_id", "task %d holds no lease: it is %s, and only a claimed task in_progress holds one", t.ID, t.Status)
	}
	if !now.Before(t.LeaseExpiresAt.Time) {
		return Errorf(EConflict, "task_id", "the lease on task %d ran out at %s: it goes back to todo, to be claimed again", t.ID, t.LeaseExpiresAt)
	}
	return nil
}

// validateProgress checks the progress fields of t.
func (t *Task) validateProgress() error {
	if t.Progress < 0 || t.Progress > MaxProgress {
		return Errorf(EInvalid, "progress", "progress must be an integer from 0 to %d, got %d", MaxProgress, t.Progress)
	}
	if n := utf8.RuneCountInString(t.ProgressMessage); n > MaxProgressMessage {
		return Errorf(EInvalid, "progress_message", "progress_message must be at most %d characters, got %d", MaxProgressMessage, n)
	}
	return nil
}

// Heartbeat renews the lease that the actor of ctx holds on the task with id, by the
// claim's own lease length from now. A renewal is no new version of the task: its
// version, updated_at and updated_by stay, so that no one's If-Match fails because of
// it. It appends a task_lease_renewed event with the task and the change of
// lease_expires_at, so that boards show the current lease. Only the holder may renew,
// and only a lease that still runs (EConflict otherwise, saying who holds the task or
// why there is no lease to renew).
func (s *Service) Heartbeat(ctx context.Context, id int64) (*Task, error) {
	actor := ActorFrom(ctx)
	var t *Task
	err := s.store.Write(ctx, func(tx Tx) error {
		old, err := tx.Task(id)
		if err != nil {
			return err
		}
		now := s.now()
		if err := holding(old, actor.Name, now); err != nil {
			return err
		}
		next := old.clone()
		expires := NewTime(now.Add(old.LeaseLength))
		next.LeaseExpiresAt = &expires
		changes, err := diff(old, next)
		if err != nil {
			return err
		}
		if err := tx.UpdateTask(old, next); err != nil {
			return err
		}
		t = next
		return tx.AppendEvent(&Event{
			Type: EventTaskLeaseRenewed, TaskID: id, Source: actor.Source, Actor: actor.Name,
			Time: NewTime(now), Task: next, Changes: changes,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("renew the lease on task %d: %w", id, err)
	}
	return t, nil
}

// Release hands the task with id back: to todo, unassigned, its lease ended, in one
// change. A note ("" for none) is added to the task's thread in the same write, after
// the change, for the next agent to read. Only the task's holder may release it, and
// only a task that is not done or cancelled.
func (s *Service) Release(ctx context.Context, id int64, note string) (*Task, error) {
	actor := ActorFrom(ctx)
	if strings.TrimSpace(note) != "" {
		var err error
		if note, err = NoteText("note", note); err != nil {
			return nil, err
		}
	}
	u := Update{Status: Value(StatusTodo), Assignee: Value("")}
	var t *Task
	err := s.store.Write(ctx, func(tx Tx) error {
		old, err := tx.Task(id)
		if err != nil {
			return err
		}
		if err := assignedTo(old, actor.Name, "release it"); err != nil {
			return err
		}
		if old.Status == StatusDone || old.Status == StatusCancelled {
			return Errorf(EConflict, "task_id", "task %d is %s: its work is over, so there is nothing to release", id, old.Status)
		}
		if t, err = s.change(tx, old, u, actor); err != nil || note == "" {
			return err
		}
		_, err = s.addNote(tx, t, note, actor)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release task %d: %w", id, err)
	}
	return t, nil
}

// ReportProgress records how far the work on the task with id is: progress, 0 to
// MaxProgress, and message, a line of up to MaxProgressMessage characters that
// replaces the last one ("" clears it). Only the task's assignee may report. A report
// is a change like any other, with a new version and its task_updated event, and so
// renews the reporter's lease; a report that repeats the last one changes nothing.
func (s *Service) ReportProgress(ctx context.Context, id int64, progress int, message string) (*Task, error) {
	message = strings.TrimSpace(message)
	// Checked before the write: the rules of a report need no task.
	if err := (&Task{Progress: progress, ProgressMessage: message}).validateProgress(); err != nil {
		return nil, err
	}
	u := Update{Progress: Value(progress), ProgressMessage: Value(message)}
	return s.changeIf(ctx, id, u, "report progress on", func(old *Task, actor Actor) error {
		return assignedTo(old, actor.Name, "report progress on it")
	})
}

// NextLeaseExpiry returns when the earliest lease of any task runs out, and false
// when no task holds a lease.
func (s *Service) NextLeaseExpiry(ctx context.Context) (time.Time, bool, error) {
	t, err := s.store.NextLease(ctx)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next lease expiry: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return t.Time, true, nil
}

// ExpireLeases puts every task whose lease ran out at or before now back to todo,
// unassigned, without a lease, each in a change of its own (a new version; a
// task_updated event by the system, with the reason ReasonLeaseExpired and the old
// holder among its changes), up to expireBatch of them in one Write. It returns how
// many it expired. The tasks are chosen inside each Write, as they are then, and
// held until its commit (see Tx.DueLeases): a lease renewed or a task released
// meanwhile is not expired, and several processes expiring at once expire each lease
// once.
func (s *Service) ExpireLeases(ctx context.Context, now time.Time) (int, error) {
	system := Actor{Source: SourceSystem, Name: "system"}
	expire := Update{Status: Value(StatusTodo), Assignee: Value("")}
	by := NewTime(now)
	total := 0
	for {
		var n int
		err := s.store.Write(ctx, func(tx Tx) error {
			due, err := tx.DueLeases(by, expireBatch)
			if err != nil {
				return err
			}
			for _, old := range due {
				if _, err := s.changeFor(tx, old, expire, system, cause{reason: ReasonLeaseExpired}); err != nil {
					return fmt.Errorf("task %d: %w", old.ID, err)
				}
			}
			n = len(due)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("expire leases: %w", err)
		}
		total += n
		if n < expireBatch {
			return total, nil
		}
	}
}
