package sqlite

import (
	"context"
	"fmt"

	"taskhub/tasks"
)

// valueColumn names the table and column of a field whose values Values lists; each
// column leads an index (tasks_project_status, tasks_assignee, task_labels_label).
func valueColumn(f tasks.ValueField) (table, column string, ok bool) {
	switch f {
	case tasks.FieldProject, tasks.FieldAssignee:
		return "tasks", string(f), true
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
		first = column + " >= ?1"
	}
	rows, err := db.reader(ctx).query(`WITH RECURSIVE v(value) AS (
		SELECT (SELECT min(`+column+`) FROM `+table+` WHERE `+first+`)
		UNION ALL
		SELECT (SELECT min(`+column+`) FROM `+table+` WHERE `+column+` > v.value) FROM v
		WHERE substr(v.value, 1, length(?1)) = ?1
		LIMIT ?2 + 1)
		SELECT value FROM v WHERE substr(value, 1, length(?1)) = ?1 LIMIT ?2`, q.Prefix, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", q.Field, err)
	}
	defer rows.Close()
	values := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("values of %s: %w", q.Field, mapError(err))
		}
		values = append(values, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("values of %s: %w", q.Field, mapError(err))
	}
	return values, nil
}

// taskIDs lists the ids of q, newest first.
func (db *DB) taskIDs(ctx context.Context, q tasks.ValuesQuery) ([]string, error) {
	ids := []string{}
	for _, r := range q.IDRanges() {
		rows, err := db.reader(ctx).query("SELECT id FROM tasks WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT ?", r[0], r[1], q.Limit-len(ids))
		if err != nil {
			return nil, fmt.Errorf("task ids: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("task ids: %w", mapError(err))
			}
			ids = append(ids, id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("task ids: %w", mapError(err))
		}
		if len(ids) == q.Limit {
			break
		}
	}
	return ids, nil
}
