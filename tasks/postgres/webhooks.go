package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"taskhub/tasks"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ tasks.WebhookStore = (*DB)(nil)

// webhookColumns selects a whole endpoint.
const webhookColumns = `id, url, filters, enabled, secret, previous_secret, previous_secret_until, revision,
	created_at, updated_at, cursor, last_status, failures, next_attempt_at, disabled_reason`

// boundsLock is the key of the advisory lock that a Write which sets an endpoint's
// cursor from the log's bounds holds until its commit, and a deletion of pruned
// events holds while it finds what to delete: so pruning never deletes the events
// such a cursor was set to reach.
const boundsLock int64 = 0x7461736b68756204 // "taskhub" and 4

// pruneBound is the condition PruneEvents adds for webhooks: it deletes no event that
// an enabled endpoint has not handled yet.
const pruneBound = "seq <= (SELECT coalesce(min(cursor), 9223372036854775807) FROM webhooks WHERE enabled)"

func scanWebhook(row pgx.Row) (*tasks.Webhook, error) {
	var (
		w                tasks.Webhook
		filters          json.RawMessage
		prevUntil, next  *time.Time
		created, updated time.Time
	)
	err := row.Scan(&w.ID, &w.URL, &filters, &w.Enabled, &w.Secret, &w.PreviousSecret, &prevUntil, &w.Revision,
		&created, &updated, &w.State.Cursor, &w.State.LastStatus, &w.State.Failures, &next, &w.State.DisabledReason)
	if err != nil {
		return nil, err
	}
	w.Filters = filters
	w.PreviousSecretUntil, w.State.NextAttemptAt = optTime(prevUntil), optTime(next)
	w.CreatedAt, w.UpdatedAt = tasks.NewTime(created), tasks.NewTime(updated)
	return &w, nil
}

func optTime(t *time.Time) *tasks.Time {
	if t == nil {
		return nil
	}
	v := tasks.NewTime(*t)
	return &v
}

func webhookNotFound(id int64) error {
	return tasks.Errorf(tasks.ENotFound, "", "webhook %d not found", id)
}

// WriteWebhooks implements tasks.WebhookStore.
func (db *DB) WriteWebhooks(ctx context.Context, fn func(tasks.WebhookTx) error) error {
	return db.Write(ctx, func(tx tasks.Tx) error { return fn(tx.(*writeTx)) })
}

// Webhook implements tasks.WebhookStore.
func (db *DB) Webhook(ctx context.Context, id int64) (*tasks.Webhook, error) {
	w, err := scanWebhook(db.pool.QueryRow(ctx, "SELECT "+webhookColumns+" FROM webhooks WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, webhookNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook %d: %w", id, mapError(err))
	}
	return w, nil
}

// Webhooks implements tasks.WebhookStore.
func (db *DB) Webhooks(ctx context.Context) ([]*tasks.Webhook, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+webhookColumns+" FROM webhooks ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapError(err))
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tasks.Webhook, error) { return scanWebhook(row) })
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapError(err))
	}
	if list == nil {
		list = []*tasks.Webhook{}
	}
	return list, nil
}

// WebhookDeliveries implements tasks.WebhookStore.
func (db *DB) WebhookDeliveries(ctx context.Context, id, before int64, limit int) ([]tasks.WebhookDelivery, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := db.pool.Query(ctx, `SELECT n, seq, attempt, status, error, time, duration_us FROM webhook_deliveries
		WHERE webhook_id = $1 AND n < $2 ORDER BY n DESC LIMIT $3`, id, before, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", id, mapError(err))
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tasks.WebhookDelivery, error) {
		d := tasks.WebhookDelivery{WebhookID: id}
		var at time.Time
		var us int64
		err := row.Scan(&d.N, &d.Seq, &d.Attempt, &d.Status, &d.Error, &at, &us)
		d.Time, d.Duration = tasks.NewTime(at), time.Duration(us)*time.Microsecond
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", id, mapError(err))
	}
	if list == nil {
		list = []tasks.WebhookDelivery{}
	}
	return list, nil
}

