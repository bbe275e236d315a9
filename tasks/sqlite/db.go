// Package sqlite is the tasks.Store on SQLite (modernc.org/sqlite, pure Go).
//
// Durability: the database runs in WAL mode with synchronous=FULL, so every commit is
// fsynced to the write-ahead log before Write returns: an acknowledged change survives
// a crash of the process and of the machine. To make that affordable, writes are group
// committed: one writer goroutine owns the only write connection and runs every Write
// that is waiting in one transaction, each inside its own savepoint, so a failing change
// undoes only itself while many changes share one fsync. The write connection keeps
// its temporary files, among them the journal of those savepoints, in memory
// (temp_store=MEMORY): what it holds lasts one transaction, and a crash needs none of
// it. Reads use a separate pool of read-only connections, which WAL lets run beside
// the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"taskhub/migrations"
	"taskhub/tasks"
	"taskhub/tasks/internal/batch"

	"github.com/fsnotify/fsnotify"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// maxBatch bounds how many changes share one transaction.
const maxBatch = 256

// busyTimeout is how long a connection waits for a lock held by another process (a
// `taskhub mcp` writing the same file) before it fails, in milliseconds.
const busyTimeout = 10000

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("database is closed")

// DB is an open TaskHub database. It implements tasks.Store.
type DB struct {
	write      *sql.DB   // one connection: writer
	writer     *sql.Conn // that connection, used only by the writer goroutine
	read       *sql.DB
	writeStmts *stmtCache // prepared on writer
	readStmts  *stmtCache

	mu     sync.RWMutex // held for reading while sending on ops, for writing by Close
	closed bool
	ops    chan *op
	done   chan struct{} // closed when the writer goroutine has returned

	committed chan struct{} // capacity 1: a transaction has committed since last read
	watcher   *fsnotify.Watcher
	watchDone chan struct{} // closed when the watcher's goroutine has returned
}

// op is one Write waiting for the writer.
type op struct {
	ctx  context.Context
	fn   func(tasks.Tx) error
	done chan error
}

var _ tasks.Store = (*DB)(nil)

// Open opens the database file at path, creating it if needed, and brings its schema
// up to date. A database whose schema is newer than this binary is refused, and so is
// a file that is damaged or cannot be written: better at the start, with a message
// that says so, than with every change failing later.
func Open(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// A file: URI with the path escaped, so no character in it can be read as a
	// parameter. The driver reads the _ parameters; SQLite ignores them.
	name := "file:" + (&url.URL{Path: abs}).EscapedPath()
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeout)

	write, err := sql.Open("sqlite", name+"?"+common+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_txlock=immediate") // immediate: migrations
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := prepare(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open database %s: %w", path, explain(err))
	}
	// The writer keeps the connection for good and runs BEGIN and COMMIT itself, so it
	// can prepare a statement on it at any time, also inside a transaction.
	writer, err := write.Conn(ctx)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", name+"?"+common+"&_query_only=1")
	if err != nil {
		writer.Close()
		write.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	db := &DB{
		write: write, writer: writer, read: read, writeStmts: newStmtCache(writer), readStmts: newStmtCache(read),
		ops: make(chan *op, maxBatch), done: make(chan struct{}), committed: make(chan struct{}, 1),
		watchDone: make(chan struct{}),
	}
	if err := db.watchWAL(abs); err != nil {
		read.Close()
		writer.Close()
		write.Close()
		return nil, err
	}
	go db.run()
	return db, nil
}

// prepare makes the database on db ready for use: it checks that the file is intact
// before anything is written into it, migrates its schema, and checks that it can be
// written.
func prepare(ctx context.Context, db *sql.DB) error {
	if err := checkIntact(ctx, db); err != nil {
		return err
	}
	if err := migrate(ctx, db, migrations.SQLite); err != nil {
		return err
	}
	return checkWritable(ctx, db)
}

// checkIntact runs SQLite's quick check, which reads every page of the file and
// checks its structure, but not that each index matches its table (integrity_check,
// which also does that, takes about three times as long). On a file of 100,000 tasks
// (95 MB) it takes 0.6-1 s.
func checkIntact(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check(3)")
	if err != nil {
		return fmt.Errorf("check the file: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return fmt.Errorf("check the file: %w", err)
		}
		if p != "ok" {
			p = strings.TrimPrefix(p, "*** in database main ***\n")
			problems = append(problems, strings.ReplaceAll(p, "\n", "; "))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the file: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errDamaged, strings.Join(problems, "; "))
	}
	return nil
}

// errDamaged says that the file's pages are not what SQLite wrote.
var errDamaged = errors.New("the file is damaged")

// checkWritable checks that the database can be written: SQLite opens a file that it
// may not write read-only, without a word, and every change would then fail. The
// statement changes nothing and is rolled back, but it needs a writable file.
func checkWritable(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("check the file can be written: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE schema_migrations SET version = version WHERE 0"); err != nil {
		return fmt.Errorf("check the file can be written: %w", err)
	}
	return nil
}

// explain adds to an error in opening the database what it means for the file's owner,
// when the file itself is the cause.
func explain(err error) error {
	if errors.Is(err, errDamaged) {
		return fmt.Errorf("%w; taskhub will not write into it: restore it from a backup", err)
	}
	e, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return err
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("the file, or the directory it is in, cannot be written, and taskhub must write both (SQLite keeps its write-ahead log beside the file): %w", err)
	case sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("the file is damaged; taskhub will not write into it: restore it from a backup: %w", err)
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("the file is not an SQLite database, or is damaged: %w", err)
	}
	return err
}

