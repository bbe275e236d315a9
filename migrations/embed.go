// Package migrations holds the database schema as numbered SQL files, NNNN_name.sql,
// applied in order, each in its own transaction, by the store at start-up: SQLite's
// in this directory, PostgreSQL's in postgres/.
package migrations

import "embed"

// FS holds every SQLite migration file.
//
//go:embed *.sql
var FS embed.FS

// Postgres holds every PostgreSQL migration file, under postgres/.
//
//go:embed postgres/*.sql
var Postgres embed.FS
