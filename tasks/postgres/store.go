package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// taskColumns selects a whole task from t, labels and dependencies as sorted arrays.
const taskColumns = `t.id, t.title, t.description, t.status, t.priority, t.assignee, t.project,
	t.parent_id, t.due_at, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by,
	ARRAY(SELECT label FROM task_labels WHERE task_id = t.id ORDER BY label),
	ARRAY(SELECT depends_on FROM task_deps WHERE task_id = t.id ORDER BY depends_on),
	t.lease_expires_at, t.lease_length_us, t.progress, t.progress_message`

const selectTask = "SELECT " + taskColumns + " FROM tasks t"

func scanTask(row pgx.Row) (*tasks.Task, error) {
	var (
		t                tasks.Task
		due              *time.Time
		created, updated time.Time
		lease            *time.Time
		leaseLength      int64
	)
	err := row.Scan(&t.ID, &t.Title, &t.Description, &t.Status, &t.Priority, &t.Assignee, &t.Project,
		&t.ParentID, &due, &t.Version, &created, &updated, &t.CreatedBy, &t.UpdatedBy, &t.Labels, &t.DependsOn,
		&lease, &leaseLength, &t.Progress, &t.ProgressMessage)
	if err != nil {
		return nil, err
	}
	if lease != nil {
		l := tasks.NewTime(*lease)
		t.LeaseExpiresAt = &l
	}
	t.LeaseLength = time.Duration(leaseLength) * time.Microsecond
	if due != nil {
		d := tasks.NewTime(*due)
		t.DueAt = &d
	}
	t.CreatedAt, t.UpdatedAt = tasks.NewTime(created), tasks.NewTime(updated)
	if t.Labels == nil { // a task's lists are never null in its JSON
		t.Labels = []string{}
	}
	if t.DependsOn == nil {
		t.DependsOn = []int64{}
	}
	return &t, nil
}

// taskRow reads the one task that a query selects, or nil when it selects none.
func taskRow(row pgx.Row) (*tasks.Task, error) {
	t, err := scanTask(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return t, err
}

func notFound(id int64) error { return tasks.Errorf(tasks.ENotFound, "", "task %d not found", id) }

// params numbers the parameters of a query as it is built.
type params []any

// add appends v and returns its placeholder.
func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

func strs[S ~string](values []S) []string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return s
}

func timeArg(t *tasks.Time) *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}

// Task implements tasks.Store.
func (db *DB) Task(ctx context.Context, id int64) (*tasks.Task, error) {
	t, err := taskRow(db.pool.QueryRow(ctx, selectTask+" WHERE t.id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("get task %d: %w", id, mapError(err))
	}
	if t == nil {
		return nil, notFound(id)
	}
	return t, nil
}

// Tasks implements tasks.Store.
func (db *DB) Tasks(ctx context.Context, q tasks.TaskQuery) ([]*tasks.Task, error) {
	var p params
	where := []string{"t.id > " + p.add(q.After)}
	if len(q.Statuses) > 0 {
		where = append(where, "t.status = ANY("+p.add(strs(q.Statuses))+")")
	}
	if q.Assignee != "" {
		where = append(where, "t.assignee = "+p.add(q.Assignee))
	}
	where = inProjectWithLabel(where, &p, q.Project, q.Label)
	if q.ParentID != nil {
		where = append(where, "t.parent_id = "+p.add(*q.ParentID))
	}
	if q.Text != "" {
		pattern := p.add("%" + likeEscaper.Replace(q.Text) + "%")
		where = append(where, "(t.title ILIKE "+pattern+` ESCAPE '\' OR t.description ILIKE `+pattern+` ESCAPE '\')`)
	}
	rows, err := db.pool.Query(ctx, selectTask+" WHERE "+strings.Join(where, " AND ")+" ORDER BY t.id LIMIT "+p.add(q.Limit), p...)
	if err != nil {
		return nil, fmt.Errorf("query tasks: %w", mapError(err))
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tasks.Task, error) { return scanTask(row) })
	if err != nil {
		return nil, fmt.Errorf("query tasks: %w", mapError(err))
	}
	if list == nil {
		list = []*tasks.Task{}
	}
	return list, nil
}

