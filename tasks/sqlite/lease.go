package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"taskhub/tasks"
)

// NextLease implements tasks.Store: the first entry of the lease index.
func (db *DB) NextLease(ctx context.Context) (*tasks.Time, error) {
	var s string
	err := db.reader(ctx).queryRow(`SELECT lease_expires_at FROM tasks
		WHERE lease_expires_at IS NOT NULL ORDER BY lease_expires_at LIMIT 1`).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("next lease: %w", mapError(err))
	}
	t, err := parseTime(s)
	if err != nil {
		return nil, fmt.Errorf("next lease: %w", err)
	}
	return &t, nil
}

// DueLeases implements tasks.Tx. It runs inside the writer's transaction, which holds
// the database's write lock from BEGIN IMMEDIATE on: what it reads is the tasks as
// they are, and no other writer, in this process or another, changes them before the
// commit.
func (w *writeTx) DueLeases(by tasks.Time, limit int) ([]*tasks.Task, error) {
	rows, err := w.query("SELECT "+taskColumns+` FROM tasks t
		WHERE t.lease_expires_at IS NOT NULL AND t.lease_expires_at <= ?
		ORDER BY t.lease_expires_at, t.id LIMIT ?`, by.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("due leases: %w", err)
	}
	defer rows.Close()
	var due []*tasks.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("due leases: %w", mapError(err))
		}
		due = append(due, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due leases: %w", mapError(err))
	}
	return due, nil
}
