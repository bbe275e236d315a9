-- Tasks, their labels and dependencies, and the durable event log.

CREATE TABLE tasks (
    -- AUTOINCREMENT: the id of a deleted task is never given to another one.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL CHECK (status IN ('todo', 'in_progress', 'review', 'blocked', 'done', 'cancelled')),
    priority    TEXT    NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    assignee    TEXT    NOT NULL DEFAULT '',
    project     TEXT    NOT NULL DEFAULT '',
    parent_id   INTEGER REFERENCES tasks (id),
    due_at      TEXT,
    version     INTEGER NOT NULL CHECK (version >= 1),
    -- Times are UTC RFC 3339 text with six fractional digits: they sort as text.
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL DEFAULT '',
    updated_by  TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX tasks_project_status ON tasks (project, status);
CREATE INDEX tasks_status ON tasks (status);
CREATE INDEX tasks_assignee ON tasks (assignee);
CREATE INDEX tasks_parent_id ON tasks (parent_id);

CREATE TABLE task_labels (
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    label   TEXT    NOT NULL,
    PRIMARY KEY (task_id, label)
) WITHOUT ROWID;

CREATE INDEX task_labels_label ON task_labels (label, task_id);

CREATE TABLE task_deps (
    task_id    INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    depends_on INTEGER NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (task_id, depends_on),
    CHECK (task_id <> depends_on)
) WITHOUT ROWID;

CREATE INDEX task_deps_depends_on ON task_deps (depends_on, task_id);

-- The event log. Every change appends one row in the transaction of the change; seq is
-- the SSE id and only ever grows (AUTOINCREMENT: pruning old rows never frees a seq).
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    type    TEXT    NOT NULL,
    task_id INTEGER,
    source  TEXT    NOT NULL,
    actor   TEXT    NOT NULL,
    time    TEXT    NOT NULL,
    -- The rest of the event as a JSON object: task, changes.
    body    TEXT    NOT NULL
);

CREATE INDEX events_task_id ON events (task_id, seq) WHERE task_id IS NOT NULL;