// inProjectWithLabel adds the conditions of the project and label filters, where
// given, on tasks t.
func inProjectWithLabel(where []string, p *params, project, label string) []string {
	if project != "" {
		where = append(where, "t.project = "+p.add(project))
	}
	if label != "" {
		where = append(where, "EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = t.id AND l.label = "+p.add(label)+")")
	}
	return where
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Events implements tasks.Store.
func (db *DB) Events(ctx context.Context, q tasks.EventQuery) ([]tasks.Record, error) {
	var p params
	query := "SELECT seq, type, coalesce(task_id, 0), source, data, match FROM events WHERE seq > " + p.add(q.After)
	if len(q.TaskIDs) > 0 {
		query += " AND task_id = ANY(" + p.add(q.TaskIDs) + ")"
	}
	if len(q.Types) > 0 {
		query += " AND type = ANY(" + p.add(strs(q.Types)) + ")"
	}
	if len(q.Sources) > 0 {
		query += " AND source = ANY(" + p.add(strs(q.Sources)) + ")"
	}
	// The match lists, as the stream's filters read them: any of the event's values.
	for _, m := range []struct {
		key  string
		list []string
	}{{"assignee", q.Assignees}, {"project", q.Projects}, {"status", strs(q.Statuses)}, {"label", q.Labels}} {
		if len(m.list) > 0 {
			query += " AND jsonb_exists_any(match -> '" + m.key + "', " + p.add(m.list) + ")"
		}
	}
	query += " ORDER BY seq LIMIT " + p.add(q.Limit)
	rows, err := db.pool.Query(ctx, query, p...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", mapError(err))
	}
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tasks.Record, error) {
		var r tasks.Record
		err := row.Scan(&r.Seq, &r.Type, &r.TaskID, &r.Source, &r.Data, &r.Match)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("query events: %w", mapError(err))
	}
	if records == nil {
		records = []tasks.Record{}
	}
	return records, nil
}

// LastSeq implements tasks.Store. The counter remembers the highest seq ever given,
// also after pruning.
func (db *DB) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.pool.QueryRow(ctx, "SELECT last FROM event_seq").Scan(&seq); err != nil {
		return 0, fmt.Errorf("last seq: %w", mapError(err))
	}
	return seq, nil
}

// FirstSeq implements tasks.Store.
func (db *DB) FirstSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.pool.QueryRow(ctx, "SELECT coalesce((SELECT min(seq) FROM events), (SELECT last + 1 FROM event_seq))").Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("first seq: %w", mapError(err))
	}
	return seq, nil
}

// pruneChunk bounds the events one statement deletes, so pruning a long history never
// holds up readers and the vacuum for long.
const pruneChunk = 5000

// pruneLock is the key of the advisory lock a node holds while it prunes.
const pruneLock int64 = 0x7461736b68756202 // "taskhub" and 2

// PruneEvents deletes the events older than before, and returns how many it deleted.
// Seqs are never given again: a client that asks for a pruned one learns that the
// history was truncated. Events that an enabled webhook endpoint has yet to handle
// are kept (tasks.WebhookStore). Events are written in time order, so the oldest to
// keep is found by walking seqs up from the oldest, not by scanning every event's
// time. One node prunes at a time: while another holds the lock, PruneEvents deletes nothing
// and returns 0, the other node doing the work.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) (n int64, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", pruneLock).Scan(&locked); err != nil {
		return 0, fmt.Errorf("prune events: %w", mapError(err))
	}
	if !locked {
		return 0, nil
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", pruneLock); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // which releases the lock as surely
			err = errors.Join(err, fmt.Errorf("prune events: release the lock: %w", uerr))
		}
	}()
	var keep int64
	err = conn.QueryRow(ctx, `SELECT coalesce(
		(SELECT seq FROM events WHERE time >= $1 ORDER BY seq LIMIT 1),
		(SELECT max(seq) + 1 FROM events), 0)`, before).Scan(&keep)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", mapError(err))
	}
	for {
		deleted, err := pruneChunkTx(ctx, conn.Conn(), keep)
		if err != nil {
			return n, fmt.Errorf("prune events: %w", mapError(err))
		}
		n += deleted
		if deleted < pruneChunk {
			return n, nil
		}
	}
}

