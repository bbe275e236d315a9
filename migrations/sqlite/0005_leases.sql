-- Claim leases and progress. lease_expires_at is when the holder's lease runs out
-- (UTC RFC 3339 text, like every time here, so it sorts as text), NULL without one;
-- lease_length_us is the claim's lease length in microseconds, by which a renewal
-- extends it. The index finds the next lease to run out at once, however many tasks
-- there are; tasks without a lease are not in it.

ALTER TABLE tasks ADD COLUMN lease_expires_at TEXT;
ALTER TABLE tasks ADD COLUMN lease_length_us INTEGER NOT NULL DEFAULT 0 CHECK (lease_length_us >= 0);
ALTER TABLE tasks ADD COLUMN progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100);
ALTER TABLE tasks ADD COLUMN progress_message TEXT NOT NULL DEFAULT '';

CREATE INDEX tasks_lease_expires_at ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
