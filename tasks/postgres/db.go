// Package postgres is the tasks.Store on PostgreSQL (github.com/jackc/pgx/v5), which
// lets several TaskHub nodes share one database.
//
// One committed order. An event's seq comes from a one-row counter, event_seq, that a
// transaction updates as its last step before COMMIT. The row stays locked until the
// commit is done, so the next transaction to take seqs waits for it: seqs are given
// in commit order, with no gap, on every node alike, and a transaction that fails
// gives its seqs back.
//
// Group commit. That lock is held through the commit's flush of the write-ahead log,
// so the database commits one transaction with events per flush, on every node
// together. Each node therefore runs the Writes waiting for it in batches: one
// transaction of up to maxBatch Writes, each in a savepoint of its own (a failing
// Write undoes only itself), whose events take their seqs together at the end. A few
// batches (lanes) run at once, so one runs its Writes while another commits. Every
// Write's statements are pipelined with the savepoint commands around them: a Write
// costs one round trip per Tx call, and a batch two more to commit.
//
// Rules across nodes. Transactions run at READ COMMITTED: REPEATABLE READ and
// SERIALIZABLE would fail nearly every update of the counter, which every other commit
// changes. What the Service's checks read is locked instead: a task read through
// Tx.Task until the commit (If-Match, claims, parents), the next ready task with SKIP
// LOCKED, and the dependency graph, through an advisory lock, while a Write checks new
// dependencies for a cycle. Deadlocks and serialization failures, and a connection
// lost before the commit was sent, run the batch again, with backoff; the caller sees
// only the outcome.
//
// Wake-up. The commit of a batch with events sends a NOTIFY whose payload is the last
// seq it gave. Each store listens on a connection of its own, re-established with
// backoff when it is lost, and signals Committed for the commits of other nodes as
// for its own; after a reconnection it signals once more, for what it may have missed.
//
// Durability: Write returns once COMMIT has returned, which with PostgreSQL's default
// synchronous_commit=on means the commit is flushed to disk.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"taskhub/migrations"
	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxBatch bounds how many Writes share one transaction. Each Write that writes takes
// a subtransaction id, and PostgreSQL keeps only 64 of a transaction's in shared
// memory before every other session's snapshots get slower.
const maxBatch = 64

// lanes is how many batches a node runs at once.
const lanes = 2

// defaultMaxConns is the size of the connection pool when the DSN does not set one
// (pool_max_conns): the lanes, and readers beside them.
const defaultMaxConns = 16

// acquireTimeout bounds the wait of a batch for a connection: for a free one of the
// pool, or for a new one to a server that does not answer.
const acquireTimeout = 10 * time.Second

// Retries of a batch that lost a race or its connection before the commit: at most
// maxAttempts runs in all, waiting from firstBackoff, doubling to maxBackoff, between.
const (
	maxAttempts  = 12
	firstBackoff = 5 * time.Millisecond
	maxBackoff   = time.Second
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("database is closed")

// DB is an open TaskHub database on PostgreSQL. It implements tasks.Store.
type DB struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	mu     sync.RWMutex // held for reading while sending on ops, for writing by Close
	closed bool
	ops    chan *op
	lanes  sync.WaitGroup

	committed chan struct{} // capacity 1: a transaction has committed since last read
	localSeq  atomic.Int64  // the last seq that this store's own commits gave

	listen       listenState
	stopListener context.CancelFunc
	listener     sync.WaitGroup
}

// Config is what Open needs besides the DSN; zero fields take the defaults.
type Config struct {
	// Logger is told when the connection for wake-ups is lost and when it is back.
	// Default: discard.
	Logger *slog.Logger
}

// op is one Write waiting for a lane.
type op struct {
	ctx  context.Context
	fn   func(tasks.Tx) error
	done chan error
}

var _ tasks.Store = (*DB)(nil)

