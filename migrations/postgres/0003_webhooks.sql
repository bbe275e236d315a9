-- Webhook endpoints, their recent delivery attempts, the leases that let one node at a
-- time deliver each, and the name of this database's log: the tables and meaning of
-- the SQLite schema (../sqlite/0004_webhooks.sql), in PostgreSQL's types.

CREATE TABLE webhooks (
    id                    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   text        NOT NULL,
    filters               json        NOT NULL DEFAULT '{}',
    enabled               boolean     NOT NULL,
    secret                text        NOT NULL,
    previous_secret       text        NOT NULL DEFAULT '',
    previous_secret_until timestamptz,
    revision              bigint      NOT NULL CHECK (revision >= 1),
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    cursor                bigint      NOT NULL CHECK (cursor >= 0),
    last_status           integer     NOT NULL DEFAULT 0,
    failures              integer     NOT NULL DEFAULT 0,
    next_attempt_at       timestamptz,
    disabled_reason       text        NOT NULL DEFAULT '',
    last_delivery         bigint      NOT NULL DEFAULT 0
);

CREATE TABLE webhook_deliveries (
    webhook_id  bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    slot        integer     NOT NULL,
    n           bigint      NOT NULL,
    seq         bigint      NOT NULL,
    attempt     integer     NOT NULL,
    status      integer     NOT NULL,
    error       text        NOT NULL,
    time        timestamptz NOT NULL,
    duration_us bigint      NOT NULL,
    PRIMARY KEY (webhook_id, slot)
);

CREATE TABLE webhook_leases (
    webhook_id bigint      PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE log_identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id  text    NOT NULL
);

INSERT INTO log_identity (id) VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 16));
