-- Notes: each task's thread, append-only. They live with their task, deleted with it,
-- and apart from the event log, which pruning shortens.
CREATE TABLE notes (
    -- AUTOINCREMENT: the id of a note deleted with its task is never given again.
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author  TEXT    NOT NULL,
    -- UTC RFC 3339 text with six fractional digits, as the tasks' times.
    time    TEXT    NOT NULL,
    text    TEXT    NOT NULL
);

CREATE INDEX notes_task_id ON notes (task_id, id);
