package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"taskhub/tasks"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// conn runs prepared statements on the read pool or on the writer's connection.
type conn struct {
	ctx   context.Context
	stmts *stmtCache
}

func (c conn) stmt(query string) (*sql.Stmt, error) { return c.stmts.get(c.ctx, query) }

func (c conn) exec(query string, args ...any) (sql.Result, error) {
	s, err := c.stmt(query)
	if err != nil {
		return nil, mapError(err)
	}
	res, err := s.ExecContext(c.ctx, args...)
	return res, mapError(err)
}

func (c conn) query(query string, args ...any) (*sql.Rows, error) {
	s, err := c.stmt(query)
	if err != nil {
		return nil, mapError(err)
	}
	rows, err := s.QueryContext(c.ctx, args...)
	return rows, mapError(err)
}

// queryRow is QueryRow: an error in preparing comes out of Scan.
func (c conn) queryRow(query string, args ...any) scanner {
	s, err := c.stmt(query)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRowContext(c.ctx, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (db *DB) reader(ctx context.Context) conn { return conn{ctx: ctx, stmts: db.readStmts} }

// taskColumns selects a whole task, labels and dependencies as JSON arrays, from t.
const taskColumns = `t.id, t.title, t.description, t.status, t.priority, t.assignee, t.project,
	t.parent_id, t.due_at, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by,
	(SELECT json_group_array(label) FROM task_labels WHERE task_id = t.id),
	(SELECT json_group_array(depends_on) FROM task_deps WHERE task_id = t.id),
	t.lease_expires_at, t.lease_length_us, t.progress, t.progress_message`

type scanner interface{ Scan(dest ...any) error }

func scanTask(row scanner) (*tasks.Task, error) {
	var (
		t                    tasks.Task
		parent               sql.NullInt64
		due                  sql.NullString
		created, updated     string
		labelsJSON, depsJSON string
		lease                sql.NullString
		leaseLength          int64
	)
	err := row.Scan(&t.ID, &t.Title, &t.Description, &t.Status, &t.Priority, &t.Assignee, &t.Project,
		&parent, &due, &t.Version, &created, &updated, &t.CreatedBy, &t.UpdatedBy, &labelsJSON, &depsJSON,
		&lease, &leaseLength, &t.Progress, &t.ProgressMessage)
	if err != nil {
		return nil, err
	}
	if lease.Valid {
		l, err := parseTime(lease.String)
		if err != nil {
			return nil, err
		}
		t.LeaseExpiresAt = &l
	}
	t.LeaseLength = time.Duration(leaseLength) * time.Microsecond
	if parent.Valid {
		t.ParentID = &parent.Int64
	}
	if due.Valid {
		d, err := parseTime(due.String)
		if err != nil {
			return nil, err
		}
		t.DueAt = &d
	}
	if t.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if t.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labelsJSON), &t.Labels); err != nil {
		return nil, fmt.Errorf("task %d labels: %w", t.ID, err)
	}
	if err := json.Unmarshal([]byte(depsJSON), &t.DependsOn); err != nil {
		return nil, fmt.Errorf("task %d depends_on: %w", t.ID, err)
	}
	// The primary keys keep both sorted in storage, but SQLite does not promise that
	// an aggregate sees rows in that order.
	slices.Sort(t.Labels)
	slices.Sort(t.DependsOn)
	return &t, nil
}

func parseTime(s string) (tasks.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return tasks.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return tasks.NewTime(t), nil
}

