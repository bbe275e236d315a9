package broadcaster

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Snapshot is what GET /events/debug shows.
type Snapshot struct {
	ConnectedClients   int                  `json:"connected_clients"`
	EventsPublished    int64                `json:"events_published"`
	EventsSent         int64                `json:"events_sent"`
	LastEventTime      *time.Time           `json:"last_event_time"`
	LastSeq            int64                `json:"last_seq"`
	BatchesSent        int64                `json:"batches_sent"`
	SubscribersDropped int64                `json:"subscribers_dropped"`
	UptimeSeconds      float64              `json:"uptime_seconds"`
	Node               *Node                `json:"node,omitempty"`
	Subscribers        []SubscriberSnapshot `json:"subscribers"`
}

// Node says which server a Snapshot is of, where several share one log.
type Node struct {
	ID        string `json:"id"`
	Store     string `json:"store"`      // "sqlite" or "postgres"
	TailerSeq int64  `json:"tailer_seq"` // the last seq the server has read from the log
}

// SubscriberSnapshot is one subscriber in a Snapshot.
type SubscriberSnapshot struct {
	ID          string    `json:"id"`
	Owner       string    `json:"owner,omitempty"`
	RemoteAddr  string    `json:"remote_addr"`
	UserAgent   string    `json:"user_agent"`
	Filters     Filter    `json:"filters"`
	Batch       string    `json:"batch,omitempty"`
	ConnectedAt time.Time `json:"connected_at"`
	EventsSent  int64     `json:"events_sent"`
	QueueLen    int       `json:"queue_len"`
	QueueCap    int       `json:"queue_cap"`
	LastEventID int64     `json:"last_event_id"`
}

// Snapshot returns the Hub's counters and its subscribers, oldest first.
func (h *Hub) Snapshot() Snapshot {
	stats := h.Stats()
	snap := Snapshot{
		EventsPublished:    stats.EventsPublished,
		EventsSent:         stats.EventsSent,
		LastSeq:            stats.LastSeq,
		BatchesSent:        stats.BatchesSent,
		SubscribersDropped: stats.SubscribersDropped,
		UptimeSeconds:      time.Since(h.started).Seconds(),
		Subscribers:        []SubscriberSnapshot{},
	}
	if h.cfg.Node != nil {
		n := h.cfg.Node()
		snap.Node = &n
	}
	if ns := h.lastTime.Load(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		snap.LastEventTime = &t
	}
	h.mu.RLock()
	for s := range h.subs {
		sub := SubscriberSnapshot{
			ID: s.id, Owner: s.owner, RemoteAddr: s.remoteAddr, UserAgent: s.userAgent, Filters: s.req.Filter,
			ConnectedAt: s.connectedAt.UTC(), EventsSent: s.sent.Load(), QueueLen: s.queueLen(),
			QueueCap: s.queueCap, LastEventID: s.lastID.Load(),
		}
		if s.req.Batch > 0 {
			sub.Batch = s.req.Batch.String()
		}
		snap.Subscribers = append(snap.Subscribers, sub)
	}
	h.mu.RUnlock()
	snap.ConnectedClients = len(snap.Subscribers)
	slices.SortFunc(snap.Subscribers, func(a, b SubscriberSnapshot) int { return a.ConnectedAt.Compare(b.ConnectedAt) })
	return snap
}

// Debug returns the handler of GET /events/debug.
func (h *Hub) Debug() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(h.Snapshot())
	})
}