// writeTx is the tasks.Tx of one Write, one of the batch that shares a transaction.
type writeTx struct {
	b         *batchTx
	savepoint bool           // whether the op's savepoint has been sent for
	wrote     bool           // whether the op has written anything
	events    []*tasks.Event // appended at the commit, if the op succeeds
}

// batch returns a batch to queue the op's next statements on, behind what must go
// first: the deferred statements and, with savepoints, the op's savepoint before its
// first statement.
func (w *writeTx) batch() *pgx.Batch {
	if w.b.savepoints && !w.savepoint {
		w.b.pending = append(w.b.pending, "SAVEPOINT op")
		w.savepoint = true
	}
	return w.b.batch()
}

// write runs statements whose results the op does not need: with savepoints at
// once, without them deferred, to go with the next statement that has a result.
func (w *writeTx) write(stmts ...*pgx.QueuedQuery) error {
	w.wrote = true
	if !w.b.savepoints {
		w.b.deferred = append(w.b.deferred, stmts...)
		return nil
	}
	q := w.batch()
	q.QueuedQueries = append(q.QueuedQueries, stmts...)
	return w.b.send(q)
}

func stmt(sql string, args ...any) *pgx.QueuedQuery {
	return &pgx.QueuedQuery{SQL: sql, Arguments: args}
}

// newID returns an id for a new task. The ids come from the tasks' sequence a block
// at a time, one for each op left in the batch, so that a batch of creates asks for
// them once.
func (w *writeTx) newID() (int64, error) {
	if len(w.b.ids) == 0 {
		q := w.batch()
		q.Queue("SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, $1)", max(1, w.b.idsWanted)).
			Query(func(rows pgx.Rows) (err error) {
				w.b.ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
				return err
			})
		if err := w.b.send(q); err != nil {
			return 0, err
		}
	}
	id := w.b.ids[0]
	w.b.ids = w.b.ids[1:]
	return id, nil
}

