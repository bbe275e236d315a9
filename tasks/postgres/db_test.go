package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/postgres/pgtest"
	"taskhub/tasks/storetest"

	"github.com/jackc/pgx/v5"
)

func openTest(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStoreContract(t *testing.T) {
	pgtest.ServerDSN(t) // skip once, not in every case
	storetest.Run(t, func(t *testing.T) tasks.Store {
		_, dsn := pgtest.NewDatabase(t)
		return openTest(t, dsn)
	})
}

// nodes is one database as several nodes see it: each Write goes to the next store in
// turn, reads and wake-ups come from the first, so every rule and wake-up the suite
// checks must hold across them.
type nodes struct {
	*DB
	all  []*DB
	next atomic.Int64
}

func (n *nodes) Write(ctx context.Context, fn func(tasks.Tx) error) error {
	return n.all[int(n.next.Add(1))%len(n.all)].Write(ctx, fn)
}

func TestStoreContractAcrossNodes(t *testing.T) {
	pgtest.ServerDSN(t)
	storetest.Run(t, func(t *testing.T) tasks.Store {
		_, dsn := pgtest.NewDatabase(t)
		all := []*DB{openTest(t, dsn), openTest(t, dsn), openTest(t, dsn)}
		return &nodes{DB: all[0], all: all}
	})
}

func as(name string) context.Context {
	return tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: name})
}

