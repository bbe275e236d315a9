package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
)

// ErrNotEmpty is returned by Import for a database that already has tasks or events,
// or has given seqs.
var ErrNotEmpty = errors.New("the database already has tasks or events")

// Event is one row of the event log, every column as it is to be stored.
type Event struct {
	Seq    int64
	Type   string
	TaskID int64 // 0 for an event without a task
	Source string
	Actor  string
	Time   time.Time
	Data   string // the event's JSON, seq included: kept byte for byte
	Match  string // what filters match it on, a JSON object of lists
}

// Dump is a whole database to import, from another store.
type Dump struct {
	Tasks  iter.Seq2[*tasks.Task, error] // with their ids, labels and dependencies
	Events iter.Seq2[Event, error]       // with their seqs, in any order
	// LastSeq is the highest seq ever given, also when its event has been pruned:
	// the next event's seq is above it.
	LastSeq int64
	// LastTaskID is the highest task id ever given, also when its task has been
	// deleted: the next task's id is above it.
	LastTaskID int64
	Notes      iter.Seq2[*tasks.Note, error] // with their ids; nil for none
	// LastNoteID is the highest note id ever given: the next note's id is above it.
	LastNoteID int64
}

// ImportCounts is what Import copied.
type ImportCounts struct {
	Tasks, Labels, Dependencies, Notes, Events int64
}

// Import copies d into the database, which must be empty (ErrNotEmpty otherwise), in
// one transaction: tasks, labels and dependencies, notes, events, the seq counter and
// the id sequences. The tables are locked until the commit, so that no node writes
// meanwhile.
func (db *DB) Import(ctx context.Context, d Dump) (ImportCounts, error) {
	var n ImportCounts
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return n, fmt.Errorf("import: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "LOCK TABLE tasks, task_labels, task_deps, notes, events, event_seq IN EXCLUSIVE MODE"); err != nil {
		return n, fmt.Errorf("import: lock the tables: %w", err)
	}
	var used bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tasks) OR EXISTS (SELECT 1 FROM events) OR (SELECT last FROM event_seq) > 0`).Scan(&used)
	if err != nil {
		return n, fmt.Errorf("import: check that the database is empty: %w", err)
	}
	if used {
		return n, ErrNotEmpty
	}

	var labels, deps [][]any
	lastID := d.LastTaskID
	next, stop := iter.Pull2(d.Tasks)
	defer stop()
	n.Tasks, err = tx.CopyFrom(ctx, pgx.Identifier{"tasks"},
		[]string{"id", "title", "description", "status", "priority", "assignee", "project", "parent_id",
			"due_at", "version", "created_at", "updated_at", "created_by", "updated_by",
			"lease_expires_at", "lease_length_us", "progress", "progress_message"},
		pgx.CopyFromFunc(func() ([]any, error) {
			t, err, ok := next()
			if !ok || err != nil {
				return nil, err
			}
			for _, l := range t.Labels {
				labels = append(labels, []any{t.ID, l})
			}
			for _, dep := range t.DependsOn {
				deps = append(deps, []any{t.ID, dep})
			}
			lastID = max(lastID, t.ID)
			return []any{t.ID, t.Title, t.Description, string(t.Status), string(t.Priority), t.Assignee, t.Project,
				t.ParentID, timeArg(t.DueAt), t.Version, t.CreatedAt.Time, t.UpdatedAt.Time, t.CreatedBy, t.UpdatedBy,
				timeArg(t.LeaseExpiresAt), t.LeaseLength.Microseconds(), t.Progress, t.ProgressMessage}, nil
		}))
	if err != nil {
		return n, fmt.Errorf("import tasks: %w", err)
	}
	if n.Labels, err = tx.CopyFrom(ctx, pgx.Identifier{"task_labels"}, []string{"task_id", "label"}, pgx.CopyFromRows(labels)); err != nil {
		return n, fmt.Errorf("import labels: %w", err)
	}
	if n.Dependencies, err = tx.CopyFrom(ctx, pgx.Identifier{"task_deps"}, []string{"task_id", "depends_on"}, pgx.CopyFromRows(deps)); err != nil {
		return n, fmt.Errorf("import dependencies: %w", err)
	}
	if n.Notes, err = importNotes(ctx, tx, d.Notes, d.LastNoteID); err != nil {
		return n, err
	}

	lastSeq := d.LastSeq
	nextEvent, stopEvents := iter.Pull2(d.Events)
	defer stopEvents()
	n.Events, err = tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"seq", "type", "task_id", "source", "actor", "time", "data", "match"},
		pgx.CopyFromFunc(func() ([]any, error) {
			e, err, ok := nextEvent()
			if !ok || err != nil {
				return nil, err
			}
			lastSeq = max(lastSeq, e.Seq)
			var taskID *int64
			if e.TaskID != 0 {
				taskID = &e.TaskID
			}
			return []any{e.Seq, e.Type, taskID, e.Source, e.Actor, e.Time, e.Data, e.Match}, nil
		}))
	if err != nil {
		return n, fmt.Errorf("import events: %w", err)
	}

	if _, err := tx.Exec(ctx, "UPDATE event_seq SET last = $1", lastSeq); err != nil {
		return n, fmt.Errorf("import: set the seq counter: %w", err)
	}
	if lastID > 0 {
		if _, err := tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence('tasks', 'id'), $1)", lastID); err != nil {
			return n, fmt.Errorf("import: set the task id sequence: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return n, fmt.Errorf("import: commit: %w", err)
	}
	return n, nil
}
