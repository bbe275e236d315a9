-- Completions list the projects and assignees that begin with what was typed, found by
-- seeking in an index from one distinct value to the next. A prefix marks off a range
-- of values only in byte order, so these indexes are in the "C" collation whatever the
-- database's own (the labels' column is "C" already, and its index serves).

CREATE INDEX tasks_project_c ON tasks (project COLLATE "C");
CREATE INDEX tasks_assignee_c ON tasks (assignee COLLATE "C");