func (w *writeTx) ids(query string, args ...any) ([]int64, error) {
	q := w.batch()
	var ids []int64
	q.Queue(query, args...).Query(func(rows pgx.Rows) (err error) {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return ids, w.b.send(q)
}

// Task implements tasks.Tx. It locks the task's row until the commit, so that what a
// check finds in it (its version, its status before a claim, its parent) stays true:
// a concurrent Write that reads the same task waits. The lock is taken first and the
// task read by a second statement, whose snapshot is taken once the lock is held: at
// READ COMMITTED, a statement that had to wait for the lock would otherwise see the
// locked row as it is now but its labels and dependencies as they were.
func (w *writeTx) Task(id int64) (*tasks.Task, error) {
	q := w.batch()
	q.Queue("SELECT 1 FROM tasks WHERE id = $1 FOR NO KEY UPDATE", id)
	var t *tasks.Task
	q.Queue(selectTask+" WHERE t.id = $1", id).QueryRow(func(row pgx.Row) (err error) {
		t, err = taskRow(row)
		return err
	})
	if err := w.b.send(q); err != nil {
		return nil, fmt.Errorf("get task %d: %w", id, err)
	}
	if t == nil {
		return nil, notFound(id)
	}
	return t, nil
}

// Missing implements tasks.Tx. It takes no lock: a task deleted before the commit is
// caught by the foreign keys.
func (w *writeTx) Missing(ids []int64) ([]int64, error) {
	missing, err := w.ids(`SELECT id FROM unnest($1::bigint[]) AS m (id)
		WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.id = m.id) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("look for missing tasks: %w", err)
	}
	return missing, nil
}

// graphLock is the key of the advisory lock that a Write holds, from its first
// Dependencies to its commit, while it checks new dependencies for a cycle.
const graphLock int64 = 0x7461736b68756203 // "taskhub" and 3

// Dependencies implements tasks.Tx. Only a check for a cycle walks the graph, and
// only for a Write that adds dependencies to a task that exists; such Writes take
// turns through graphLock, and each reads the graph once it holds the lock. So of two
// edits that would close a cycle between them, the second sees the first's edge.
// (A new task's dependencies close no cycle: nothing depends on it yet.)
func (w *writeTx) Dependencies(ids []int64) (map[int64][]int64, error) {
	q := w.batch()
	q.Queue("SELECT pg_advisory_xact_lock($1)", graphLock)
	deps := map[int64][]int64{}
	q.Queue("SELECT task_id, depends_on FROM task_deps WHERE task_id = ANY($1)", ids).Query(func(rows pgx.Rows) error {
		var from, to int64
		_, err := pgx.ForEachRow(rows, []any{&from, &to}, func() error {
			deps[from] = append(deps[from], to)
			return nil
		})
		return err
	})
	if err := w.b.send(q); err != nil {
		return nil, fmt.Errorf("read dependencies: %w", err)
	}
	return deps, nil
}

// Dependents implements tasks.Tx. A dependent or child added before the commit of a
// delete is caught by the foreign keys.
func (w *writeTx) Dependents(id int64) (dependents, children []int64, err error) {
	q := w.batch()
	q.Queue("SELECT task_id FROM task_deps WHERE depends_on = $1 ORDER BY task_id", id).Query(func(rows pgx.Rows) (err error) {
		dependents, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	q.Queue("SELECT id FROM tasks WHERE parent_id = $1 ORDER BY id", id).Query(func(rows pgx.Rows) (err error) {
		children, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err := w.b.send(q); err != nil {
		return nil, nil, fmt.Errorf("read dependents of task %d: %w", id, err)
	}
	return dependents, children, nil
}

// CreateTask implements tasks.Tx: the task, its labels and dependencies in one
// statement.
func (w *writeTx) CreateTask(t *tasks.Task) error {
	id, err := w.newID()
	if err != nil {
		return fmt.Errorf("insert task: %w", err)
	}
	err = w.write(stmt(`WITH t AS (
			INSERT INTO tasks (id, title, description, status, priority, assignee, project,
				parent_id, due_at, version, created_at, updated_at, created_by, updated_by,
				lease_expires_at, lease_length_us, progress, progress_message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $17, $18, $19, $20)),
		l AS (INSERT INTO task_labels (task_id, label) SELECT $1, unnest($15::text[]))
		INSERT INTO task_deps (task_id, depends_on) SELECT $1, unnest($16::bigint[])`,
		id, t.Title, t.Description, string(t.Status), string(t.Priority), t.Assignee, t.Project,
		t.ParentID, timeArg(t.DueAt), t.Version, t.CreatedAt.Time, t.UpdatedAt.Time, t.CreatedBy, t.UpdatedBy,
		t.Labels, t.DependsOn,
		timeArg(t.LeaseExpiresAt), t.LeaseLength.Microseconds(), t.Progress, t.ProgressMessage))
	if err != nil {
		return fmt.Errorf("insert task: %w", err)
	}
	t.ID = id
	return nil
}

// UpdateTask implements tasks.Tx. Every column is set, changed or not: PostgreSQL
// leaves the indexes alone when their columns keep their values, and one statement
// serves every update. The lists are written again only where they changed.
func (w *writeTx) UpdateTask(old, t *tasks.Task) error {
	stmts := []*pgx.QueuedQuery{stmt(`UPDATE tasks SET title = $2, description = $3, status = $4, priority = $5,
		assignee = $6, project = $7, parent_id = $8, due_at = $9, version = $10, updated_at = $11, updated_by = $12,
		lease_expires_at = $13, lease_length_us = $14, progress = $15, progress_message = $16
		WHERE id = $1`,
		t.ID, t.Title, t.Description, string(t.Status), string(t.Priority), t.Assignee,
		t.Project, t.ParentID, timeArg(t.DueAt), t.Version, t.UpdatedAt.Time, t.UpdatedBy,
		timeArg(t.LeaseExpiresAt), t.LeaseLength.Microseconds(), t.Progress, t.ProgressMessage)}
	if !slices.Equal(old.Labels, t.Labels) {
		stmts = append(stmts, stmt("DELETE FROM task_labels WHERE task_id = $1", t.ID),
			stmt("INSERT INTO task_labels (task_id, label) SELECT $1, unnest($2::text[])", t.ID, t.Labels))
	}
	if !slices.Equal(old.DependsOn, t.DependsOn) {
		stmts = append(stmts, stmt("DELETE FROM task_deps WHERE task_id = $1", t.ID),
			stmt("INSERT INTO task_deps (task_id, depends_on) SELECT $1, unnest($2::bigint[])", t.ID, t.DependsOn))
	}
	if err := w.write(stmts...); err != nil {
		return fmt.Errorf("update task %d: %w", t.ID, err)
	}
	return nil
}

// DeleteTask implements tasks.Tx.
func (w *writeTx) DeleteTask(id int64) error {
	if err := w.write(stmt("DELETE FROM tasks WHERE id = $1", id)); err != nil {
		return fmt.Errorf("delete task %d: %w", id, err)
	}
	return nil
}

// AppendEvent implements tasks.Tx. The event waits for the end of the transaction,
// where the events of every Write in it take their seqs and are stored (see
// batchTx.commit); e.Seq is set before Write returns.
func (w *writeTx) AppendEvent(e *tasks.Event) error {
	w.events = append(w.events, e)
	return nil
}

// NextReady implements tasks.Tx. The task it picks is locked until the commit, so no
// other Write can claim it meanwhile; tasks that other Writes have locked are skipped,
// not waited for. The task is read by a second statement, for the reason Task gives.
func (w *writeTx) NextReady(q tasks.ReadyQuery) (*tasks.Task, error) {
	p := params{q.Caller, strs(tasks.Priorities)}
	where := []string{"t.status = 'todo'", "t.assignee IN ('', $1)",
		`NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on
			WHERE d.task_id = t.id AND u.status <> 'done')`}
	where = inProjectWithLabel(where, &p, q.Project, q.Label)
	ids, err := w.ids("SELECT t.id FROM tasks t WHERE "+strings.Join(where, " AND ")+
		" ORDER BY array_position($2, t.priority) DESC, t.created_at, t.id LIMIT 1 FOR NO KEY UPDATE OF t SKIP LOCKED", p...)
	if err != nil {
		return nil, fmt.Errorf("next ready task: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	b := w.batch()
	var t *tasks.Task
	b.Queue(selectTask+" WHERE t.id = $1", ids[0]).QueryRow(func(row pgx.Row) (err error) {
		t, err = scanTask(row)
		return err
	})
	if err := w.b.send(b); err != nil {
		return nil, fmt.Errorf("next ready task: %w", err)
	}
	return t, nil
}

// The SQLSTATEs that the store handles.
const (
	foreignKeyViolation  = "23503"
	uniqueViolation      = "23505"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// mapError turns constraint violations, by SQLSTATE, into domain errors. The Service
// checks every rule first, so they mean a change raced past a check.
func mapError(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case foreignKeyViolation:
		return &tasks.Error{Code: tasks.EConflict, Message: "the change refers to a task that does not exist, or removes one that others refer to"}
	case uniqueViolation:
		return &tasks.Error{Code: tasks.EConflict, Message: "the change conflicts with existing data"}
	}
	return err
}
