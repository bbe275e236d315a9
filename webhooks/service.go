package webhooks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"
)

// RotationOverlap is how long the secret a rotation replaces goes on signing beside
// the new one, so that receivers can take the new one up without missing a message.
const RotationOverlap = 24 * time.Hour

// MaxFilterValues bounds each list of an endpoint's filter.
const MaxFilterValues = 100

// Limits of the deliveries' pages.
const (
	DefaultDeliveriesLimit = 50
	MaxDeliveriesLimit     = tasks.MaxWebhookDeliveries
)

// maxLagScan bounds how many events past an endpoint's cursor its lag counts through.
const maxLagScan = 100_000

// Service carries out every change to webhook endpoints, with their rules, each in
// one transaction with its event (webhook_created, webhook_updated, webhook_deleted).
type Service struct {
	store        tasks.WebhookStore
	vocabulary   broadcaster.Vocabulary
	allowPrivate bool
	now          func() time.Time

	mu    sync.Mutex
	logID string // read once
}

// Config is what a Service is built from.
type Config struct {
	Store tasks.WebhookStore
	// Vocabulary is what filters may name: the stream's.
	Vocabulary broadcaster.Vocabulary
	// AllowPrivate lets endpoints target loopback, link-local and private addresses.
	AllowPrivate bool
}

// NewService returns a Service for cfg.
func NewService(cfg Config) *Service {
	return &Service{store: cfg.Store, vocabulary: cfg.Vocabulary, allowPrivate: cfg.AllowPrivate, now: time.Now}
}

// CreateRequest is what an endpoint is made from. Enabled nil is true; Secret empty
// has one made; FromSeq nil starts the endpoint at the end of the log, else at that
// seq (its events from there on are delivered).
type CreateRequest struct {
	URL     string
	Filters Filter
	Enabled *bool
	Secret  string
	FromSeq *int64
}

// UpdateRequest is a change to an endpoint: only the fields that are Set change.
type UpdateRequest struct {
	URL     tasks.Field[string]
	Filters tasks.Field[Filter]
	Enabled tasks.Field[bool]
}

// checkFilter checks f against the vocabulary and the limits; fields are named
// filters.NAME.
func (s *Service) checkFilter(f Filter) error {
	if err := s.vocabulary.Check(f); err != nil {
		if re, ok := errors.AsType[*broadcaster.RequestError](err); ok {
			return tasks.Errorf(tasks.EInvalid, "filters."+re.Field, "filters.%s", re.Message)
		}
		return err
	}
	for _, l := range []struct {
		name string
		n    int
	}{
		{"types", len(f.Types)}, {"task_id", len(f.TaskIDs)}, {"assignee", len(f.Assignees)}, {"project", len(f.Projects)},
		{"status", len(f.Statuses)}, {"label", len(f.Labels)}, {"source", len(f.Sources)},
	} {
		if l.n > MaxFilterValues {
			return tasks.Errorf(tasks.EInvalid, "filters."+l.name, "filters.%s may hold at most %d values, got %d", l.name, MaxFilterValues, l.n)
		}
	}
	return nil
}

// startCursor returns the cursor that makes an endpoint's delivery start at seq
// from, within the log's bounds as tx sees them; field names the input.
func startCursor(tx tasks.WebhookTx, from int64, field string) (int64, error) {
	first, last, err := tx.LogBounds()
	if err != nil {
		return 0, err
	}
	switch {
	case from < 0 || from > last+1:
		return 0, tasks.Errorf(tasks.EInvalid, field, "%s must be a seq from 0 to %d (the next event's), got %d", field, last+1, from)
	case max(from, 1) < first:
		return 0, tasks.Errorf(tasks.EInvalid, field, "%s %d is older than the oldest event kept, %d: the events before it were pruned", field, from, first)
	}
	return max(from-1, 0), nil
}

