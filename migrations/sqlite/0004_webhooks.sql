-- Webhook endpoints: durable readers of the event log, each with a cursor of its own
-- (see tasks.Webhook), their recent delivery attempts, the leases that let one
-- process at a time deliver each, and the name of this database's log.

CREATE TABLE webhooks (
    -- AUTOINCREMENT: the id of a deleted endpoint is never given to another one.
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT    NOT NULL,
    filters               TEXT    NOT NULL DEFAULT '{}',
    enabled               INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    secret                TEXT    NOT NULL,
    previous_secret       TEXT    NOT NULL DEFAULT '',
    previous_secret_until TEXT,
    revision              INTEGER NOT NULL CHECK (revision >= 1),
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL,
    -- The delivery's state.
    cursor                INTEGER NOT NULL CHECK (cursor >= 0),
    last_status           INTEGER NOT NULL DEFAULT 0,
    failures              INTEGER NOT NULL DEFAULT 0,
    next_attempt_at       TEXT,
    disabled_reason       TEXT    NOT NULL DEFAULT '',
    -- The n of the endpoint's last recorded attempt (0 before any).
    last_delivery         INTEGER NOT NULL DEFAULT 0
);

-- n numbers each endpoint's attempts from 1 (webhooks.last_delivery counts them); only
-- the last 1,000 are kept, attempt n in slot n % 1000, which the next thousandth
-- overwrites: recording one is a single write, with nothing to look up or delete.
CREATE TABLE webhook_deliveries (
    webhook_id  INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    slot        INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    time        TEXT    NOT NULL,
    duration_us INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, slot)
) WITHOUT ROWID;

CREATE TABLE webhook_leases (
    webhook_id INTEGER PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    owner      TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
);

-- A random name of this database's event log, in webhook-ids.
CREATE TABLE log_identity (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    id  TEXT    NOT NULL
);

INSERT INTO log_identity (one, id) VALUES (1, lower(hex(randomblob(8))));
