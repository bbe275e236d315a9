package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"taskhub/migrations"
	"taskhub/tasks"
)

// migrate applies the migrations of fsys that db has not had yet, each in its own
// transaction together with its row in schema_migrations. Two processes opening the
// same new file at once are safe: the version is read again inside each transaction.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := migrations.Read(fsys)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := applyRetrying(ctx, db, m, len(ms)); err != nil {
			return err
		}
	}
	return nil
}

// applyRetrying is apply, tried again while it fails with SQLITE_BUSY. That happens
// only while a new file turns from a rollback journal to WAL as several connections
// open it at once: SQLite then answers BUSY at once, without waiting, to rule out a
// deadlock between them. Once the file is in WAL mode, the busy timeout does the waiting.
func applyRetrying(ctx context.Context, db *sql.DB, m migrations.Migration, latest int) error {
	for attempt := 1; ; attempt++ {
		err := apply(ctx, db, m, latest)
		if !isBusy(err) || attempt == 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

func apply(ctx context.Context, db *sql.DB, m migrations.Migration, latest int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	// Inside the transaction, which takes the write lock first (BEGIN IMMEDIATE): run
	// alone, a statement that reads and then writes fails at once with SQLITE_BUSY in
	// WAL mode when another connection wrote in between, instead of waiting its turn.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > latest {
		return fmt.Errorf("the database schema is at version %d, newer than this taskhub knows (%d): use a newer taskhub", current, latest)
	}
	if current >= m.Version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, tasks.NewTime(time.Now()).String()); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	return nil
}
