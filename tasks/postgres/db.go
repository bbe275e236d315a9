// Package postgres is the tasks.Store on PostgreSQL (github.com/jackc/pgx/v5), which
// lets several TaskHub nodes share one database.
//
// One committed order. An event's seq comes from a one-row counter, event_seq, that a
// transaction updates as its last step before COMMIT, in the statement that appends
// its events. The row stays locked until the commit is done, so the next transaction
// to take seqs waits for it: seqs are given in commit order, with no gap, on every
// node alike, and a transaction that fails gives its seqs back.
//
// Group commit. That lock is held through the commit's flush of the write-ahead log,
// so the database commits one transaction with events per flush, on every node
// together. Each node therefore runs the Writes waiting for it in batches: one
// transaction of up to maxBatch Writes, whose events take their seqs together at the
// end. A node has two lanes, each running batches, and commits one batch at a time:
// while one lane commits, the other runs the Writes that come meanwhile, in its own
// transaction, until its turn. Within a batch, a statement whose result no Write
// needs (an insert, an update, a delete) is not sent on its own but with the next one
// that returns something; a new task's id comes from a block taken from the sequence
// in advance. So a create costs no round trip of its own, an update or a claim one
// (the read of the task), and a batch three. When a Write fails after it wrote, or a
// statement fails, the batch runs again, each Write now in a savepoint of its own and
// its statements sent at once, so that it undoes only itself.
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
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"taskhub/migrations"
	"taskhub/tasks"
	"taskhub/tasks/internal/batch"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxBatch bounds how many Writes share one transaction. When a batch runs with
// savepoints, each Write that writes takes a subtransaction id, and PostgreSQL keeps
// only 64 of a transaction's in shared memory before every other session's snapshots
// get slower.
const maxBatch = 64

// lanes is how many batches a node runs at once: one commits while the other runs
// Writes.
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

	turn      chan struct{} // capacity 1: held by the lane that commits
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
	ms, err := migrations.Read(migrations.Postgres)
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
		pool: pool, logger: cfg.Logger, ops: make(chan *op, maxBatch), turn: make(chan struct{}, 1), committed: make(chan struct{}, 1),
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
	buf := make([]*op, 0, maxBatch)
	for o := range db.ops {
		db.commit(batch.Gather(db.ops, o, buf[:0], maxBatch))
	}
}

// commit runs batch as one transaction, again while it fails in a way that another
// run can mend, and tells each op its outcome. The batch may grow while it waits for
// its turn to commit. The statements run under a context that is never cancelled:
// one caller's cancellation must not undo the others' work.
func (db *DB) commit(batch []*op) {
	var results []error
	backoff := firstBackoff
	savepoints := false
	for attempt := 1; ; {
		var last int64
		var err error
		batch, results, last, err = db.runBatch(batch, savepoints)
		if err == nil {
			if last > 0 {
				db.noteLocalSeq(last)
				db.signalCommitted()
			}
			break
		}
		if errors.Is(err, errUndo) {
			savepoints = true
			continue
		}
		if _, again := errors.AsType[*retryError](err); !again || attempt == maxAttempts {
			for i := range results {
				if results[i] == nil {
					results[i] = err
				}
			}
			break
		}
		attempt++
		time.Sleep(backoff/2 + rand.N(backoff/2+1)) // apart from the Write it raced with
		backoff = min(2*backoff, maxBackoff)
	}
	for i, o := range batch {
		o.done <- results[i]
	}
}

