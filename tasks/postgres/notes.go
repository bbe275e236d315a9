package postgres

import (
	"context"
	"fmt"
	"iter"
	"time"

	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
)

const noteColumns = "id, task_id, author, time, text"

func scanNote(row pgx.Row) (*tasks.Note, error) {
	var (
		n  tasks.Note
		at time.Time
	)
	if err := row.Scan(&n.ID, &n.TaskID, &n.Author, &at, &n.Text); err != nil {
		return nil, err
	}
	n.Time = tasks.NewTime(at)
	return &n, nil
}

// Notes implements tasks.Store.
func (db *DB) Notes(ctx context.Context, q tasks.NoteQuery) ([]*tasks.Note, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+noteColumns+" FROM notes WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3",
		q.TaskID, q.After, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("query notes: %w", mapError(err))
	}
	notes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tasks.Note, error) { return scanNote(row) })
	if err != nil {
		return nil, fmt.Errorf("query notes: %w", mapError(err))
	}
	if notes == nil {
		notes = []*tasks.Note{}
	}
	return notes, nil
}

// AddNote implements tasks.Tx. The note takes its id from the identity once the
// transaction holds the lock on its task's row (see Task): the next note of the task
// waits for that lock, so it takes a higher id and commits after this one.
func (w *writeTx) AddNote(n *tasks.Note) error {
	w.wrote = true
	q := w.batch()
	q.Queue("INSERT INTO notes (task_id, author, time, text) VALUES ($1, $2, $3, $4) RETURNING id",
		n.TaskID, n.Author, n.Time.Time, n.Text).QueryRow(func(row pgx.Row) error { return row.Scan(&n.ID) })
	if err := w.b.send(q); err != nil {
		return fmt.Errorf("insert note on task %d: %w", n.TaskID, err)
	}
	return nil
}

// CountNotes implements tasks.Tx. A note added to the task by another transaction
// after this count waits for the lock this one holds on the task's row.
func (w *writeTx) CountNotes(id int64) (int, error) {
	q := w.batch()
	var n int
	q.Queue("SELECT count(*) FROM notes WHERE task_id = $1", id).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	if err := w.b.send(q); err != nil {
		return 0, fmt.Errorf("count notes of task %d: %w", id, err)
	}
	return n, nil
}

// importNotes copies notes, with their ids, in the transaction of Import, and sets the
// notes' id sequence above lastID and every id copied.
func importNotes(ctx context.Context, tx pgx.Tx, notes iter.Seq2[*tasks.Note, error], lastID int64) (int64, error) {
	var n int64
	if notes != nil {
		next, stop := iter.Pull2(notes)
		defer stop()
		var err error
		n, err = tx.CopyFrom(ctx, pgx.Identifier{"notes"}, []string{"id", "task_id", "author", "time", "text"},
			pgx.CopyFromFunc(func() ([]any, error) {
				note, err, ok := next()
				if !ok || err != nil {
					return nil, err
				}
				lastID = max(lastID, note.ID)
				return []any{note.ID, note.TaskID, note.Author, note.Time.Time, note.Text}, nil
			}))
		if err != nil {
			return n, fmt.Errorf("import notes: %w", err)
		}
	}
	if lastID > 0 {
		if _, err := tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence('notes', 'id'), $1)", lastID); err != nil {
			return n, fmt.Errorf("import: set the note id sequence: %w", err)
		}
	}
	return n, nil
}