// Create makes an endpoint, and returns it with its secret.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Endpoint, error) {
	if err := checkURL(req.URL, s.allowPrivate); err != nil {
		return nil, err
	}
	if err := s.checkFilter(req.Filters); err != nil {
		return nil, err
	}
	secret := req.Secret
	if secret == "" {
		secret = newSecret()
	} else if err := checkSecret(secret); err != nil {
		return nil, err
	}
	filters, err := json.Marshal(req.Filters)
	if err != nil {
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	actor := tasks.ActorFrom(ctx)
	now := tasks.NewTime(s.now())
	w := &tasks.Webhook{URL: req.URL, Filters: filters, Enabled: req.Enabled == nil || *req.Enabled, Secret: secret,
		Revision: 1, CreatedAt: now, UpdatedAt: now}
	err = s.store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		var err error
		if req.FromSeq != nil {
			w.State.Cursor, err = startCursor(tx, *req.FromSeq, "from_seq")
		} else {
			_, w.State.Cursor, err = tx.LogBounds()
		}
		if err != nil {
			return err
		}
		if err := tx.CreateWebhook(w); err != nil {
			return err
		}
		_, err = appendEvent(tx, tasks.EventWebhookCreated, actor, now, w, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	e, err := s.withLag(ctx, w)
	if err != nil {
		return nil, err
	}
	e.Secret = secret
	return e, nil
}

// appendEvent appends the event of a change to w, and returns w as the API shows it.
func appendEvent(tx tasks.WebhookTx, typ tasks.EventType, actor tasks.Actor, at tasks.Time, w *tasks.Webhook, changes map[string][2]json.RawMessage) (*Endpoint, error) {
	e, err := endpointOf(w)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode webhook %d: %w", w.ID, err)
	}
	err = tx.AppendEvent(&tasks.Event{Type: typ, Source: actor.Source, Actor: actor.Name, Time: at, Webhook: payload, Changes: changes})
	return e, err
}

// Get returns the endpoint with id, with its lag.
func (s *Service) Get(ctx context.Context, id int64) (*Endpoint, error) {
	w, err := s.store.Webhook(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get webhook %d: %w", id, err)
	}
	return s.withLag(ctx, w)
}

