package sqlite

import (
	"context"
	"fmt"
	"iter"

	"taskhub/tasks"
)

const noteColumns = "id, task_id, author, time, text"

func scanNote(row scanner) (*tasks.Note, error) {
	var (
		n  tasks.Note
		at string
	)
	if err := row.Scan(&n.ID, &n.TaskID, &n.Author, &at, &n.Text); err != nil {
		return nil, err
	}
	t, err := parseTime(at)
	if err != nil {
		return nil, fmt.Errorf("note %d: %w", n.ID, err)
	}
	n.Time = t
	return &n, nil
}

// Notes implements tasks.Store.
func (db *DB) Notes(ctx context.Context, q tasks.NoteQuery) ([]*tasks.Note, error) {
	rows, err := db.reader(ctx).query("SELECT "+noteColumns+" FROM notes WHERE task_id = ? AND id > ? ORDER BY id LIMIT ?",
		q.TaskID, q.After, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("query notes: %w", err)
	}
	defer rows.Close()
	notes := []*tasks.Note{}
	for rows.Next() {
		n, err := scanNote(rows)
		if err != nil {
			return nil, fmt.Errorf("query notes: %w", mapError(err))
		}
		notes = append(notes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query notes: %w", mapError(err))
	}
	return notes, nil
}

// AddNote implements tasks.Tx. The writer holds the database's write lock, so notes
// are added one at a time, each with an id above all before it.
func (w *writeTx) AddNote(n *tasks.Note) error {
	res, err := w.exec("INSERT INTO notes (task_id, author, time, text) VALUES (?, ?, ?, ?)",
		n.TaskID, n.Author, n.Time.String(), n.Text)
	if err != nil {
		return fmt.Errorf("insert note on task %d: %w", n.TaskID, err)
	}
	if n.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("insert note on task %d: %w", n.TaskID, err)
	}
	return nil
}

// CountNotes implements tasks.Tx.
func (w *writeTx) CountNotes(id int64) (int, error) {
	var n int
	if err := w.queryRow("SELECT count(*) FROM notes WHERE task_id = ?", id).Scan(&n); err != nil {
		return 0, fmt.Errorf("count notes of task %d: %w", id, mapError(err))
	}
	return n, nil
}

// Notes yields every note, in id order.
func (x *Export) Notes(ctx context.Context) iter.Seq2[*tasks.Note, error] {
	return func(yield func(*tasks.Note, error) bool) {
		rows, err := x.tx.QueryContext(ctx, "SELECT "+noteColumns+" FROM notes ORDER BY id")
		if err != nil {
			yield(nil, fmt.Errorf("export notes: %w", mapError(err)))
			return
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNote(rows)
			if err != nil {
				yield(nil, fmt.Errorf("export notes: %w", mapError(err)))
				return
			}
			if !yield(n, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("export notes: %w", mapError(err)))
		}
	}
}
