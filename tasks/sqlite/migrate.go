package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"time"

	"taskhub/tasks"
)

// migration is one numbered schema file.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// readMigrations returns the migrations in fsys in order. Their numbers must run 1, 2, 3…
// with no gap or repeat, so a missing or doubled file is caught here, not in production.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names { // fs.Glob sorts
		m := migrationName.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must look like 0001_name.sql", name)
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: expected number %04d", name, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// migrate applies the migrations of fsys that db has not had yet, each in its own
// transaction together with its row in schema_migrations. Two processes opening the
// same new file at once are safe: the version is read again inside each transaction.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := readMigrations(fsys)
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
func applyRetrying(ctx context.Context, db *sql.DB, m migration, latest int) error {
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

func apply(ctx context.Context, db *sql.DB, m migration, latest int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
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
	if current >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.version, m.name, tasks.NewTime(time.Now()).String()); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	return nil
}