// Open connects to the database that dsn names (a postgres:// URL or key=value
// settings, as libpq reads them; pool_max_conns sets the pool's size, default 16) and
// brings its schema up to date. A database whose schema is newer than this binary is
// refused. Open returns once the store listens for other nodes' commits.
func Open(ctx context.Context, dsn string, cfg Config) (*DB, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ms, err := readMigrations(postgresMigrations())
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		pc.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := migrate(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := &DB{
		pool: pool, logger: cfg.Logger, ops: make(chan *op, maxBatch), committed: make(chan struct{}, 1),
		listen: newListenState(),
	}
	conn, err := db.connectListener(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	lctx, stop := context.WithCancel(context.Background())
	db.stopListener = stop
	db.listener.Go(func() { db.runListener(lctx, conn) })
	for range lanes {
		db.lanes.Go(db.lane)
	}
	return db, nil
}

// Committed returns a channel that receives a value after transactions commit, on
// this node or another: one value stands for every commit since the channel was last
// read.
func (db *DB) Committed() <-chan struct{} { return db.committed }

func (db *DB) signalCommitted() {
	select {
	case db.committed <- struct{}{}:
	default: // a signal is already waiting: its reader will see this commit too
	}
}

// Close finishes the writes already queued, stops listening and closes the pool.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.ops)
	db.mu.Unlock()
	db.lanes.Wait()
	db.stopListener()
	db.listener.Wait()
	db.pool.Close()
	return nil
}

// Write implements tasks.Store. It hands fn to a lane and waits for the commit of the
// transaction fn ran in. If ctx ends before fn has started, fn does not run; once it
// has started, Write reports the outcome whatever ctx does, so a caller never
// mistakes a committed change for a failed one. fn runs again when its batch lost a
// race to another transaction (a deadlock) or its connection before the commit.
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

// lane takes whatever ops are waiting, up to maxBatch, and commits them together,
// until Close closes ops.
func (db *DB) lane() {
	batch := make([]*op, 0, maxBatch)
	for o := range db.ops {
		batch = append(batch[:0], o)
	gather:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-db.ops:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		db.commit(batch)
	}
}

// commit runs batch as one transaction, again while it fails in a way that another
// run can mend, and tells each op its outcome. The statements run under a context
// that is never cancelled: one caller's cancellation must not undo the others' work.
func (db *DB) commit(batch []*op) {
	results := make([]error, len(batch))
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		clear(results)
		last, err := db.runBatch(batch, results)
		if err == nil {
			if last > 0 {
				db.noteLocalSeq(last)
				db.signalCommitted()
			}
			break
		}
		if _, again := errors.AsType[*retryError](err); !again || attempt == maxAttempts {
			for i := range results {
				if results[i] == nil {
					results[i] = err
				}
			}
			break
		}
		time.Sleep(backoff/2 + rand.N(backoff/2+1)) // apart from the Write it raced with
		backoff = min(2*backoff, maxBackoff)
	}
	for i, o := range batch {
		o.done <- results[i]
	}
}

// noteLocalSeq records that this store's commit gave seqs up to seq.
func (db *DB) noteLocalSeq(seq int64) {
	for {
		old := db.localSeq.Load()
		if seq <= old || db.localSeq.CompareAndSwap(old, seq) {
			return
		}
	}
}

