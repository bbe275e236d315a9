package main

import (
	"context"
	"log/slog"
	"strings"

	"taskhub/tasks"
	"taskhub/tasks/postgres"
	"taskhub/tasks/sqlite"
)

// store is a database that serve and mcp open: SQLite or PostgreSQL.
type store interface {
	tasks.WebhookStore
	Close() error
}

// isPostgres reports whether db, the --db flag, names a PostgreSQL database; anything
// else is an SQLite file.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openDB opens the store that db names.
func openDB(ctx context.Context, db string, logger *slog.Logger) (store, error) {
	if isPostgres(db) {
		return postgres.Open(ctx, db, postgres.Config{Logger: logger.With("component", "postgres")})
	}
	return sqlite.Open(ctx, db)
}

// health returns what /healthz asks of st: whether its database answers. An SQLite
// file is always there once open.
func health(st store) func(context.Context) error {
	if p, ok := st.(interface{ Ping(context.Context) error }); ok {
		return p.Ping
	}
	return nil
}

// storeName is the kind of st, as /events/debug shows it.
func storeName(db string) string {
	if isPostgres(db) {
		return "postgres"
	}
	return "sqlite"
}
