// Package migrations holds the database schema as numbered SQL files, NNNN_name.sql,
// applied in order, each in its own transaction, by the store at start-up.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
