package tasks

import (
	"context"
	"encoding/json"
	"time"
)

// Webhook is a webhook endpoint as a store keeps it: a durable reader of the event log
// with a cursor of its own. Package webhooks gives it its rules and its JSON; the
// store keeps every field as it is given.
type Webhook struct {
	ID  int64
	URL string
	// Filters is the endpoint's filter of events, as package webhooks encodes it.
	Filters json.RawMessage
	Enabled bool
	// Secret signs every request. PreviousSecret, while not empty, is the one Secret
	// replaced, which signs beside it until PreviousSecretUntil.
	Secret              string
	PreviousSecret      string
	PreviousSecretUntil *Time
	// Revision grows with every change to the endpoint made through a WebhookTx's
	// UpdateWebhook: a delivery that began before such a change stores its outcome only
	// if the revision is still the one it read (see WebhookTx.SetWebhookState).
	Revision  int64
	CreatedAt Time
	UpdatedAt Time
	State     WebhookState
}

// WebhookState is where the delivery of an endpoint stands.
type WebhookState struct {
	// Cursor is the seq up to which the log has been handled for the endpoint:
	// delivered, or not matching its filters.
	Cursor int64
	// LastStatus is the HTTP status of the last attempt, 0 before any or when it got
	// no answer.
	LastStatus int
	// Failures counts the failed attempts at the event after Cursor.
	Failures int
	// NextAttemptAt, when not nil, is when the next attempt is due.
	NextAttemptAt *Time
	// DisabledReason says why the endpoint was disabled by its delivery, if it was.
	DisabledReason string
}

// WebhookDelivery is one attempt to deliver an event to an endpoint. N numbers the
// attempts of one endpoint, from 1, as the store records them; a store keeps the last
// MaxWebhookDeliveries.
type WebhookDelivery struct {
	WebhookID int64
	N         int64
	Seq       int64
	Attempt   int // 1 for the first attempt at Seq, 2 for its first retry, …
	Status    int // the answer's HTTP status; 0 when there was none
	Error     string
	Time      Time
	Duration  time.Duration
}

// MaxWebhookDeliveries is how many of its most recent attempts a store keeps for each
// endpoint.
const MaxWebhookDeliveries = 1000

// WebhookStore is a Store that also keeps webhook endpoints, their recent delivery
// attempts and the leases that let one node at a time deliver each of them.
//
// Pruning. PruneEvents never deletes an event that an enabled endpoint has not
// handled yet (a seq above its Cursor): an endpoint that cannot deliver holds the
// log back until it is disabled, which the delivery does after its last retry.
type WebhookStore interface {
	Store
	// WriteWebhooks is Write with a transaction that also changes webhooks.
	WriteWebhooks(ctx context.Context, fn func(WebhookTx) error) error
	// Webhooks returns every endpoint, by id.
	Webhooks(ctx context.Context) ([]*Webhook, error)
	// Webhook returns the endpoint with id, or an ENotFound error.
	Webhook(ctx context.Context, id int64) (*Webhook, error)
	// WebhookDeliveries returns up to limit attempts of endpoint id with an N below
	// before (every one when before is 0), newest first.
	WebhookDeliveries(ctx context.Context, id, before int64, limit int) ([]WebhookDelivery, error)
	// AcquireWebhookLease makes owner the holder of endpoint id's lease for ttl from
	// now, if no one else holds an unexpired one, and reports whether owner holds it.
	// The holder calls it again to renew. The store's clock decides, so nodes whose
	// clocks differ agree on who holds a lease.
	AcquireWebhookLease(ctx context.Context, id int64, owner string, ttl time.Duration) (bool, error)
	// ReleaseWebhookLease gives up owner's lease of endpoint id, if owner holds it.
	ReleaseWebhookLease(ctx context.Context, id int64, owner string) error
	// LogID returns a name of this database's event log, made once when the store was
	// created: with it, an event's webhook-id differs from that of the event with the
	// same seq in another database.
	LogID(ctx context.Context) (string, error)
}

// WebhookTx is the transaction of WebhookStore.WriteWebhooks: a Tx that also changes
// webhooks, all of it committed together with the events it appends.
type WebhookTx interface {
	Tx
	// Webhook returns the endpoint with id, locked until the commit, or an ENotFound
	// error.
	Webhook(id int64) (*Webhook, error)
	// CreateWebhook inserts w and sets w.ID.
	CreateWebhook(w *Webhook) error
	// UpdateWebhook stores every field of w, the endpoint with w.ID.
	UpdateWebhook(w *Webhook) error
	// DeleteWebhook removes the endpoint with id, its attempts and its lease.
	DeleteWebhook(id int64) error
	// SetWebhookState stores s as the state of endpoint id if the endpoint is still at
	// revision, and reports whether it was. With it, unless d is nil, it records d as
	// the endpoint's next attempt (d.WebhookID and d.N are not read), in place of its
	// attempt MaxWebhookDeliveries before: a delivery's outcome is one write.
	SetWebhookState(id, revision int64, s WebhookState, d *WebhookDelivery) (bool, error)
	// LogBounds returns FirstSeq and LastSeq as the transaction sees them, and holds
	// pruning off until the commit, so that the events from first on stay there for
	// an endpoint whose cursor the transaction sets.
	LogBounds() (first, last int64, err error)
}
