package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"taskhub/migrations"
	"taskhub/tasks"
)

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrationFilesAreNumbered(t *testing.T) {
	ms, err := readMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
	}{
		{"gap", fstest.MapFS{"0001_a.sql": {}, "0003_c.sql": {}}},
		{"repeat", fstest.MapFS{"0001_a.sql": {}, "0001_b.sql": {}}},
		{"bad name", fstest.MapFS{"0001 a.sql": {}}},
	} {
		if _, err := readMigrations(tc.files); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestNewerDatabaseRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskhub.db")
	openTest(t, path).Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', '')"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opening a newer database: %v", err)
	}
}

// TestConcurrentFirstOpen opens one new file from two stores at once, as a server and
// a `taskhub mcp` started together would: both must find the schema in place.
func TestConcurrentFirstOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskhub.db")
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, 4)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	var n int
	if err := dbs[0].read.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want, _ := readMigrations(migrations.FS); n != len(want) {
		t.Errorf("%d migrations recorded, want %d", n, len(want))
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskhub.db")
	db := openTest(t, path)
	created, err := tasks.NewService(db).Create(context.Background(), tasks.Update{Title: tasks.Value("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(context.Background(), func(tasks.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	got, err := openTest(t, path).Task(context.Background(), created.ID)
	if err != nil || got.Title != "kept" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

// TestPanicInWrite checks that a write function that panics fails alone and leaves the
// writer serving everyone else.
func TestPanicInWrite(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "taskhub.db"))
	err := db.Write(context.Background(), func(tx tasks.Tx) error {
		if err := tx.CreateTask(&tasks.Task{Title: "half", Status: tasks.StatusTodo, Priority: tasks.PriorityLow, Version: 1}); err != nil {
			return err
		}
		panic("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v, want the panic as an error", err)
	}
	svc := tasks.NewService(db)
	if _, err := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("after")}); err != nil {
		t.Fatalf("write after a panic: %v", err)
	}
	page, err := svc.List(context.Background(), tasks.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != 1 || page.Tasks[0].Title != "after" {
		t.Errorf("tasks after a panicking write: %+v", page.Tasks)
	}
}

func TestPruneEvents(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "taskhub.db"))
	ctx := context.Background()
	svc := tasks.NewService(db)
	for range 3 {
		if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("old")}); err != nil {
			t.Fatal(err)
		}
	}
	bounds := func() (int64, int64) {
		first, err := db.FirstSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last, err := db.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return first, last
	}
	if first, last := bounds(); first != 1 || last != 3 {
		t.Fatalf("before pruning: first %d, last %d", first, last)
	}
	if n, err := db.PruneEvents(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruning nothing: %d, %v", n, err)
	}
	if n, err := db.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("pruning all: %d, %v", n, err)
	}
	if first, last := bounds(); first != 4 || last != 3 {
		t.Fatalf("after pruning all: first %d, last %d; want 4, 3", first, last)
	}
	if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("new")}); err != nil {
		t.Fatal(err)
	}
	if first, last := bounds(); first != 4 || last != 4 {
		t.Fatalf("after a new event: first %d, last %d; seqs are never reused", first, last)
	}
}
