package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"

	"taskhub/migrations"
	"taskhub/tasks/postgres/pgtest"
)

// TestOpenTogether opens a new database from several nodes at once, as a cluster that
// starts together does: every one succeeds, and each migration is applied once.
func TestOpenTogether(t *testing.T) {
	ms, err := migrations.Read(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, dsn := pgtest.NewDatabase(t)
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				db, err := Open(context.Background(), dsn, Config{})
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d of %d at once: %v", i+1, n, err)
			}
		}
		db := openTest(t, dsn)
		var applied, latest int
		if err := db.pool.QueryRow(context.Background(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&applied, &latest); err != nil {
			t.Fatal(err)
		}
		if applied != len(ms) || latest != len(ms) {
			t.Errorf("schema_migrations has %d rows up to version %d, want %d", applied, latest, len(ms))
		}
	}
}

func TestNewerDatabaseRefused(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	db := openTest(t, dsn)
	if _, err := db.pool.Exec(context.Background(),
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', now())"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(context.Background(), dsn, Config{})
	if err == nil || !strings.Contains(err.Error(), "newer than this taskhub") {
		t.Fatalf("opening a newer database: %v", err)
	}
}