// nullable returns *p, or nil for SQL NULL.
func nullable[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func formatTime(t *tasks.Time) any {
	if t == nil {
		return nil
	}
	return t.String()
}

func getTask(c conn, id int64) (*tasks.Task, error) {
	t, err := scanTask(c.queryRow("SELECT "+taskColumns+" FROM tasks t WHERE t.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tasks.Errorf(tasks.ENotFound, "", "task %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %d: %w", id, mapError(err))
	}
	return t, nil
}

// Task implements tasks.Store.
func (db *DB) Task(ctx context.Context, id int64) (*tasks.Task, error) {
	return getTask(db.reader(ctx), id)
}

// Tasks implements tasks.Store.
func (db *DB) Tasks(ctx context.Context, q tasks.TaskQuery) ([]*tasks.Task, error) {
	var (
		where = []string{"t.id > ?"}
		args  = []any{q.After}
	)
	if len(q.Statuses) > 0 {
		where = append(where, "t.status IN (SELECT value FROM json_each(?))")
		args = append(args, jsonArg(q.Statuses))
	}
	if q.Assignee != "" {
		where = append(where, "t.assignee = ?")
		args = append(args, q.Assignee)
	}
	where, args = inProjectWithLabel(where, args, q.Project, q.Label)
	if q.ParentID != nil {
		where = append(where, "t.parent_id = ?")
		args = append(args, *q.ParentID)
	}
	if q.Text != "" {
		where = append(where, `(t.title LIKE ? ESCAPE '\' OR t.description LIKE ? ESCAPE '\')`)
		pattern := "%" + likeEscaper.Replace(q.Text) + "%"
		args = append(args, pattern, pattern)
	}
	args = append(args, q.Limit)
	rows, err := db.reader(ctx).query(
		"SELECT "+taskColumns+" FROM tasks t WHERE "+strings.Join(where, " AND ")+" ORDER BY t.id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("query tasks: %w", mapError(err))
	}
	defer rows.Close()
	list := []*tasks.Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("query tasks: %w", mapError(err))
		}
		list = append(list, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query tasks: %w", mapError(err))
	}
	return list, nil
}

// inProjectWithLabel adds the conditions of the project and label filters, where
// given, on tasks t.
func inProjectWithLabel(where []string, args []any, project, label string) ([]string, []any) {
	if project != "" {
		where = append(where, "t.project = ?")
		args = append(args, project)
	}
	if label != "" {
		where = append(where, "EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = t.id AND l.label = ?)")
		args = append(args, label)
	}
	return where, args
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// jsonArg passes a list as one JSON array parameter, for json_each.
func jsonArg(v any) string {
	b, _ := json.Marshal(v) // lists of strings and ints always marshal
	return string(b)
}

// Events implements tasks.Store.
func (db *DB) Events(ctx context.Context, q tasks.EventQuery) ([]tasks.Record, error) {
	query := "SELECT seq, type, task_id, source, data, match FROM events WHERE seq > ?"
	args := []any{q.After}
	and := func(cond string, list any) {
		query += " AND " + cond
		args = append(args, jsonArg(list))
	}
	if len(q.TaskIDs) > 0 {
		and("task_id IN (SELECT value FROM json_each(?))", q.TaskIDs)
	}
	if len(q.Types) > 0 {
		and("type IN (SELECT value FROM json_each(?))", q.Types)
	}
	if len(q.Sources) > 0 {
		and("source IN (SELECT value FROM json_each(?))", q.Sources)
	}
	// The match lists, as the stream's filters read them: any of the event's values.
	for _, m := range []struct {
		key  string
		list any
		n    int
	}{{"assignee", q.Assignees, len(q.Assignees)}, {"project", q.Projects, len(q.Projects)},
		{"status", q.Statuses, len(q.Statuses)}, {"label", q.Labels, len(q.Labels)}} {
		if m.n > 0 {
			and("EXISTS (SELECT 1 FROM json_each(match, '$."+m.key+"') WHERE value IN (SELECT value FROM json_each(?)))", m.list)
		}
	}
	query += " ORDER BY seq LIMIT ?"
	args = append(args, q.Limit)
	rows, err := db.reader(ctx).query(query, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	records := []tasks.Record{}
	for rows.Next() {
		var (
			r      tasks.Record
			taskID sql.NullInt64
			data   []byte
			match  []byte
		)
		if err := rows.Scan(&r.Seq, &r.Type, &taskID, &r.Source, &data, &match); err != nil {
			return nil, fmt.Errorf("query events: %w", mapError(err))
		}
		if err := json.Unmarshal(match, &r.Match); err != nil {
			return nil, fmt.Errorf("event %d match: %w", r.Seq, err)
		}
		r.TaskID, r.Data = taskID.Int64, data
		records = append(records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", mapError(err))
	}
	return records, nil
}

// LastSeq implements tasks.Store.
func (db *DB) LastSeq(ctx context.Context) (int64, error) {
	// sqlite_sequence remembers the highest seq ever given, also after pruning.
	var seq int64
	err := db.reader(ctx).queryRow("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'").Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("last seq: %w", mapError(err))
	}
	return seq, nil
}

// FirstSeq implements tasks.Store.
func (db *DB) FirstSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.reader(ctx).queryRow(`SELECT coalesce((SELECT min(seq) FROM events),
		(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events') + 1)`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("first seq: %w", mapError(err))
	}
	return seq, nil
}

// pruneChunk bounds the events one transaction deletes, so pruning a long history
// never holds up other writes for long.
const pruneChunk = 5000

// PruneEvents deletes the events older than before, and returns how many it deleted,
// keeping those an enabled webhook endpoint has yet to handle (tasks.WebhookStore).
// Seqs are never given again: a client that asks for a pruned one learns that the
// history was truncated. Events are written in time order, so the oldest to keep is
// found by walking seqs up from the oldest, not by scanning every event's time.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var keep int64
	err := db.reader(ctx).queryRow(`SELECT coalesce(
		(SELECT seq FROM events WHERE time >= ? ORDER BY seq LIMIT 1),
		(SELECT coalesce(max(seq), 0) + 1 FROM events))`, tasks.NewTime(before).String()).Scan(&keep)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", mapError(err))
	}
	var total int64
	for {
		var n int64
		err := db.Write(ctx, func(tx tasks.Tx) error {
			res, err := tx.(*writeTx).exec(`DELETE FROM events WHERE seq IN
				(SELECT seq FROM events WHERE seq < ? AND `+pruneBound+` ORDER BY seq LIMIT ?)`, keep, pruneChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		if n < pruneChunk {
			return total, nil
		}
	}
}

// writeTx is the tasks.Tx of the ops of a batch.
type writeTx struct {
	conn
	// lastSeq is the seq of the last event appended in this transaction, once one
	// was: the first append reads it from the database, the others count on.
	lastSeq int64
}

func (w *writeTx) ids(query string, args ...any) ([]int64, error) {
	rows, err := w.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, mapError(err)
		}
		ids = append(ids, id)
	}
	return ids, mapError(rows.Err())
}

func (w *writeTx) Task(id int64) (*tasks.Task, error) { return getTask(w.conn, id) }

func (w *writeTx) Missing(ids []int64) ([]int64, error) {
	return w.ids("SELECT value FROM json_each(?) WHERE value NOT IN (SELECT id FROM tasks) ORDER BY value", jsonArg(ids))
}

func (w *writeTx) Dependencies(ids []int64) (map[int64][]int64, error) {
	rows, err := w.query("SELECT task_id, depends_on FROM task_deps WHERE task_id IN (SELECT value FROM json_each(?))", jsonArg(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	deps := map[int64][]int64{}
	for rows.Next() {
		var from, to int64
		if err := rows.Scan(&from, &to); err != nil {
			return nil, mapError(err)
		}
		deps[from] = append(deps[from], to)
	}
	return deps, mapError(rows.Err())
}

func (w *writeTx) Dependents(id int64) (dependents, children []int64, err error) {
	if dependents, err = w.ids("SELECT task_id FROM task_deps WHERE depends_on = ? ORDER BY task_id", id); err != nil {
		return nil, nil, err
	}
	if children, err = w.ids("SELECT id FROM tasks WHERE parent_id = ? ORDER BY id", id); err != nil {
		return nil, nil, err
	}
	return dependents, children, nil
}

func (w *writeTx) CreateTask(t *tasks.Task) error {
	res, err := w.exec(`INSERT INTO tasks (title, description, status, priority, assignee, project,
		parent_id, due_at, version, created_at, updated_at, created_by, updated_by,
		lease_expires_at, lease_length_us, progress, progress_message)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Title, t.Description, t.Status, t.Priority, t.Assignee, t.Project,
		t.ParentID, formatTime(t.DueAt), t.Version, t.CreatedAt.String(), t.UpdatedAt.String(), t.CreatedBy, t.UpdatedBy,
		formatTime(t.LeaseExpiresAt), t.LeaseLength.Microseconds(), t.Progress, t.ProgressMessage)
	if err != nil {
		return fmt.Errorf("insert task: %w", err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("insert task: %w", err)
	}
	return w.setLists(t.ID, t.Labels, t.DependsOn)
}

func (w *writeTx) UpdateTask(old, t *tasks.Task) error {
	// SET only the columns that changed: SQLite then leaves alone every index on the
	// others, which is most of the work of an update.
	set := []string{"version = ?", "updated_at = ?", "updated_by = ?"}
	args := []any{t.Version, t.UpdatedAt.String(), t.UpdatedBy}
	for _, c := range []struct {
		column   string
		old, new any
	}{
		{"title", old.Title, t.Title},
		{"description", old.Description, t.Description},
		{"status", old.Status, t.Status},
		{"priority", old.Priority, t.Priority},
		{"assignee", old.Assignee, t.Assignee},
		{"project", old.Project, t.Project},
		{"parent_id", nullable(old.ParentID), nullable(t.ParentID)},
		{"due_at", formatTime(old.DueAt), formatTime(t.DueAt)},
		{"lease_expires_at", formatTime(old.LeaseExpiresAt), formatTime(t.LeaseExpiresAt)},
		{"lease_length_us", old.LeaseLength.Microseconds(), t.LeaseLength.Microseconds()},
		{"progress", old.Progress, t.Progress},
		{"progress_message", old.ProgressMessage, t.ProgressMessage},
	} {
		if c.old != c.new {
			set = append(set, c.column+" = ?")
			args = append(args, c.new)
		}
	}
	_, err := w.exec("UPDATE tasks SET "+strings.Join(set, ", ")+" WHERE id = ?", append(args, t.ID)...)
	if err != nil {
		return fmt.Errorf("update task %d: %w", t.ID, err)
	}
	var labels []string
	var deps []int64
	if !slices.Equal(old.Labels, t.Labels) {
		if _, err := w.exec("DELETE FROM task_labels WHERE task_id = ?", t.ID); err != nil {
			return fmt.Errorf("update task %d labels: %w", t.ID, err)
		}
		labels = t.Labels
	}
	if !slices.Equal(old.DependsOn, t.DependsOn) {
		if _, err := w.exec("DELETE FROM task_deps WHERE task_id = ?", t.ID); err != nil {
			return fmt.Errorf("update task %d depends_on: %w", t.ID, err)
		}
		deps = t.DependsOn
	}
	return w.setLists(t.ID, labels, deps)
}

// setLists inserts labels and dependencies of task id, one statement for each list.
func (w *writeTx) setLists(id int64, labels []string, deps []int64) error {
	if len(labels) > 0 {
		if _, err := w.exec("INSERT INTO task_labels (task_id, label) SELECT ?, value FROM json_each(?)", id, jsonArg(labels)); err != nil {
			return fmt.Errorf("task %d labels: %w", id, err)
		}
	}
	if len(deps) > 0 {
		if _, err := w.exec("INSERT INTO task_deps (task_id, depends_on) SELECT ?, value FROM json_each(?)", id, jsonArg(deps)); err != nil {
			return fmt.Errorf("task %d depends_on: %w", id, err)
		}
	}
	return nil
}

func (w *writeTx) DeleteTask(id int64) error {
	if _, err := w.exec("DELETE FROM tasks WHERE id = ?", id); err != nil {
		return fmt.Errorf("delete task %d: %w", id, err)
	}
	return nil
}

// AppendEvent implements tasks.Tx. The next seq is read inside the transaction,
// which holds the database's write lock from BEGIN IMMEDIATE on: no other writer, in
// this process or another, can take the same seq or commit a higher one first.
func (w *writeTx) AppendEvent(e *tasks.Event) error {
	if w.lastSeq == 0 {
		if err := w.queryRow("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'").Scan(&w.lastSeq); err != nil {
			return fmt.Errorf("append event: %w", mapError(err))
		}
	}
	e.Seq = w.lastSeq + 1
	r, err := e.Record()
	if err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	match, err := json.Marshal(r.Match)
	if err != nil {
		return fmt.Errorf("append event %d: %w", e.Seq, err)
	}
	var taskID any
	if e.TaskID != 0 {
		taskID = e.TaskID
	}
	_, err = w.exec("INSERT INTO events (seq, type, task_id, source, actor, time, data, match) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		e.Seq, e.Type, taskID, e.Source, e.Actor, e.Time.String(), string(r.Data), string(match))
	if err != nil {
		return fmt.Errorf("append event %d: %w", e.Seq, err)
	}
	w.lastSeq = e.Seq
	return nil
}

// NextReady implements tasks.Tx. It runs inside the writer's transaction, so the task
// it picks cannot be taken by another write before the caller's update of it.
func (w *writeTx) NextReady(q tasks.ReadyQuery) (*tasks.Task, error) {
	where := []string{"t.status = 'todo'", "t.assignee IN ('', ?)",
		`NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on
			WHERE d.task_id = t.id AND u.status <> 'done')`}
	where, args := inProjectWithLabel(where, []any{q.Caller}, q.Project, q.Label)
	t, err := scanTask(w.queryRow("SELECT "+taskColumns+" FROM tasks t WHERE "+strings.Join(where, " AND ")+
		" ORDER BY "+priorityOrder+" DESC, t.created_at, t.id LIMIT 1", args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("next ready task: %w", mapError(err))
	}
	return t, nil
}

// priorityOrder ranks t.priority by its place in tasks.Priorities, lowest first.
var priorityOrder = func() string {
	var b strings.Builder
	b.WriteString("CASE t.priority")
	for i, p := range tasks.Priorities {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", p, i)
	}
	b.WriteString(" END")
	return b.String()
}()

// isBusy reports whether err is SQLite's SQLITE_BUSY, of any extended kind.
func isBusy(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// mapError turns SQLite errors that callers can act on, by result code, into domain
// errors. Constraint violations: the Service checks every rule first, so they mean a
// change raced past a check. A full disk: the caller should hear that it is full,
// not only that something failed; the writer goes on when there is room again.
func mapError(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return &tasks.Error{Code: tasks.EConflict, Message: "the change refers to a task that does not exist, or removes one that others refer to"}
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &tasks.Error{Code: tasks.EConflict, Message: "the change conflicts with existing data"}
	case sqlite3.SQLITE_FULL:
		return &tasks.Error{Code: tasks.EInternal, Message: "the disk that holds the database is full: nothing was changed; free some space and try again"}
	}
	return err
}