func create(t *testing.T, svc *tasks.Service) *tasks.Task {
	t.Helper()
	task, err := svc.Create(as("alice"), tasks.Update{Title: tasks.Value("a task")})
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// newTask is a valid task to write with Tx.CreateTask.
func newTask(title string) *tasks.Task {
	now := tasks.NewTime(time.Now())
	return &tasks.Task{Title: title, Status: tasks.StatusTodo, Priority: tasks.PriorityMedium,
		Labels: []string{}, DependsOn: []int64{}, Version: 1, CreatedAt: now, UpdatedAt: now}
}

// TestWritesFailAlone has Writes that break a foreign key run among Writes that do
// not, sharing transactions: each broken one reports a conflict, and undoes only
// itself.
func TestWritesFailAlone(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	db := openTest(t, dsn)
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Write(context.Background(), func(tx tasks.Tx) error {
				task := newTask(fmt.Sprint(i))
				if i%2 == 1 {
					missing := int64(1 << 40)
					task.ParentID = &missing
				}
				if err := tx.CreateTask(task); err != nil {
					return err
				}
				return tx.AppendEvent(&tasks.Event{Type: tasks.EventTaskCreated, TaskID: task.ID, Source: tasks.SourceSystem, Task: task})
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		want := ""
		if i%2 == 1 {
			want = tasks.EConflict
		}
		if got := tasks.ErrorCode(err); got != want {
			t.Errorf("write %d: %v, want code %q", i, err, want)
		}
	}
	list, err := db.Tasks(context.Background(), tasks.TaskQuery{Limit: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	records, err := db.Events(context.Background(), tasks.EventQuery{Limit: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n/2 || len(records) != n/2 || records[len(records)-1].Seq != n/2 {
		t.Errorf("%d tasks and %d events (last %v) after %d good writes", len(list), len(records), records, n/2)
	}
}

// TestDeadlockRetried makes two nodes deadlock for certain: each Write locks one task
// and then, once the other holds its own, the other's. PostgreSQL breaks the deadlock
// by failing one; the store runs that one again, and both succeed.
func TestDeadlockRetried(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	svc := tasks.NewService(a)
	x, y := create(t, svc), create(t, svc)
	var runs atomic.Int64
	var holding sync.WaitGroup
	holding.Add(2)
	write := func(db *DB, first, second int64) func() error {
		var once sync.Once
		return func() error {
			return db.Write(context.Background(), func(tx tasks.Tx) error {
				runs.Add(1)
				if _, err := tx.Task(first); err != nil {
					return err
				}
				once.Do(func() { holding.Done(); holding.Wait() })
				_, err := tx.Task(second)
				return err
			})
		}
	}
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { errA = write(a, x.ID, y.ID)() })
	wg.Go(func() { errB = write(b, y.ID, x.ID)() })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Errorf("the deadlocked writes: %v and %v, want both to succeed", errA, errB)
	}
	if got := runs.Load(); got != 3 {
		t.Errorf("the writes ran %d times, want 3: the one that lost the deadlock twice", got)
	}
}

// TestConnectionLostBeforeCommit has the server end the connection that a Write runs
// on, in the middle of it: nothing was committed, so the batch runs again on a new
// connection, and the caller sees only its success.
func TestConnectionLostBeforeCommit(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	db := openTest(t, dsn)
	var runs atomic.Int64
	err := db.Write(context.Background(), func(tx tasks.Tx) error {
		if _, err := tx.Missing([]int64{1}); err != nil {
			return err
		}
		if runs.Add(1) == 1 {
			if err := terminate(dsn, tx.(*writeTx).b.conn.PgConn().PID()); err != nil {
				return err
			}
		}
		return tx.CreateTask(newTask("after the loss"))
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if runs.Load() != 2 {
		t.Errorf("fn ran %d times, want 2", runs.Load())
	}
	if list, err := db.Tasks(context.Background(), tasks.TaskQuery{Limit: 10}); err != nil || len(list) != 1 {
		t.Errorf("tasks after the write: %v, %v; want 1", list, err)
	}
}

// terminate ends the server's backend with pid, and waits until it is gone.
func terminate(dsn string, pid uint32) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend($1, 10000)", int32(pid))
	return err
}

// TestAppendEventSetsSeq: once Write has returned, each event appended has the seq
// its record was stored with, as a caller that hands the events on relies on.
func TestAppendEventSetsSeq(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	db := openTest(t, dsn)
	create(t, tasks.NewService(db))
	events := []*tasks.Event{
		{Type: tasks.EventFileChanged, Source: tasks.SourceFileWatch, File: &tasks.FileChange{Dir: "/w", Path: "a.md", Op: tasks.FileWrite}},
		{Type: tasks.EventFileChanged, Source: tasks.SourceFileWatch, File: &tasks.FileChange{Dir: "/w", Path: "b.md", Op: tasks.FileWrite}},
	}
	err := db.Write(context.Background(), func(tx tasks.Tx) error {
		for _, e := range events {
			if err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	records, err := db.Events(context.Background(), tasks.EventQuery{After: 1, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != len(events) {
		t.Fatalf("%d records, want %d", len(records), len(events))
	}
	for i, e := range events {
		want, err := e.Record()
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(2+i) || string(records[i].Data) != string(want.Data) {
			t.Errorf("event %d has seq %d, stored as %s; want seq %d, stored as %s", i, e.Seq, records[i].Data, 2+i, want.Data)
		}
	}
}

// TestTaskQuery checks each filter of Tasks, which the suite leaves to the API's tests
// on SQLite.
func TestTaskQuery(t *testing.T) {
	_, dsn := pgtest.NewDatabase(t)
	db := openTest(t, dsn)
	svc := tasks.NewService(db)
	mk := func(u tasks.Update) int64 {
		t.Helper()
		task, err := svc.Create(as("alice"), u)
		if err != nil {
			t.Fatal(err)
		}
		return task.ID
	}
	parent := mk(tasks.Update{Title: tasks.Value("Parent"), Status: tasks.Value(tasks.StatusDone)})
	a := mk(tasks.Update{Title: tasks.Value("Fix the 100% case, xyu"), Project: tasks.Value("p"), ParentID: tasks.Value(&parent)})
	b := mk(tasks.Update{Title: tasks.Value("other"), Description: tasks.Value("about fix_up 1000"), Assignee: tasks.Value("bob"),
		Labels: tasks.Value([]string{"x"}), Status: tasks.Value(tasks.StatusReview)})
	for _, tc := range []struct {
		name string
		q    tasks.TaskQuery
		want []int64
	}{
		{"all", tasks.TaskQuery{}, []int64{parent, a, b}},
		{"after", tasks.TaskQuery{After: parent}, []int64{a, b}},
		{"statuses", tasks.TaskQuery{Statuses: []tasks.Status{tasks.StatusDone, tasks.StatusReview}}, []int64{parent, b}},
		{"assignee", tasks.TaskQuery{Assignee: "bob"}, []int64{b}},
		{"project", tasks.TaskQuery{Project: "p"}, []int64{a}},
		{"label", tasks.TaskQuery{Label: "x"}, []int64{b}},
		{"parent", tasks.TaskQuery{ParentID: &parent}, []int64{a}},
		{"text in any case", tasks.TaskQuery{Text: "FIX"}, []int64{a, b}},
		{"percent taken as itself", tasks.TaskQuery{Text: "00%"}, []int64{a}},
		{"underscore taken as itself", tasks.TaskQuery{Text: "x_u"}, []int64{b}},
	} {
		tc.q.Limit = 10
		list, err := db.Tasks(context.Background(), tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []int64
		for _, task := range list {
			got = append(got, task.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: tasks %v, want %v", tc.name, got, tc.want)
		}
	}
}
