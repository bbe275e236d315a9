-- Claim leases and progress, as in the SQLite schema (../sqlite/0005_leases.sql):
-- lease_expires_at is when the holder's lease runs out, NULL without one;
-- lease_length_us is the claim's lease length in microseconds, by which a renewal
-- extends it. The index finds the next lease to run out at once, however many tasks
-- there are; tasks without a lease are not in it.

ALTER TABLE tasks
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN lease_length_us  bigint NOT NULL DEFAULT 0 CHECK (lease_length_us >= 0),
    ADD COLUMN progress         integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    ADD COLUMN progress_message text NOT NULL DEFAULT '';

CREATE INDEX tasks_lease_expires_at ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