// retryError is a failure that undid the whole batch and that running it again may
// not meet: a deadlock, a serialization failure, a connection lost before COMMIT.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// runBatch runs batch in one transaction, setting the result of each op that fails
// alone, and returns the last seq the commit gave (0 for none). An error it returns
// undid the whole transaction, so it is every other op's result.
func (db *DB) runBatch(batch []*op, results []error) (int64, error) {
	ctx := context.Background()
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	conn, err := db.pool.Acquire(actx)
	cancel()
	if err != nil {
		return 0, &retryError{fmt.Errorf("connect: %w", err)}
	}
	defer conn.Release()
	b := &batchTx{ctx: ctx, conn: conn.Conn(), pending: []string{"BEGIN ISOLATION LEVEL READ COMMITTED"}}
	var events []*tasks.Event
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		w := &writeTx{b: b}
		results[i] = runOp(o, w)
		if b.fatal != nil {
			return 0, b.abort()
		}
		switch {
		case b.opErr != nil:
			if results[i] == nil {
				results[i] = b.opErr // fn went on after a failed statement
			}
			b.opErr = nil
			if err := b.rollbackOp(); err != nil {
				return 0, err
			}
		case results[i] != nil:
			if w.savepoint {
				b.pending = append(b.pending, "ROLLBACK TO SAVEPOINT op", "RELEASE SAVEPOINT op")
			}
		default:
			if w.savepoint {
				b.pending = append(b.pending, "RELEASE SAVEPOINT op")
			}
			events = append(events, w.events...)
		}
	}
	return b.commit(events)
}

// runOp runs one op's function, turning a panic into an error so that one bad change
// cannot take the lane, and every other caller, down with it.
func runOp(o *op, tx tasks.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v", r)
		}
	}()
	return o.fn(tx)
}

// batchTx is the transaction of one batch, on one connection.
type batchTx struct {
	ctx     context.Context
	conn    *pgx.Conn
	pending []string // commands to send before the next statement: BEGIN, savepoints
	begun   bool     // BEGIN has been sent
	opErr   error    // the first failed statement of the current op
	fatal   error    // a failure that undid the whole transaction; a *retryError to run it again
}

// batch returns a batch that begins with the pending commands.
func (b *batchTx) batch() *pgx.Batch {
	q := &pgx.Batch{}
	for _, c := range b.pending {
		q.Queue(c).Fn = func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return &commandError{command: c, err: err}
			}
			return nil
		}
	}
	if len(b.pending) > 0 {
		b.begun = true
	}
	b.pending = b.pending[:0]
	return q
}

// commandError is the failure of a command that the batch sent of its own (BEGIN, a
// savepoint's), which leaves the transaction in no state to go on.
type commandError struct {
	command string
	err     error
}

func (e *commandError) Error() string { return fmt.Sprintf("%s: %v", e.command, e.err) }
func (e *commandError) Unwrap() error { return e.err }

// send sends q in one round trip and returns its error, mapped to a domain error. A
// failure that the op cannot recover from, because it undid the transaction or left
// it in doubt, is kept in fatal: the batch stops there, and runs again if that may
// help.
func (b *batchTx) send(q *pgx.Batch) error {
	if b.fatal != nil {
		return b.fatal
	}
	err := b.conn.SendBatch(b.ctx, q).Close()
	if err == nil {
		return nil
	}
	if b.opErr == nil {
		b.opErr = mapError(err)
	}
	if retryable(err) || b.conn.IsClosed() {
		b.fatal = &retryError{err}
		return b.fatal
	}
	if _, ok := errors.AsType[*commandError](err); ok {
		b.fatal = err
		return err
	}
	return mapError(err)
}

// rollbackOp undoes the op whose statement failed, at once: until then the
// transaction refuses every statement, and pgx cannot clear the prepared statements
// that the failure made it forget, so that preparing them again would fail.
func (b *batchTx) rollbackOp() error {
	if _, err := b.conn.Exec(b.ctx, "ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op"); err != nil {
		if retryable(err) || b.conn.IsClosed() {
			b.fatal = &retryError{err}
		} else {
			b.fatal = fmt.Errorf("roll back to savepoint: %w", err)
		}
		return b.abort()
	}
	return nil
}

// retryable reports whether err is a server's error that another run of the
// transaction may not meet.
func retryable(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == serializationFailure || e.Code == deadlockDetected)
}

// abort rolls back the transaction after fatal and returns fatal. A connection that
// cannot roll back is closed, which rolls back as surely, and dropped from the pool.
func (b *batchTx) abort() error {
	if b.begun && !b.conn.IsClosed() {
		if _, err := b.conn.Exec(b.ctx, "ROLLBACK"); err != nil {
			b.conn.Close(b.ctx)
		}
	}
	return b.fatal
}

