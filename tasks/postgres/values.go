package postgres

import (
	"context"
	"fmt"
	"strconv"

	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
)

// valueColumn names the table and the byte-ordered column of a field whose values
// Values lists; each has an index in that order (tasks_project_c, tasks_assignee_c,
// task_labels_label).
func valueColumn(f tasks.ValueField) (table, column string, ok bool) {
	switch f {
	case tasks.FieldProject, tasks.FieldAssignee:
		return "tasks", string(f) + ` COLLATE "C"`, true
	case tasks.FieldLabel:
		return "task_labels", "label", true
	}
	return "", "", false
}

// Values implements tasks.Store. Projects, assignees and labels are found by a loose
// index scan: one seek in the column's index per distinct value, from the prefix on,
// so a project of 100,000 tasks costs what a project of one does. Task ids are read
// range by range (see ValuesQuery.IDRanges) from the primary key.
func (db *DB) Values(ctx context.Context, q tasks.ValuesQuery) ([]string, error) {
	if q.Field == tasks.FieldTaskID {
		return db.taskIDs(ctx, q)
	}
	table, column, ok := valueColumn(q.Field)
	if !ok {
		return nil, fmt.Errorf("values of %q: not a field with values", q.Field)
	}
	// Seeking from '' would walk every task without a value; a prefix is above it.
	first := column + " > ''"
	if q.Prefix != "" {
		first = column + " >= $1"
	}
	next := func(where string) string {
		return "SELECT " + column + " FROM " + table + " WHERE " + where + " ORDER BY " + column + " LIMIT 1"
	}
	// A recursive query is read only as far as its reader goes: the LIMIT ends it.
	rows, err := db.pool.Query(ctx, `WITH RECURSIVE v(value) AS (
		(`+next(first)+`)
		UNION ALL
		SELECT (`+next(column+" > v.value")+`) FROM v WHERE starts_with(v.value, $1))
		SELECT value FROM v WHERE starts_with(value, $1) LIMIT $2`, q.Prefix, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", q.Field, mapError(err))
	}
	values, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", q.Field, mapError(err))
	}
	if values == nil {
		values = []string{}
	}
	return values, nil
}

// taskIDs lists the ids of q, newest first.
func (db *DB) taskIDs(ctx context.Context, q tasks.ValuesQuery) ([]string, error) {
	ids := []string{}
	for _, r := range q.IDRanges() {
		rows, err := db.pool.Query(ctx, "SELECT id FROM tasks WHERE id BETWEEN $1 AND $2 ORDER BY id DESC LIMIT $3", r[0], r[1], q.Limit-len(ids))
		if err != nil {
			return nil, fmt.Errorf("task ids: %w", mapError(err))
		}
		more, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("task ids: %w", mapError(err))
		}
		for _, id := range more {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		if len(ids) == q.Limit {
			break
		}
	}
	return ids, nil
}
