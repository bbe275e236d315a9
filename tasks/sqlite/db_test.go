package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
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
	if want, _ := migrations.Read(migrations.SQLite); n != len(want) {
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

// TestLateWriteSharesCommit: a Write that comes while the writer runs a transaction
// joins it, rather than waiting for its commit and then for one more; and a late
// Write that fails undoes only itself.
func TestLateWriteSharesCommit(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "taskhub.db"))
	ctx := context.Background()
	txs := make(chan tasks.Tx, 3)
	late := make(chan error, 2)
	err := db.Write(ctx, func(tx tasks.Tx) error {
		txs <- tx
		go func() {
			late <- db.Write(ctx, func(tx tasks.Tx) error { txs <- tx; return errors.New("refused") })
		}()
		go func() {
			late <- db.Write(ctx, func(tx tasks.Tx) error {
				txs <- tx
				return tx.CreateTask(&tasks.Task{Title: "late", Status: tasks.StatusTodo, Priority: tasks.PriorityLow, Version: 1})
			})
		}()
		for len(db.ops) < 2 { // both queued behind this Write, which holds the writer
			runtime.Gosched()
		}
		return tx.CreateTask(&tasks.Task{Title: "first", Status: tasks.StatusTodo, Priority: tasks.PriorityLow, Version: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for range 2 {
		if err := <-late; err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) != 1 || errs[0] != "refused" {
		t.Errorf("late Writes' errors: %q, want only the one that refused", errs)
	}
	first, a, b := <-txs, <-txs, <-txs
	if a != first || b != first {
		t.Errorf("the late Writes ran in transactions %p and %p, not in the first one's, %p", a, b, first)
	}
	page, err := tasks.NewService(db).List(ctx, tasks.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, task := range page.Tasks {
		titles = append(titles, task.Title)
	}
	if slices.Sort(titles); !slices.Equal(titles, []string{"first", "late"}) {
		t.Errorf("tasks: %q, want first and late", titles)
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

// TestDiskFull: a write that finds no room says that the disk is full and changes
// nothing, and writing works again once there is room. A database at its
// max_page_count gets from SQLite the SQLITE_FULL that a full disk gives.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "taskhub.db"))
	svc := tasks.NewService(db)
	if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("before")}); err != nil {
		t.Fatal(err)
	}
	setMaxPages := func(n int) {
		t.Helper()
		err := db.Write(ctx, func(tx tasks.Tx) error {
			_, err := tx.(*writeTx).exec(fmt.Sprintf("PRAGMA max_page_count = %d", n))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setMaxPages(1) // SQLite makes it the pages the file has now
	big := tasks.Update{Title: tasks.Value("no room"), Description: tasks.Value(strings.Repeat("x", 60000))}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs { // in one transaction, most likely
		wg.Go(func() { _, errs[i] = svc.Create(ctx, big) })
	}
	wg.Wait()
	for i, err := range errs {
		e, ok := errors.AsType[*tasks.Error](err)
		if !ok || e.Code != tasks.EInternal || !strings.Contains(e.Message, "disk") || !strings.Contains(e.Message, "full") {
			t.Errorf("write %d on a full disk: %v; want an internal error saying the disk is full", i, err)
		}
	}
	if last, err := db.LastSeq(ctx); err != nil || last != 1 {
		t.Errorf("the log ends at %d (%v), want 1: a write on a full disk changed something", last, err)
	}

	setMaxPages(1 << 30)
	if _, err := svc.Create(ctx, big); err != nil {
		t.Fatalf("once there is room again: %v", err)
	}
}

// TestOpenRefusesDamagedFile: a file with a page overwritten (as a failing disk or a
// torn copy leaves it) is refused at Open, with a message that says so, and nothing
// is written into it.
func TestOpenRefusesDamagedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "taskhub.db")
	db := openTest(t, path)
	svc := tasks.NewService(db)
	for range 100 {
		if _, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("filler"), Description: tasks.Value(strings.Repeat("x", 1000))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	damagePage(t, path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if db, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "damaged") {
		if err == nil {
			db.Close()
		}
		t.Fatalf("opening a damaged file: %v; want an error saying it is damaged", err)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
		t.Errorf("Open changed the damaged file (%v)", err)
	}
}

// damagePage overwrites a page in the middle of the database file at path.
func damagePage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, pageSize), fi.Size()/pageSize/2*pageSize); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesReadOnlyFile: a database file that cannot be written is refused at
// Open, with a message that says so, rather than opened for every change to fail.
func TestOpenRefusesReadOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskhub.db")
	openTest(t, path).Close()
	makeReadOnly(t, path)
	db, err := Open(context.Background(), path)
	if err == nil {
		db.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Fatalf("opening a read-only file: %v; want an error saying it cannot be written", err)
	}
}

// makeReadOnly makes the file at path read-only for this process until the test ends.
// Permissions do not stop root, so as root it makes the file immutable (chattr +i).
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("running as root, and chattr +i cannot make a file read-only here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", path, err, out)
		}
	})
}