// commit gives events their seqs, stores their records and commits, sending the
// wake-up. The counter is updated last, so its lock is held only from there to the
// end of the commit; the events' inserts, the NOTIFY and COMMIT then go in one round
// trip.
func (b *batchTx) commit(events []*tasks.Event) (int64, error) {
	if !b.begun && len(events) == 0 {
		return 0, nil // no op touched the database
	}
	var last int64
	if len(events) > 0 {
		q := b.batch()
		q.Queue("UPDATE event_seq SET last = last + $1 RETURNING last", len(events)).QueryRow(func(row pgx.Row) error {
			return row.Scan(&last)
		})
		if err := b.send(q); err != nil {
			return 0, b.fail("take seqs", err)
		}
	}
	q := b.batch()
	if len(events) > 0 {
		insert, err := insertEvents(events, last-int64(len(events))+1)
		if err != nil {
			return 0, b.fail("append events", err)
		}
		q.QueuedQueries = append(q.QueuedQueries, insert)
		q.Queue("SELECT pg_notify($1, $2)", channel, fmt.Sprint(last))
	}
	q.Queue("COMMIT")
	err := b.conn.SendBatch(b.ctx, q).Close()
	if err == nil {
		return last, nil
	}
	if _, ok := errors.AsType[*pgconn.PgError](err); !ok && !pgconn.SafeToRetry(err) {
		// The connection failed with COMMIT sent: whether it committed is unknown, so
		// the batch must not run again.
		b.conn.Close(b.ctx)
		return 0, fmt.Errorf("commit, outcome unknown: %w", err)
	}
	if b.conn.IsClosed() {
		b.fatal = &retryError{err}
	}
	return 0, b.fail("commit", err)
}

// fail ends the transaction after step failed and returns the error to give every op.
func (b *batchTx) fail(step string, err error) error {
	if b.fatal == nil && retryable(err) {
		b.fatal = &retryError{err}
	}
	if b.fatal != nil {
		return b.abort()
	}
	if !b.conn.IsClosed() {
		if _, rerr := b.conn.Exec(b.ctx, "ROLLBACK"); rerr != nil {
			b.conn.Close(b.ctx)
		}
	}
	return fmt.Errorf("%s: %w", step, mapError(err))
}

// insertEvents numbers events from first on and returns the statement that appends
// their records to the log.
func insertEvents(events []*tasks.Event, first int64) (*pgx.QueuedQuery, error) {
	n := len(events)
	var (
		seqs, taskIDs          = make([]int64, n), make([]int64, n)
		types, sources, actors = make([]string, n), make([]string, n), make([]string, n)
		times                  = make([]time.Time, n)
		data, matches          = make([]string, n), make([]string, n)
	)
	for i, e := range events {
		e.Seq = first + int64(i)
		r, err := e.Record()
		if err != nil {
			return nil, err
		}
		match, err := json.Marshal(r.Match)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Seq, err)
		}
		seqs[i], types[i], taskIDs[i], sources[i], actors[i] = e.Seq, string(e.Type), e.TaskID, string(e.Source), e.Actor
		times[i], data[i], matches[i] = e.Time.Time, string(r.Data), string(match)
	}
	return &pgx.QueuedQuery{
		SQL: `INSERT INTO events (seq, type, task_id, source, actor, time, data, match)
			SELECT seq, type, nullif(task_id, 0), source, actor, time, data::json, match::jsonb
			FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[])
				AS e (seq, type, task_id, source, actor, time, data, match)`,
		Arguments: []any{seqs, types, taskIDs, sources, actors, times, data, matches},
	}, nil
}

func postgresMigrations() fs.FS {
	sub, _ := fs.Sub(migrations.Postgres, "postgres") // a constant, valid path
	return sub
}
