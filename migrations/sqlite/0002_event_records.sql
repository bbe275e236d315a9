-- The event log keeps each event as it is sent: data is the event's JSON, seq included,
-- built once when its change was written; match holds what filters match it on (each
-- task value after the change and, where it changed, before), as a JSON object of
-- lists. Readers hand both on without decoding the event.

ALTER TABLE events ADD COLUMN data TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN match TEXT NOT NULL DEFAULT '{}';

-- The events written before: the JSON from the columns and the body, in the order of
-- the event's fields, and the filter values from the task and its changes.
UPDATE events SET
    data = '{"seq":' || seq || ',"type":' || json_quote(type)
        || CASE WHEN task_id IS NULL THEN '' ELSE ',"task_id":' || task_id END
        || ',"source":' || json_quote(source) || ',"actor":' || json_quote(actor)
        || ',"time":' || json_quote(time)
        || CASE WHEN body = '{}' THEN '}' ELSE ',' || substr(body, 2) END,
    match = CASE WHEN json_type(body, '$.task') IS NULL THEN '{}' ELSE json_object(
        'assignee', CASE WHEN json_type(body, '$.changes.assignee') IS NULL
            THEN json_array(json_extract(body, '$.task.assignee'))
            ELSE json_array(json_extract(body, '$.task.assignee'), json_extract(body, '$.changes.assignee[0]')) END,
        'project', CASE WHEN json_type(body, '$.changes.project') IS NULL
            THEN json_array(json_extract(body, '$.task.project'))
            ELSE json_array(json_extract(body, '$.task.project'), json_extract(body, '$.changes.project[0]')) END,
        'status', CASE WHEN json_type(body, '$.changes.status') IS NULL
            THEN json_array(json_extract(body, '$.task.status'))
            ELSE json_array(json_extract(body, '$.task.status'), json_extract(body, '$.changes.status[0]')) END,
        'label', json((SELECT json_group_array(value) FROM (
            SELECT value FROM json_each(body, '$.task.labels')
            UNION SELECT value FROM json_each(body, '$.changes.labels[0]'))))
    ) END;

ALTER TABLE events DROP COLUMN body;
