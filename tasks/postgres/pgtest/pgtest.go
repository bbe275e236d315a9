// Package pgtest gives tests a PostgreSQL database of their own on the server named by
// TASKHUB_TEST_POSTGRES, and skips them without one (but fails them in CI, which must
// run them).
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// ServerDSN returns the URL of the PostgreSQL server that the tests create their
// databases on, from TASKHUB_TEST_POSTGRES. Without one the tests skip, but not in CI,
// which must run them.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("TASKHUB_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("TASKHUB_TEST_POSTGRES not set, and CI must run the PostgreSQL tests (.ci/run starts a server for them)")
		}
		t.Skip("TASKHUB_TEST_POSTGRES not set: give it a PostgreSQL server's URL to run these tests, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	return dsn
}

var databases atomic.Int64

// NewDatabase creates an empty database on the test server, dropped when t ends, and
// returns its name and DSN.
func NewDatabase(t testing.TB) (name, dsn string) {
	t.Helper()
	server := ServerDSN(t)
	name = fmt.Sprintf("taskhub_test_%d_%d", os.Getpid(), databases.Add(1))
	Admin(t, server, "CREATE DATABASE "+name)
	t.Cleanup(func() { Admin(t, server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return name, WithDatabase(t, server, name)
}

// WithDatabase returns dsn with its database set to name.
func WithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name // key=value settings: the last one counts
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Admin runs sql on a connection of its own to dsn.
func Admin(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
