package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"time"

	"taskhub/tasks"
)

// Event is one row of the event log, every column as it is stored: what moving the
// log to another database copies.
type Event struct {
	Seq    int64
	Type   string
	TaskID int64 // 0 for an event without a task
	Source string
	Actor  string
	Time   time.Time
	Data   string // the event's JSON, seq included
	Match  string // what filters match it on, a JSON object of lists
}

// Export is the whole database as one read transaction sees it, so that what it
// gives is consistent even while a server writes to the file. Close ends it.
type Export struct {
	tx *sql.Tx
	// LastSeq is the highest seq ever given, also when its event has been pruned.
	LastSeq int64
	// LastTaskID is the highest task id ever given, also when its task has been
	// deleted.
	LastTaskID int64
	// LastNoteID is the highest note id ever given.
	LastNoteID int64
}

// Export begins a read of the whole database.
func (db *DB) Export(ctx context.Context) (*Export, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("export: %w", mapError(err))
	}
	x := &Export{tx: tx}
	// The first read fixes the transaction's snapshot.
	err = tx.QueryRowContext(ctx, `SELECT
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0),
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notes'), 0)`).Scan(&x.LastSeq, &x.LastTaskID, &x.LastNoteID)
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("export: read the sequences: %w", mapError(err))
	}
	return x, nil
}

// Close ends the read.
func (x *Export) Close() error {
	if err := x.tx.Rollback(); err != nil {
		return fmt.Errorf("export: end the read: %w", err)
	}
	return nil
}

// Tasks yields every task in id order, with its labels and dependencies.
func (x *Export) Tasks(ctx context.Context) iter.Seq2[*tasks.Task, error] {
	return func(yield func(*tasks.Task, error) bool) {
		rows, err := x.tx.QueryContext(ctx, "SELECT "+taskColumns+" FROM tasks t ORDER BY t.id")
		if err != nil {
			yield(nil, fmt.Errorf("export tasks: %w", mapError(err)))
			return
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTask(rows)
			if err != nil {
				yield(nil, fmt.Errorf("export tasks: %w", mapError(err)))
				return
			}
			if !yield(t, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("export tasks: %w", mapError(err)))
		}
	}
}

// Events yields every event the log holds, in seq order.
func (x *Export) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		rows, err := x.tx.QueryContext(ctx, "SELECT seq, type, coalesce(task_id, 0), source, actor, time, data, match FROM events ORDER BY seq")
		if err != nil {
			yield(Event{}, fmt.Errorf("export events: %w", mapError(err)))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e  Event
				at string
			)
			if err := rows.Scan(&e.Seq, &e.Type, &e.TaskID, &e.Source, &e.Actor, &at, &e.Data, &e.Match); err != nil {
				yield(Event{}, fmt.Errorf("export events: %w", mapError(err)))
				return
			}
			t, err := parseTime(at)
			if err != nil {
				yield(Event{}, fmt.Errorf("export event %d: %w", e.Seq, err))
				return
			}
			e.Time = t.Time
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(Event{}, fmt.Errorf("export events: %w", mapError(err)))
		}
	}
}
