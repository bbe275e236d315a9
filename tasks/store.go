package tasks

import (
	"context"
	"time"
)

// Store persists tasks and the event log. The Service and the Tailer rely on exactly
// what this contract says, and the conformance suite in package storetest checks it;
// a store that passes the suite can stand in for any other.
//
// Reads. A read sees every Write that returned before the read started.
//
// Writes. Write runs fn in one transaction: everything fn wrote commits together, or,
// when fn or the commit fails, none of it does. Write returns once the outcome is
// durable. fn may run more than once (a store may retry a transaction that lost a
// race, such as a serialization failure), so it must have no effect but through tx
// and the values it returns. Within one transaction, what fn reads stays true until
// the commit: a check made in fn (a version, a task's status before a claim, the
// dependency graph before a new edge) cannot be overtaken by a concurrent Write, in
// this process or another. Such checks are what make If-Match and claims atomic; they
// must not lean on the store happening to run one Write at a time.
//
// The log. Tx.AppendEvent gives each event its seq. Seqs follow commit order and have
// no gaps: the events committed are numbered 1, 2, 3, … with no seq skipped or given
// twice, and a reader that has read every event up to N never later sees an event
// with seq N or below appear. So a reader can follow the log with nothing but the
// last seq it read. A Write that fails leaves no seq behind.
//
// Wake-up. Committed receives a value after commits (one value may stand for many),
// those of other processes too where the store can see them. It may come late, or
// without news; a reader must still look at the log now and then (see Tailer).
//
// Pruning. PruneEvents deletes the oldest events, a prefix of the log: after it every
// kept event is above every deleted one. Seqs are never given again: LastSeq does not
// go down.
type Store interface {
	// Task returns the task with id, or an ENotFound error.
	Task(ctx context.Context, id int64) (*Task, error)
	// Tasks returns up to q.Limit tasks that match q with an id above q.After, by id.
	Tasks(ctx context.Context, q TaskQuery) ([]*Task, error)
	// Events returns up to q.Limit events with a seq above q.After, by seq, each as
	// the Record that Event.Record made when it was appended.
	Events(ctx context.Context, q EventQuery) ([]Record, error)
	// LastSeq returns the seq of the newest event ever written, 0 when there is none.
	LastSeq(ctx context.Context) (int64, error)
	// FirstSeq returns the seq of the oldest event still kept: LastSeq()+1 when old
	// events were pruned and none is left.
	FirstSeq(ctx context.Context) (int64, error)
	// Write runs fn in a write transaction and commits it, unless fn returns an error,
	// in which case nothing fn wrote is kept. Write returns once the outcome is durable.
	Write(ctx context.Context, fn func(Tx) error) error
	// Committed returns the channel of the wake-up described above.
	Committed() <-chan struct{}
	// PruneEvents deletes the events older than before, and returns how many. It
	// deletes nothing else: notes stay with their tasks.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	// Notes returns up to q.Limit notes of task q.TaskID with an id above q.After, by
	// id: in the order they were added.
	Notes(ctx context.Context, q NoteQuery) ([]*Note, error)
	// NextLease returns the earliest lease_expires_at of any task, nil when no task
	// holds a lease. It reads an index: its cost does not grow with the leases held.
	NextLease(ctx context.Context) (*Time, error)
	// Values returns up to q.Limit of the values q selects (see ValuesQuery), each
	// found through an index rather than by reading every task.
	Values(ctx context.Context, q ValuesQuery) ([]string, error)
}

// Tx is the view of a write transaction that the Service works through. Its methods
// take no context: they run inside a transaction whose lifetime the Store owns.
type Tx interface {
	// Task returns the task with id, or an ENotFound error.
	Task(id int64) (*Task, error)
	// Missing returns those of ids that are not the id of a task.
	Missing(ids []int64) ([]int64, error)
	// Dependencies returns the depends_on list of each of ids that has one.
	Dependencies(ids []int64) (map[int64][]int64, error)
	// Dependents returns the ids of the tasks that depend on id, or have it as parent.
	Dependents(id int64) (dependents, children []int64, err error)
	// CreateTask inserts t and sets t.ID.
	CreateTask(t *Task) error
	// UpdateTask stores t, which was old before the change.
	UpdateTask(old, t *Task) error
	// DeleteTask removes the task with id, and its notes.
	DeleteTask(id int64) error
	// AppendEvent gives e the next seq, sets e.Seq, and adds e.Record() to the log.
	AppendEvent(e *Event) error
	// NextReady returns the task that q selects first (see ReadyQuery), or nil when
	// none is ready.
	NextReady(q ReadyQuery) (*Task, error)
	// AddNote inserts n and sets n.ID, above the id of every note its task had. The
	// task's row must have been read through Task in this transaction: two notes of
	// one task are then added one after the other, in the order of their ids.
	AddNote(n *Note) error
	// CountNotes returns how many notes the task with id has.
	CountNotes(id int64) (int, error)
	// DueLeases returns up to limit tasks whose lease_expires_at is at or before by,
	// earliest first, each as it is now and held for this transaction like Task's:
	// what a concurrent Write changed is seen, and a task that another Write holds is
	// left out rather than waited for (another node expiring it, or its holder
	// renewing it), so that two nodes expiring leases at once never take the same one.
	DueLeases(by Time, limit int) ([]*Task, error)
}
