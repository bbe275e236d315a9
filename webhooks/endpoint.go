// Package webhooks delivers the event log to HTTP endpoints, signed per the Standard
// Webhooks specification: the endpoints' rules (Service), their signatures, the guard
// against requests to private addresses, and the Engine that delivers each endpoint's
// events in seq order, at least once, from a cursor kept in the database.
package webhooks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"taskhub/broadcaster"
	"taskhub/tasks"
)

// Filter selects the events an endpoint gets: the stream's filter, in the same JSON.
type Filter = broadcaster.Filter

// Endpoint is a webhook endpoint as the API shows it. Secret is set only in the answer
// to its creation and to a rotation of its secret.
type Endpoint struct {
	ID      int64  `json:"id"`
	URL     string `json:"url"`
	Filters Filter `json:"filters"`
	Enabled bool   `json:"enabled"`
	Secret  string `json:"secret,omitempty"`
	// PreviousSecretExpiresAt, after a rotation, is when the secret it replaced stops
	// signing beside the new one.
	PreviousSecretExpiresAt *tasks.Time `json:"previous_secret_expires_at"`
	CreatedAt               tasks.Time  `json:"created_at"`
	UpdatedAt               tasks.Time  `json:"updated_at"`
	State                   State       `json:"state"`
}

// State is where an endpoint's delivery stands. Lag is left out of the endpoint that
// an event carries.
type State struct {
	Cursor         int64       `json:"cursor"`
	Lag            *int64      `json:"lag,omitempty"`
	LastStatus     int         `json:"last_status"`
	Failures       int         `json:"failures"`
	NextAttemptAt  *tasks.Time `json:"next_attempt_at"`
	DisabledReason string      `json:"disabled_reason"`
}

// Delivery is one attempt to deliver an event, as the API shows it.
type Delivery struct {
	Seq        int64      `json:"seq"`
	WebhookID  string     `json:"webhook_id"`
	Attempt    int        `json:"attempt"`
	Status     int        `json:"status"`
	Error      string     `json:"error"`
	Time       tasks.Time `json:"time"`
	DurationMS float64    `json:"duration_ms"`
}

// DeliveryPage is a page of an endpoint's attempts, newest first. NextCursor is
// empty on the last page.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	NextCursor string     `json:"next_cursor"`
}

// MessageID is the webhook-id of the event with seq in the log named logID: the same
// on every attempt and for every endpoint, and different from that of the event with
// the same seq in another database.
func MessageID(logID string, seq int64) string {
	return "msg_" + strconv.FormatInt(seq, 10) + "_" + logID
}

// endpointOf is w as the API shows it, without its secret.
func endpointOf(w *tasks.Webhook) (*Endpoint, error) {
	e := &Endpoint{
		ID: w.ID, URL: w.URL, Enabled: w.Enabled, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		State: State{
			Cursor: w.State.Cursor, LastStatus: w.State.LastStatus, Failures: w.State.Failures,
			NextAttemptAt: w.State.NextAttemptAt, DisabledReason: w.State.DisabledReason,
		},
	}
	if w.PreviousSecret != "" {
		e.PreviousSecretExpiresAt = w.PreviousSecretUntil
	}
	if err := json.Unmarshal(w.Filters, &e.Filters); err != nil {
		return nil, fmt.Errorf("webhook %d: stored filters %s: %w", w.ID, w.Filters, err)
	}
	return e, nil
}

// deliveryOf is d as the API shows it.
func deliveryOf(logID string, d tasks.WebhookDelivery) Delivery {
	return Delivery{
		Seq: d.Seq, WebhookID: MessageID(logID, d.Seq), Attempt: d.Attempt, Status: d.Status, Error: d.Error,
		Time: d.Time, DurationMS: float64(d.Duration.Microseconds()) / float64(time.Millisecond/time.Microsecond),
	}
}
