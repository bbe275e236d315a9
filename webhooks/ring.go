package webhooks

import (
	"sync"

	"taskhub/tasks"
)

// Bounds of the tail of the log that the engine keeps for its workers: the newest
// events, so that workers that keep up never read the store.
const (
	ringEvents = 4096
	ringBytes  = 16 << 20
)

// ring is the newest events of the log, as the tailer handed them on: contiguous seqs.
type ring struct {
	mu      sync.RWMutex
	records []*tasks.Record
	bytes   int
}

func newRing() *ring { return &ring{} }

// add appends r, the event after the last one added, dropping the oldest beyond the
// bounds.
func (g *ring) add(r *tasks.Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.records); n > 0 && g.records[n-1].Seq+1 != r.Seq {
		g.records, g.bytes = g.records[:0], 0 // not contiguous: start again from r
	}
	g.records = append(g.records, r)
	g.bytes += len(r.Data)
	drop := 0
	for len(g.records)-drop > ringEvents || (g.bytes > ringBytes && len(g.records)-drop > 1) {
		g.bytes -= len(g.records[drop].Data)
		drop++
	}
	g.records = g.records[drop:] // append copies the rest to a new array when this one is full
}

// after returns up to limit events with a seq above seq, and whether the ring could
// tell: false when it does not hold the event right after seq, nor know that there is
// none yet.
func (g *ring) after(seq int64, limit int) ([]*tasks.Record, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if len(g.records) == 0 || seq < g.records[0].Seq-1 {
		return nil, false
	}
	i := int(seq - g.records[0].Seq + 1)
	if i >= len(g.records) {
		return nil, true
	}
	return append([]*tasks.Record(nil), g.records[i:min(i+limit, len(g.records))]...), true
}