// errUndo says that a Write of a batch run without savepoints must be undone alone:
// the batch runs again with them.
var errUndo = errors.New("a write must be undone alone")

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
// alone, and returns the batch with the ops it took on while it waited for its turn
// to commit, their results, and the last seq the commit gave (0 for none). An error it
// returns undid the whole transaction, so it is every other op's result, unless it is
// errUndo. With savepoints, each op runs in a savepoint of its own and sends its
// statements at once; without, an op that fails after writing, or meets a failed
// statement, undoes the whole batch with errUndo.
func (db *DB) runBatch(batch []*op, savepoints bool) ([]*op, []error, int64, error) {
	results := make([]error, len(batch), maxBatch)
	ctx := context.Background()
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	conn, err := db.pool.Acquire(actx)
	cancel()
	if err != nil {
		return batch, results, 0, &retryError{fmt.Errorf("connect: %w", err)}
	}
	defer conn.Release()
	b := &batchTx{ctx: ctx, conn: conn.Conn(), pool: db.pool, savepoints: savepoints, pending: []string{"BEGIN ISOLATION LEVEL READ COMMITTED"}}
	var events []*tasks.Event
	// run runs the op at i, and returns an error that ends the batch.
	run := func(i int) error {
		o := batch[i]
		if err := o.ctx.Err(); err != nil {
			results[i] = err
			return nil
		}
		w := &writeTx{b: b}
		results[i] = runOp(o, w)
		if b.fatal != nil {
			return b.abort()
		}
		switch {
		case !savepoints && (b.opErr != nil || results[i] != nil && w.wrote):
			return b.undo()
		case b.opErr != nil:
			if results[i] == nil {
				results[i] = b.opErr // fn went on after a failed statement
			}
			b.opErr = nil
			return b.rollbackOp()
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
		return nil
	}
	for i := range batch {
		b.idsWanted = len(batch) - i
		if err := run(i); err != nil {
			return batch, results, 0, err
		}
	}
	if len(events) > 0 {
		// A node commits one batch at a time. Its other lane, rather than queue behind
		// on the counter's lock with the few Writes it has, runs the Writes that
		// come meanwhile, in its own transaction, until its turn. It sends what it
		// deferred before it takes the turn: the lane whose turn it is waits for no
		// lock but the counter's, which is never held by a transaction that waits.
		if err := b.takeXID(); err != nil {
			return batch, results, 0, err
		}
		more := db.ops
		for waiting := true; waiting; {
			if err := b.flush(); err != nil {
				return batch, results, 0, err
			}
			if len(batch) == maxBatch {
				more = nil
			}
			select {
			case db.turn <- struct{}{}:
				waiting = false
			case o, ok := <-more:
				if !ok {
					more = nil
					continue
				}
				batch, results = append(batch, o), append(results, nil)
				b.idsWanted = 1 + len(db.ops)
				if err := run(len(batch) - 1); err != nil {
					return batch, results, 0, err
				}
			}
		}
		defer func() { <-db.turn }()
	}
	last, err := b.commit(events)
	return batch, results, last, err
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
	ctx        context.Context
	conn       *pgx.Conn
	pool       *pgxpool.Pool      // for asking, on another connection, whether a commit took effect
	xid        string             // the transaction's id, once known: see takeXID
	savepoints bool               // each op in a savepoint, its statements sent at once
	pending    []string           // commands to send before the next statement: BEGIN, savepoints
	deferred   []*pgx.QueuedQuery // statements to send with the next one, without savepoints
	begun      bool               // BEGIN has been sent
	ids        []int64            // task ids taken from the sequence, not yet given
	idsWanted  int                // how many task ids to take at once: an op's and those after it
	opErr      error              // the first failed statement of the current op
	fatal      error              // a failure that undid the whole transaction; a *retryError to run it again
}

// batch returns a batch that begins with the pending commands and the deferred
// statements.
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
	q.QueuedQueries = append(q.QueuedQueries, b.deferred...)
	b.pending, b.deferred = b.pending[:0], nil
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
	b.rollback()
	return b.fatal
}

// takeXID learns the transaction's id, in a round trip of its own before COMMIT is
// sent, with the statements deferred until then: should the connection fail in the
// commit, the id tells whether the commit took effect (see inDoubt).
func (b *batchTx) takeXID() error {
	q := b.batch()
	q.Queue("SELECT pg_current_xact_id()::text").QueryRow(func(row pgx.Row) error { return row.Scan(&b.xid) })
	if err := b.send(q); err != nil {
		return b.fail("write", err)
	}
	return nil
}

// inDoubt asks, on another connection, what became of the transaction whose commit
// lost its connection: "committed", "aborted", or "unknown" when the server cannot
// say within a few seconds. An error, even one the server sent (a FATAL as an
// administrator ends the connection, or the server shuts down), can come after
// COMMIT has taken effect, so the error alone does not tell.
func (b *batchTx) inDoubt() string {
	ctx, cancel := context.WithTimeout(context.Background(), inDoubtTimeout)
	defer cancel()
	for {
		var status *string
		err := b.pool.QueryRow(ctx, "SELECT pg_xact_status($1::xid8)", b.xid).Scan(&status)
		if err == nil && status != nil && *status != "in progress" {
			return *status
		}
		select {
		case <-ctx.Done():
			return "unknown"
		case <-time.After(50 * time.Millisecond): // the ended backend's abort is not signalled
		}
	}
}

// inDoubtTimeout bounds how long inDoubt asks.
const inDoubtTimeout = 5 * time.Second

// flush sends the deferred statements.
func (b *batchTx) flush() error {
	if len(b.deferred) == 0 {
		return nil
	}
	if err := b.send(b.batch()); err != nil {
		return b.fail("write", err)
	}
	return nil
}

// undo rolls back the transaction of a batch without savepoints, to run it again
// with them.
func (b *batchTx) undo() error {
	b.rollback()
	return errUndo
}

