package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"taskhub/tasks"
)

var _ tasks.WebhookStore = (*DB)(nil)

// webhookColumns selects a whole endpoint.
const webhookColumns = `id, url, filters, enabled, secret, previous_secret, previous_secret_until, revision,
	created_at, updated_at, cursor, last_status, failures, next_attempt_at, disabled_reason`

// pruneBound is the condition PruneEvents adds for webhooks: it deletes no event that
// an enabled endpoint has not handled yet.
const pruneBound = "seq <= (SELECT coalesce(min(cursor), 9223372036854775807) FROM webhooks WHERE enabled)"

func scanWebhook(row scanner) (*tasks.Webhook, error) {
	var (
		w                     tasks.Webhook
		filters               string
		prevUntil, next       sql.NullString
		created, updated      string
		enabledInt, lastState int
	)
	err := row.Scan(&w.ID, &w.URL, &filters, &enabledInt, &w.Secret, &w.PreviousSecret, &prevUntil, &w.Revision,
		&created, &updated, &w.State.Cursor, &lastState, &w.State.Failures, &next, &w.State.DisabledReason)
	if err != nil {
		return nil, err
	}
	w.Filters, w.Enabled, w.State.LastStatus = []byte(filters), enabledInt == 1, lastState
	if w.PreviousSecretUntil, err = parseNullTime(prevUntil); err != nil {
		return nil, err
	}
	if w.State.NextAttemptAt, err = parseNullTime(next); err != nil {
		return nil, err
	}
	if w.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if w.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &w, nil
}

func parseNullTime(s sql.NullString) (*tasks.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	return &t, err
}

func webhookNotFound(id int64) error {
	return tasks.Errorf(tasks.ENotFound, "", "webhook %d not found", id)
}

func getWebhook(c conn, id int64) (*tasks.Webhook, error) {
	w, err := scanWebhook(c.queryRow("SELECT "+webhookColumns+" FROM webhooks WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhookNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook %d: %w", id, mapError(err))
	}
	return w, nil
}

// WriteWebhooks implements tasks.WebhookStore.
func (db *DB) WriteWebhooks(ctx context.Context, fn func(tasks.WebhookTx) error) error {
	return db.Write(ctx, func(tx tasks.Tx) error { return fn(tx.(*writeTx)) })
}

// Webhook implements tasks.WebhookStore.
func (db *DB) Webhook(ctx context.Context, id int64) (*tasks.Webhook, error) {
	return getWebhook(db.reader(ctx), id)
}

// Webhooks implements tasks.WebhookStore.
func (db *DB) Webhooks(ctx context.Context) ([]*tasks.Webhook, error) {
	rows, err := db.reader(ctx).query("SELECT " + webhookColumns + " FROM webhooks ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	list := []*tasks.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", mapError(err))
		}
		list = append(list, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapError(err))
	}
	return list, nil
}

// WebhookDeliveries implements tasks.WebhookStore.
func (db *DB) WebhookDeliveries(ctx context.Context, id, before int64, limit int) ([]tasks.WebhookDelivery, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := db.reader(ctx).query(`SELECT n, seq, attempt, status, error, time, duration_us FROM webhook_deliveries
		WHERE webhook_id = ? AND n < ? ORDER BY n DESC LIMIT ?`, id, before, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", id, err)
	}
	defer rows.Close()
	list := []tasks.WebhookDelivery{}
	for rows.Next() {
		d := tasks.WebhookDelivery{WebhookID: id}
		var at string
		var us int64
		if err := rows.Scan(&d.N, &d.Seq, &d.Attempt, &d.Status, &d.Error, &at, &us); err != nil {
			return nil, fmt.Errorf("deliveries of webhook %d: %w", id, mapError(err))
		}
		if d.Time, err = parseTime(at); err != nil {
			return nil, err
		}
		d.Duration = time.Duration(us) * time.Microsecond
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", id, mapError(err))
	}
	return list, nil
}