// List returns every endpoint, by id, each with its lag.
func (s *Service) List(ctx context.Context) ([]*Endpoint, error) {
	list, err := s.store.Webhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	out := make([]*Endpoint, 0, len(list))
	for _, w := range list {
		e, err := s.withLag(ctx, w)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// withLag is w as the API shows it, its lag counted: the events past its cursor that
// its filters match, through at most maxLagScan events.
func (s *Service) withLag(ctx context.Context, w *tasks.Webhook) (*Endpoint, error) {
	e, err := endpointOf(w)
	if err != nil {
		return nil, err
	}
	var lag int64
	q := tasks.EventQuery{After: w.State.Cursor, Types: typesOf(e.Filters), Sources: sourcesOf(e.Filters), Limit: tasks.MaxEventsLimit}
	for scanned := 0; scanned < maxLagScan; {
		records, err := s.store.Events(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("lag of webhook %d: %w", w.ID, err)
		}
		for i := range records {
			if matches(&e.Filters, &records[i]) {
				lag++
			}
		}
		if len(records) < q.Limit {
			break
		}
		scanned += len(records)
		q.After = records[len(records)-1].Seq
	}
	e.State.Lag = &lag
	return e, nil
}

func typesOf(f Filter) []tasks.EventType {
	var out []tasks.EventType
	for _, t := range f.Types {
		out = append(out, tasks.EventType(t))
	}
	return out
}

func sourcesOf(f Filter) []tasks.Source {
	var out []tasks.Source
	for _, src := range f.Sources {
		out = append(out, tasks.Source(src))
	}
	return out
}

// matches reports whether r passes f, as it would on the stream.
func matches(f *Filter, r *tasks.Record) bool {
	e := tasklog.Event(r)
	return f.Match(&e)
}

// change runs fn on endpoint id, locked, in a transaction: fn changes w and returns
// what changed, as an event's changes; a change of nothing stores nothing and appends
// no event. It returns the endpoint as stored.
func (s *Service) change(ctx context.Context, id int64, fn func(tx tasks.WebhookTx, w *tasks.Webhook) (map[string][2]json.RawMessage, error)) (*tasks.Webhook, error) {
	actor := tasks.ActorFrom(ctx)
	var stored *tasks.Webhook
	err := s.store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		w, err := tx.Webhook(id)
		if err != nil {
			return err
		}
		changes, err := fn(tx, w)
		if err != nil {
			return err
		}
		stored = w
		if len(changes) == 0 {
			return nil
		}
		w.Revision++
		w.UpdatedAt = tasks.NewTime(s.now())
		if err := tx.UpdateWebhook(w); err != nil {
			return err
		}
		_, err = appendEvent(tx, tasks.EventWebhookUpdated, actor, w.UpdatedAt, w, changes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update webhook %d: %w", id, err)
	}
	return stored, nil
}

// changeOf adds field's old and new values to changes when they differ.
func changeOf(changes map[string][2]json.RawMessage, field string, old, new any) error {
	o, err := json.Marshal(old)
	if err != nil {
		return err
	}
	n, err := json.Marshal(new)
	if err != nil {
		return err
	}
	if !bytes.Equal(o, n) {
		changes[field] = [2]json.RawMessage{o, n}
	}
	return nil
}

// Update applies u to the endpoint with id. A new URL starts its retries afresh;
// enabling an endpoint clears why it was disabled, and one whose events were pruned
// while it was disabled goes on from the oldest event kept (its event's changes show
// the cursor's jump). An update that changes nothing appends no event.
func (s *Service) Update(ctx context.Context, id int64, u UpdateRequest) (*Endpoint, error) {
	if u.URL.Set {
		if err := checkURL(u.URL.Value, s.allowPrivate); err != nil {
			return nil, err
		}
	}
	var filters json.RawMessage
	if u.Filters.Set {
		if err := s.checkFilter(u.Filters.Value); err != nil {
			return nil, err
		}
		var err error
		if filters, err = json.Marshal(u.Filters.Value); err != nil {
			return nil, fmt.Errorf("update webhook %d: %w", id, err)
		}
	}
	w, err := s.change(ctx, id, func(tx tasks.WebhookTx, w *tasks.Webhook) (map[string][2]json.RawMessage, error) {
		old, err := endpointOf(w)
		if err != nil {
			return nil, err
		}
		changes := map[string][2]json.RawMessage{}
		if u.URL.Set && u.URL.Value != w.URL {
			w.URL, w.State.Failures, w.State.NextAttemptAt = u.URL.Value, 0, nil
			if err := changeOf(changes, "url", old.URL, w.URL); err != nil {
				return nil, err
			}
		}
		if u.Filters.Set {
			if err := changeOf(changes, "filters", old.Filters, u.Filters.Value); err != nil {
				return nil, err
			}
			w.Filters = filters
		}
		if u.Enabled.Set && u.Enabled.Value != w.Enabled {
			w.Enabled = u.Enabled.Value
			w.State.NextAttemptAt = nil
			if w.Enabled {
				w.State.Failures, w.State.DisabledReason = 0, ""
				first, _, err := tx.LogBounds()
				if err != nil {
					return nil, err
				}
				if w.State.Cursor < first-1 {
					if err := changeOf(changes, "cursor", w.State.Cursor, first-1); err != nil {
						return nil, err
					}
					w.State.Cursor = first - 1
				}
			}
			if err := changeOf(changes, "enabled", !w.Enabled, w.Enabled); err != nil {
				return nil, err
			}
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return s.withLag(ctx, w)
}

// RotateSecret gives the endpoint with id a new secret, secret or, when empty, a new
// random one, and returns it with that secret. The one it replaces signs beside it for
// RotationOverlap; one replaced before that stops at once.
func (s *Service) RotateSecret(ctx context.Context, id int64, secret string) (*Endpoint, error) {
	if secret == "" {
		secret = newSecret()
	} else if err := checkSecret(secret); err != nil {
		return nil, err
	}
	w, err := s.change(ctx, id, func(_ tasks.WebhookTx, w *tasks.Webhook) (map[string][2]json.RawMessage, error) {
		until := tasks.NewTime(s.now().Add(RotationOverlap))
		changes := map[string][2]json.RawMessage{}
		if err := changeOf(changes, "previous_secret_expires_at", w.PreviousSecretUntil, until); err != nil {
			return nil, err
		}
		w.PreviousSecret, w.PreviousSecretUntil, w.Secret = w.Secret, &until, secret
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	e, err := s.withLag(ctx, w)
	if err != nil {
		return nil, err
	}
	e.Secret = secret
	return e, nil
}

// Replay makes the endpoint with id deliver again every matching event from seq from
// on, with their original webhook-ids, after the request in flight, and starts its
// retries afresh.
func (s *Service) Replay(ctx context.Context, id, from int64) (*Endpoint, error) {
	w, err := s.change(ctx, id, func(tx tasks.WebhookTx, w *tasks.Webhook) (map[string][2]json.RawMessage, error) {
		cursor, err := startCursor(tx, from, "from_seq")
		if err != nil {
			return nil, err
		}
		changes := map[string][2]json.RawMessage{}
		if err := changeOf(changes, "cursor", w.State.Cursor, cursor); err != nil {
			return nil, err
		}
		// Even to the cursor it has, a replay is a change: it starts the retries afresh
		// and makes the delivery in flight, if any, read the endpoint again.
		if len(changes) == 0 {
			changes["cursor"] = [2]json.RawMessage{json.RawMessage(strconv.FormatInt(cursor, 10)), json.RawMessage(strconv.FormatInt(cursor, 10))}
		}
		w.State.Cursor, w.State.Failures, w.State.NextAttemptAt = cursor, 0, nil
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return s.withLag(ctx, w)
}

// Delete removes the endpoint with id, with its attempts.
func (s *Service) Delete(ctx context.Context, id int64) error {
	actor := tasks.ActorFrom(ctx)
	err := s.store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		w, err := tx.Webhook(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteWebhook(id); err != nil {
			return err
		}
		_, err = appendEvent(tx, tasks.EventWebhookDeleted, actor, tasks.NewTime(s.now()), w, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// Deliveries returns a page of up to limit (1 to MaxDeliveriesLimit) of the recent
// attempts of the endpoint with id, newest first, after cursor (from a previous page;
// empty for the first).
func (s *Service) Deliveries(ctx context.Context, id int64, limit int, cursor string) (DeliveryPage, error) {
	if limit < 1 || limit > MaxDeliveriesLimit {
		return DeliveryPage{}, tasks.Errorf(tasks.EInvalid, "limit", "limit must be 1 to %d, got %d", MaxDeliveriesLimit, limit)
	}
	var before int64
	if cursor != "" {
		var err error
		if before, err = decodeCursor(cursor); err != nil {
			return DeliveryPage{}, err
		}
	}
	if _, err := s.store.Webhook(ctx, id); err != nil {
		return DeliveryPage{}, fmt.Errorf("deliveries of webhook %d: %w", id, err)
	}
	logID, err := s.logIDOf(ctx)
	if err != nil {
		return DeliveryPage{}, err
	}
	list, err := s.store.WebhookDeliveries(ctx, id, before, limit+1)
	if err != nil {
		return DeliveryPage{}, err
	}
	page := DeliveryPage{Deliveries: make([]Delivery, 0, min(len(list), limit))}
	for i, d := range list {
		if i == limit {
			page.NextCursor = encodeCursor(list[i-1].N)
			break
		}
		page.Deliveries = append(page.Deliveries, deliveryOf(logID, d))
	}
	return page, nil
}

// logIDOf returns the store's LogID, read once.
func (s *Service) logIDOf(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logID == "" {
		id, err := s.store.LogID(ctx)
		if err != nil {
			return "", err
		}
		s.logID = id
	}
	return s.logID, nil
}

// A cursor of the deliveries is the N of a page's last attempt behind a version
// prefix, base64-encoded, as the tasks' cursors are.
const cursorPrefix = "d1:"

func encodeCursor(n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(n, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), cursorPrefix); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
				return n, nil
			}
		}
	}
	return 0, tasks.Errorf(tasks.EInvalid, "cursor", "cursor is not one this server returned")
}