func (b *batchTx) rollback() {
	if b.begun && !b.conn.IsClosed() {
		if _, err := b.conn.Exec(b.ctx, "ROLLBACK"); err != nil {
			b.conn.Close(b.ctx)
		}
	}
}

// commit appends events to the log, giving them their seqs, and commits, sending the
// wake-up, in one round trip after the statements still deferred. The counter is
// updated by the same statement that inserts the events, after the rest of the
// transaction: its lock is held only while the server appends the events, sends the
// NOTIFY and commits, with no round trip to this process in between.
func (b *batchTx) commit(events []*tasks.Event) (int64, error) {
	if !b.begun && len(b.deferred) == 0 && len(events) == 0 {
		return 0, nil // no op touched the database
	}
	q := b.batch()
	var last int64
	if len(events) > 0 {
		appendEvents, err := appendStatement(events)
		if err != nil {
			b.rollback()
			return 0, fmt.Errorf("append events: %w", err)
		}
		appendEvents.QueryRow(func(row pgx.Row) error { return row.Scan(&last) })
		q.QueuedQueries = append(q.QueuedQueries, appendEvents)
		q.Queue("SELECT pg_notify($1, last::text) FROM event_seq", channel)
	}
	q.Queue("COMMIT")
	err := b.conn.SendBatch(b.ctx, q).Close()
	_, refused := errors.AsType[*pgconn.PgError](err)
	if err != nil && b.xid != "" && (b.conn.IsClosed() || !refused && !pgconn.SafeToRetry(err)) {
		// The connection failed in the commit: only the server can say whether the
		// commit took effect, and running the batch again after one that did would
		// make every change in it twice.
		b.conn.Close(b.ctx)
		switch status := b.inDoubt(); {
		case status == "committed" && last > 0:
			err = nil
		case status == "aborted":
			b.fatal = &retryError{err}
			return 0, b.fail("commit", err)
		default:
			return 0, fmt.Errorf("commit, outcome unknown (transaction %s: %s): %w", b.xid, status, err)
		}
	}
	if err == nil {
		for i, e := range events {
			e.Seq = last - int64(len(events)-1-i)
		}
		return last, nil
	}
	if !refused && !pgconn.SafeToRetry(err) {
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

// fail ends the transaction after step failed and returns the error to give every
// op: without savepoints, the failure may be one op's, and errUndo runs the batch
// again to find out.
func (b *batchTx) fail(step string, err error) error {
	if b.fatal == nil && retryable(err) {
		b.fatal = &retryError{err}
	}
	switch {
	case b.fatal != nil:
		return b.abort()
	case !b.savepoints:
		return b.undo()
	}
	b.rollback()
	return fmt.Errorf("%s: %w", step, mapError(err))
}

// seqPrefix is how the JSON of an event with seq 0 begins: its seq is its first field.
const seqPrefix = `{"seq":0`

// appendStatement returns the statement that takes seqs for events from the counter
// and appends their records, and returns the last seq. The records are made here with
// seq 0, and the server writes each one's seq in place of the 0: the seqs are known
// only once the counter is locked, and the lock is not to wait for a round trip.
func appendStatement(events []*tasks.Event) (*pgx.QueuedQuery, error) {
	n := len(events)
	var (
		types, sources, actors = make([]string, n), make([]string, n), make([]string, n)
		taskIDs                = make([]int64, n)
		times                  = make([]time.Time, n)
		data, matches          = make([]string, n), make([]string, n)
	)
	for i, e := range events {
		e.Seq = 0
		r, err := e.Record()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(string(r.Data), seqPrefix+",") {
			return nil, fmt.Errorf("the JSON of a %s event does not begin with its seq: %.40s", e.Type, r.Data)
		}
		match, err := json.Marshal(r.Match)
		if err != nil {
			return nil, fmt.Errorf("%s event: %w", e.Type, err)
		}
		types[i], taskIDs[i], sources[i], actors[i] = string(e.Type), e.TaskID, string(e.Source), e.Actor
		times[i], data[i], matches[i] = e.Time.Time, string(r.Data)[len(seqPrefix):], string(match)
	}
	return &pgx.QueuedQuery{
		SQL: `WITH c AS (UPDATE event_seq SET last = last + $1 RETURNING last - $1 AS base, last),
			e AS (INSERT INTO events (seq, type, task_id, source, actor, time, data, match)
				SELECT c.base + e.n, e.type, nullif(e.task_id, 0), e.source, e.actor, e.time,
					('{"seq":' || (c.base + e.n) || e.data)::json, e.match::jsonb
				FROM c, unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[])
					WITH ORDINALITY AS e (type, task_id, source, actor, time, data, match, n))
			SELECT last FROM c`,
		Arguments: []any{n, types, taskIDs, sources, actors, times, data, matches},
	}, nil
}
