// Package broadcaster will fan committed events out to Server-Sent-Events subscribers:
// per-subscriber filters, bounded queues, batching, keepalives, replay on reconnect and
// the /events/debug snapshot. It is not written yet; until it is, clients poll
// GET /api/events.
package broadcaster