// AcquireWebhookLease implements tasks.WebhookStore. The processes that share the
// file share its machine's clock.
func (db *DB) AcquireWebhookLease(ctx context.Context, id int64, owner string, ttl time.Duration) (bool, error) {
	now := time.Now()
	var held bool
	err := db.Write(ctx, func(tx tasks.Tx) error {
		res, err := tx.(*writeTx).exec(`INSERT INTO webhook_leases (webhook_id, owner, expires_at)
			SELECT id, ?, ? FROM webhooks WHERE id = ?
			ON CONFLICT (webhook_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE webhook_leases.owner = excluded.owner OR webhook_leases.expires_at < ?`,
			owner, tasks.NewTime(now.Add(ttl)).String(), id, tasks.NewTime(now).String())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("lease of webhook %d: %w", id, err)
	}
	return held, nil
}

// ReleaseWebhookLease implements tasks.WebhookStore.
func (db *DB) ReleaseWebhookLease(ctx context.Context, id int64, owner string) error {
	err := db.Write(ctx, func(tx tasks.Tx) error {
		_, err := tx.(*writeTx).exec("DELETE FROM webhook_leases WHERE webhook_id = ? AND owner = ?", id, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release the lease of webhook %d: %w", id, err)
	}
	return nil
}

// LogID implements tasks.WebhookStore.
func (db *DB) LogID(ctx context.Context) (string, error) {
	var id string
	if err := db.reader(ctx).queryRow("SELECT id FROM log_identity").Scan(&id); err != nil {
		return "", fmt.Errorf("the log's id: %w", mapError(err))
	}
	return id, nil
}

// Webhook implements tasks.WebhookTx. The writer holds the database's write lock, so
// the endpoint stays as read until the commit.
func (w *writeTx) Webhook(id int64) (*tasks.Webhook, error) { return getWebhook(w.conn, id) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateWebhook implements tasks.WebhookTx.
func (w *writeTx) CreateWebhook(h *tasks.Webhook) error {
	res, err := w.exec(`INSERT INTO webhooks (url, filters, enabled, secret, previous_secret, previous_secret_until,
		revision, created_at, updated_at, cursor, last_status, failures, next_attempt_at, disabled_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.URL, string(h.Filters), boolInt(h.Enabled), h.Secret, h.PreviousSecret, formatTime(h.PreviousSecretUntil),
		h.Revision, h.CreatedAt.String(), h.UpdatedAt.String(), h.State.Cursor, h.State.LastStatus, h.State.Failures,
		formatTime(h.State.NextAttemptAt), h.State.DisabledReason)
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	if h.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// UpdateWebhook implements tasks.WebhookTx.
func (w *writeTx) UpdateWebhook(h *tasks.Webhook) error {
	res, err := w.exec(`UPDATE webhooks SET url = ?, filters = ?, enabled = ?, secret = ?, previous_secret = ?,
		previous_secret_until = ?, revision = ?, updated_at = ?, cursor = ?, last_status = ?, failures = ?,
		next_attempt_at = ?, disabled_reason = ? WHERE id = ?`,
		h.URL, string(h.Filters), boolInt(h.Enabled), h.Secret, h.PreviousSecret, formatTime(h.PreviousSecretUntil),
		h.Revision, h.UpdatedAt.String(), h.State.Cursor, h.State.LastStatus, h.State.Failures,
		formatTime(h.State.NextAttemptAt), h.State.DisabledReason, h.ID)
	if err != nil {
		return fmt.Errorf("update webhook %d: %w", h.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(webhookNotFound(h.ID), err)
	}
	return nil
}

// DeleteWebhook implements tasks.WebhookTx.
func (w *writeTx) DeleteWebhook(id int64) error {
	if _, err := w.exec("DELETE FROM webhooks WHERE id = ?", id); err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// SetWebhookState implements tasks.WebhookTx: an update of the endpoint's row that
// also counts the attempt, and one of the attempt's slot, which the first thousand
// attempts insert and every later one overwrites.
func (w *writeTx) SetWebhookState(id, revision int64, s tasks.WebhookState, d *tasks.WebhookDelivery) (bool, error) {
	res, err := w.exec(`UPDATE webhooks SET cursor = ?, last_status = ?, failures = ?, next_attempt_at = ?, disabled_reason = ?,
		last_delivery = last_delivery + ? WHERE id = ? AND revision = ?`,
		s.Cursor, s.LastStatus, s.Failures, formatTime(s.NextAttemptAt), s.DisabledReason, boolInt(d != nil), id, revision)
	if err != nil {
		return false, fmt.Errorf("webhook %d state: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("webhook %d state: %w", id, err)
	}
	if n == 0 || d == nil {
		return n == 1, nil
	}
	_, err = w.exec(`INSERT INTO webhook_deliveries (webhook_id, slot, n, seq, attempt, status, error, time, duration_us)
		SELECT id, last_delivery % ?, last_delivery, ?, ?, ?, ?, ?, ? FROM webhooks WHERE id = ?
		ON CONFLICT (webhook_id, slot) DO UPDATE SET n = excluded.n, seq = excluded.seq, attempt = excluded.attempt,
		status = excluded.status, error = excluded.error, time = excluded.time, duration_us = excluded.duration_us`,
		tasks.MaxWebhookDeliveries, d.Seq, d.Attempt, d.Status, d.Error, d.Time.String(), d.Duration.Microseconds(), id)
	if err != nil {
		return false, fmt.Errorf("record a delivery of webhook %d: %w", id, err)
	}
	return true, nil
}

// LogBounds implements tasks.WebhookTx. Pruning deletes through the writer too, so it
// cannot run between this read and the commit.
func (w *writeTx) LogBounds() (first, last int64, err error) {
	err = w.queryRow(`SELECT coalesce((SELECT min(seq) FROM events),
		(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events') + 1),
		(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events')`).Scan(&first, &last)
	if err != nil {
		return 0, 0, fmt.Errorf("the log's bounds: %w", mapError(err))
	}
	return first, last, nil
}