// Committed returns a channel that receives a value after transactions commit, in
// this process or (through the file system) in another: one value stands for every
// commit since the channel was last read. It lets a reader of the event log wait for
// news instead of polling.
func (db *DB) Committed() <-chan struct{} { return db.committed }

// Close finishes the writes already queued, stops the writer and closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.ops)
	db.mu.Unlock()
	<-db.done
	db.watcher.Close()
	<-db.watchDone
	db.readStmts.close()
	db.writeStmts.close()
	return errors.Join(db.read.Close(), db.writer.Close(), db.write.Close())
}

// Write implements tasks.Store. It hands fn to the writer goroutine and waits for the
// commit of the transaction fn ran in. If ctx ends before fn has started, fn does not
// run; once it has started, Write reports the outcome whatever ctx does, so a caller
// never mistakes a committed change for a failed one.
func (db *DB) Write(ctx context.Context, fn func(tasks.Tx) error) error {
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.ops <- o:
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	db.mu.RUnlock()
	return <-o.done
}

// run is the writer goroutine: it takes whatever ops are waiting, up to maxBatch, and
// commits them together, until Close closes ops.
func (db *DB) run() {
	defer close(db.done)
	buf := make([]*op, 0, maxBatch)
	results := make([]error, 0, maxBatch)
	for o := range db.ops {
		db.commit(batch.Gather(db.ops, o, buf[:0], maxBatch), results[:0])
	}
}

// commit runs batch in one transaction, each op in a savepoint, with the ops that
// come while it runs, and tells each op its outcome once the transaction is durable
// (or has failed). The statements run under a context that is never cancelled:
// cancelling one caller's statement would interrupt SQLite, which rolls back the whole
// transaction and with it the other callers' work.
func (db *DB) commit(ops []*op, results []error) {
	w := &writeTx{conn: conn{ctx: context.Background(), stmts: db.writeStmts}}
	ops, results, err := w.run(db.ops, ops, results)
	if err == nil {
		db.signalCommitted()
	} else {
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
	}
	for i, o := range ops {
		o.done <- results[i]
	}
	clear(ops) // the arrays serve the next batch: hold on to nothing of this one
	clear(results)
}

func (db *DB) signalCommitted() {
	select {
	case db.committed <- struct{}{}:
	default: // a signal is already waiting: its reader will see this commit too
	}
}

// run runs ops as one transaction, and before it commits, the ops that came on more
// meanwhile, up to maxBatch in all: a caller that comes while a batch runs shares its
// commit rather than waiting for it and then for one more. It returns the ops it ran,
// and their results: each op that failed alone has its own. An error it returns undid
// the whole transaction, so it is every other op's result.
func (w *writeTx) run(more <-chan *op, ops []*op, results []error) ([]*op, []error, error) {
	results = append(results, make([]error, len(ops))...)
	if _, err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return ops, results, fmt.Errorf("begin: %w", err)
	}
	w.lastSeq = 0 // read again: another process may have written since
	for i := 0; ; i++ {
		if i == len(ops) {
			if ops = batch.More(more, ops, maxBatch); i == len(ops) {
				break
			}
			results = append(results, make([]error, len(ops)-i)...)
		}
		o := ops[i]
		if err := o.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := w.exec("SAVEPOINT op"); err != nil {
			return ops, results, w.abort("savepoint", err)
		}
		lastSeq := w.lastSeq
		if results[i] = runOp(o, w); results[i] != nil {
			w.lastSeq = lastSeq // the op's events are undone with it
			if _, err := w.exec("ROLLBACK TO op"); err != nil {
				// The savepoint is gone when SQLite has undone the whole transaction,
				// as it does after some errors (a full disk, say): the op's error is then
				// the reason every other op failed too.
				return ops, results, w.abort("roll back to savepoint", errors.Join(results[i], err))
			}
		}
		if _, err := w.exec("RELEASE op"); err != nil {
			return ops, results, w.abort("release savepoint", err)
		}
	}
	if _, err := w.exec("COMMIT"); err != nil {
		return ops, results, w.abort("commit", err)
	}
	return ops, results, nil
}

// abort rolls the transaction back after step failed. SQLite may have rolled it back
// already, in which case ROLLBACK fails harmlessly; its error is kept only as detail.
func (w *writeTx) abort(step string, err error) error {
	if _, rerr := w.exec("ROLLBACK"); rerr != nil {
		return fmt.Errorf("%s: %w (and rollback: %v)", step, err, rerr)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// runOp runs one op's function, turning a panic into an error so that one bad change
// cannot take the writer, and every other caller, down with it.
func runOp(o *op, tx tasks.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v", r)
		}
	}()
	return o.fn(tx)
}
