package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
)

// NextLease implements tasks.Store: the first entry of the lease index.
func (db *DB) NextLease(ctx context.Context) (*tasks.Time, error) {
	var next *time.Time
	err := db.pool.QueryRow(ctx, `SELECT lease_expires_at FROM tasks
		WHERE lease_expires_at IS NOT NULL ORDER BY lease_expires_at LIMIT 1`).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("next lease: %w", mapError(err))
	}
	t := tasks.NewTime(*next)
	return &t, nil
}

// DueLeases implements tasks.Tx. The tasks it picks are locked until the commit; a
// task that another transaction has locked (another node expiring it, its holder
// renewing it) is skipped, not waited for. A task changed and committed by another
// transaction since this statement began is seen as it is now: PostgreSQL checks the
// condition again on the row it locks, so a lease renewed meanwhile is not taken. The
// tasks are read by a second statement, for the reason Task gives.
func (w *writeTx) DueLeases(by tasks.Time, limit int) ([]*tasks.Task, error) {
	ids, err := w.ids(`SELECT id FROM tasks WHERE lease_expires_at <= $1
		ORDER BY lease_expires_at, id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED`, by.Time, limit)
	if err != nil {
		return nil, fmt.Errorf("due leases: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	b := w.batch()
	var due []*tasks.Task
	b.Queue(selectTask+" WHERE t.id = ANY($1) ORDER BY t.lease_expires_at, t.id", ids).Query(func(rows pgx.Rows) (err error) {
		due, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tasks.Task, error) { return scanTask(row) })
		return err
	})
	if err := w.b.send(b); err != nil {
		return nil, fmt.Errorf("due leases: %w", err)
	}
	return due, nil
}
