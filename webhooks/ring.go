package webhooks

import (
	"slices"
	"sort"
	"sync"

	"taskhub/internal/seqring"
	"taskhub/tasks"
)

// Bounds of the tail of the log that the engine keeps for its workers: the newest
// events, so that workers that keep up, or are a few seconds behind, never read the
// store.
const (
	ringEvents = 16384
	ringBytes  = 16 << 20
)

// newTail returns the ring of the newest events of the log, as the tailer handed them
// on, within the bounds above.
func newTail() *seqring.Ring[*tasks.Record] {
	return seqring.New(ringEvents, ringBytes, func(r *tasks.Record) int64 { return r.Seq }, func(r *tasks.Record) int { return len(r.Data) })
}

// Bounds of the pages read from the store that the engine keeps, besides the one
// read last.
const (
	keptPages = 4
	keptBytes = 4 << 20
)

// pages is what the workers last read from the store: endpoints that fall behind the
// ring together, as endpoints with the same events do, read each page of the log
// once between them instead of once each.
type pages struct {
	mu    sync.Mutex
	list  []page // oldest first
	bytes int
}

// page is every event of the log with a seq above after up to the last of records,
// as one read found them.
type page struct {
	after   int64
	records []*tasks.Record
	bytes   int
}

// add keeps records, every event of the log after seq up to the last of them,
// dropping the oldest pages beyond the bounds.
func (p *pages) add(seq int64, records []*tasks.Record) {
	if len(records) == 0 {
		return
	}
	pg := page{after: seq, records: records}
	for _, r := range records {
		pg.bytes += len(r.Data)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, pg)
	p.bytes += pg.bytes
	drop := 0
	for len(p.list)-drop > 1 && (len(p.list)-drop > keptPages || p.bytes > keptBytes) {
		p.bytes -= p.list[drop].bytes
		drop++
	}
	p.list = slices.Delete(p.list, 0, drop)
}

// clear forgets every page.
func (p *pages) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list, p.bytes = nil, 0
}

// after returns up to limit events with a seq above seq from a page that holds the
// event right after seq, and whether one did.
func (p *pages) after(seq int64, limit int) ([]*tasks.Record, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.list) - 1; i >= 0; i-- {
		pg := p.list[i]
		if seq < pg.after || seq >= pg.records[len(pg.records)-1].Seq {
			continue
		}
		j := sort.Search(len(pg.records), func(j int) bool { return pg.records[j].Seq > seq })
		return append([]*tasks.Record(nil), pg.records[j:min(j+limit, len(pg.records))]...), true
	}
	return nil, false
}
