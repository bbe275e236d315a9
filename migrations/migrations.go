// Package migrations holds the database schemas as numbered SQL files, NNNN_name.sql,
// one set per dialect (sqlite/, postgres/), applied in order, each in its own
// transaction, by the store at start-up.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite and Postgres hold each dialect's migration files.
var (
	SQLite   = sub("sqlite")
	Postgres = sub("postgres")
)

func sub(dir string) fs.FS {
	f, _ := fs.Sub(files, dir) // a constant, valid path
	return f
}

// Migration is one numbered schema file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var name = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// Read returns the migrations in fsys in order. Their numbers must run 1, 2, 3… with
// no gap or repeat, so a missing or doubled file is caught here, not in production.
func Read(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, n := range names { // fs.Glob sorts
		m := name.FindStringSubmatch(n)
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must look like 0001_name.sql", n)
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: expected number %04d", n, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: n, SQL: string(b)})
	}
	return ms, nil
}