// AcquireWebhookLease implements tasks.WebhookStore, on the database's clock.
func (db *DB) AcquireWebhookLease(ctx context.Context, id int64, owner string, ttl time.Duration) (bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO webhook_leases (webhook_id, owner, expires_at)
		SELECT id, $2, clock_timestamp() + $3 * interval '1 microsecond' FROM webhooks WHERE id = $1
		ON CONFLICT (webhook_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE webhook_leases.owner = excluded.owner OR webhook_leases.expires_at < clock_timestamp()`,
		id, owner, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("lease of webhook %d: %w", id, mapError(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseWebhookLease implements tasks.WebhookStore.
func (db *DB) ReleaseWebhookLease(ctx context.Context, id int64, owner string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM webhook_leases WHERE webhook_id = $1 AND owner = $2", id, owner); err != nil {
		return fmt.Errorf("release the lease of webhook %d: %w", id, mapError(err))
	}
	return nil
}

// LogID implements tasks.WebhookStore.
func (db *DB) LogID(ctx context.Context) (string, error) {
	var id string
	if err := db.pool.QueryRow(ctx, "SELECT id FROM log_identity").Scan(&id); err != nil {
		return "", fmt.Errorf("the log's id: %w", mapError(err))
	}
	return id, nil
}

// Webhook implements tasks.WebhookTx: the endpoint's row stays locked until the
// commit, so a concurrent change of it waits.
func (w *writeTx) Webhook(id int64) (*tasks.Webhook, error) {
	q := w.batch()
	var h *tasks.Webhook
	q.Queue("SELECT "+webhookColumns+" FROM webhooks WHERE id = $1 FOR UPDATE", id).QueryRow(func(row pgx.Row) (err error) {
		h, err = scanWebhook(row)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err := w.b.send(q); err != nil {
		return nil, fmt.Errorf("get webhook %d: %w", id, err)
	}
	if h == nil {
		return nil, webhookNotFound(id)
	}
	return h, nil
}

// CreateWebhook implements tasks.WebhookTx.
func (w *writeTx) CreateWebhook(h *tasks.Webhook) error {
	w.wrote = true
	q := w.batch()
	q.Queue(`INSERT INTO webhooks (url, filters, enabled, secret, previous_secret, previous_secret_until,
		revision, created_at, updated_at, cursor, last_status, failures, next_attempt_at, disabled_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		h.URL, h.Filters, h.Enabled, h.Secret, h.PreviousSecret, timeArg(h.PreviousSecretUntil),
		h.Revision, h.CreatedAt.Time, h.UpdatedAt.Time, h.State.Cursor, h.State.LastStatus, h.State.Failures,
		timeArg(h.State.NextAttemptAt), h.State.DisabledReason).QueryRow(func(row pgx.Row) error { return row.Scan(&h.ID) })
	if err := w.b.send(q); err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// UpdateWebhook implements tasks.WebhookTx.
func (w *writeTx) UpdateWebhook(h *tasks.Webhook) error {
	err := w.write(stmt(`UPDATE webhooks SET url = $2, filters = $3, enabled = $4, secret = $5, previous_secret = $6,
		previous_secret_until = $7, revision = $8, updated_at = $9, cursor = $10, last_status = $11, failures = $12,
		next_attempt_at = $13, disabled_reason = $14 WHERE id = $1`,
		h.ID, h.URL, h.Filters, h.Enabled, h.Secret, h.PreviousSecret, timeArg(h.PreviousSecretUntil),
		h.Revision, h.UpdatedAt.Time, h.State.Cursor, h.State.LastStatus, h.State.Failures,
		timeArg(h.State.NextAttemptAt), h.State.DisabledReason))
	if err != nil {
		return fmt.Errorf("update webhook %d: %w", h.ID, err)
	}
	return nil
}

// DeleteWebhook implements tasks.WebhookTx.
func (w *writeTx) DeleteWebhook(id int64) error {
	if err := w.write(stmt("DELETE FROM webhooks WHERE id = $1", id)); err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// SetWebhookState implements tasks.WebhookTx: with an attempt, one statement that
// updates the endpoint's row, counting the attempt, and writes the attempt's slot,
// which the first thousand attempts insert and every later one overwrites.
func (w *writeTx) SetWebhookState(id, revision int64, s tasks.WebhookState, d *tasks.WebhookDelivery) (bool, error) {
	w.wrote = true
	const update = `UPDATE webhooks SET cursor = $3, last_status = $4, failures = $5, next_attempt_at = $6, disabled_reason = $7`
	args := []any{id, revision, s.Cursor, s.LastStatus, s.Failures, timeArg(s.NextAttemptAt), s.DisabledReason}
	query := update + " WHERE id = $1 AND revision = $2"
	if d != nil {
		query = `WITH counted AS (` + update + `, last_delivery = last_delivery + 1 WHERE id = $1 AND revision = $2
				RETURNING last_delivery)
			INSERT INTO webhook_deliveries (webhook_id, slot, n, seq, attempt, status, error, time, duration_us)
			SELECT $1, last_delivery % $8, last_delivery, $9, $10, $11, $12, $13, $14 FROM counted
			ON CONFLICT (webhook_id, slot) DO UPDATE SET n = excluded.n, seq = excluded.seq, attempt = excluded.attempt,
				status = excluded.status, error = excluded.error, time = excluded.time, duration_us = excluded.duration_us`
		args = append(args, tasks.MaxWebhookDeliveries, d.Seq, d.Attempt, d.Status, d.Error, d.Time.Time, d.Duration.Microseconds())
	}
	q := w.batch()
	var n int64
	q.Queue(query, args...).Exec(func(tag pgconn.CommandTag) error {
		n = tag.RowsAffected()
		return nil
	})
	if err := w.b.send(q); err != nil {
		return false, fmt.Errorf("webhook %d state: %w", id, err)
	}
	return n == 1, nil
}

// LogBounds implements tasks.WebhookTx. It takes boundsLock first, and reads the
// bounds in a statement of its own once it holds it.
func (w *writeTx) LogBounds() (first, last int64, err error) {
	q := w.batch()
	q.Queue("SELECT pg_advisory_xact_lock($1)", boundsLock)
	q.Queue(`SELECT coalesce((SELECT min(seq) FROM events), last + 1), last FROM event_seq`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&first, &last)
	})
	if err := w.b.send(q); err != nil {
		return 0, 0, fmt.Errorf("the log's bounds: %w", err)
	}
	return first, last, nil
}

// pruneChunkTx deletes up to pruneChunk events below keep that no enabled endpoint
// needs, in a transaction that holds boundsLock, and returns how many.
func pruneChunkTx(ctx context.Context, conn *pgx.Conn, keep int64) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", boundsLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM events WHERE seq IN
			(SELECT seq FROM events WHERE seq < $1 AND `+pruneBound+` ORDER BY seq LIMIT $2)`, keep, pruneChunk)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
