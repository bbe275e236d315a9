// Package seqring keeps the newest items of a sequence numbered without gaps, such as
// the events of the log by seq, within a bound on their number and on their bytes,
// for readers that want what follows a number without going back to the store.
package seqring

import (
	"slices"
	"sync"
)

// Ring holds the newest items pushed, in order with no gap in their numbers. It is
// safe for concurrent use.
type Ring[T any] struct {
	maxItems, maxBytes int
	seq                func(T) int64
	size               func(T) int

	mu    sync.Mutex
	items []T // circular: the oldest at head
	head  int
	n     int
	bytes int
}

// New returns an empty Ring of at most maxItems items and maxBytes bytes, which reads
// an item's number with seq and its size with size.
func New[T any](maxItems, maxBytes int, seq func(T) int64, size func(T) int) *Ring[T] {
	return &Ring[T]{maxItems: maxItems, maxBytes: maxBytes, seq: seq, size: size}
}

// Push appends v, which comes right after the newest item, and lets the oldest items go
// as the bounds require. An item that does not follow the newest, or that is larger
// than the whole byte bound (and so is not kept), empties the ring first: the ring
// never holds items on both sides of a gap.
func (r *Ring[T]) Push(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.size(v)
	if r.n > 0 && r.seq(v) != r.seq(r.items[(r.head+r.n-1)%len(r.items)])+1 {
		r.reset() // not the next one: what the ring holds would no longer be all there is
	}
	if size > r.maxBytes {
		r.reset()
		return
	}
	for r.n > 0 && (r.n >= r.maxItems || r.bytes+size > r.maxBytes) {
		r.dropOldest()
	}
	if r.n == len(r.items) {
		r.grow()
	}
	r.items[(r.head+r.n)%len(r.items)] = v
	r.n++
	r.bytes += size
}

// grow doubles the ring's array, up to maxItems, keeping the items in order.
func (r *Ring[T]) grow() {
	next := make([]T, min(max(2*len(r.items), 64), r.maxItems))
	for i := range r.n {
		next[i] = r.items[(r.head+i)%len(r.items)]
	}
	r.items, r.head = next, 0
}

func (r *Ring[T]) dropOldest() {
	var zero T
	r.bytes -= r.size(r.items[r.head])
	r.items[r.head] = zero
	r.head = (r.head + 1) % len(r.items)
	r.n--
}

// Reset empties the ring, and lets its array go.
func (r *Ring[T]) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items, r.head, r.n, r.bytes = nil, 0, 0, 0
}

func (r *Ring[T]) reset() {
	clear(r.items)
	r.head, r.n, r.bytes = 0, 0, 0
}

// After appends to into up to limit items numbered above seq, oldest first, and
// reports whether the ring could tell what follows seq: true when its oldest item is
// numbered at most seq+1, whether or not any item is above seq yet. An empty ring
// cannot tell.
func (r *Ring[T]) After(seq int64, into []T, limit int) ([]T, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || r.seq(r.items[r.head]) > seq+1 {
		return into, false
	}
	// Numbers in the ring have no gap: the first one above seq is at a known offset.
	skip := max(0, int(seq+1-r.seq(r.items[r.head])))
	if skip < r.n && limit > 0 {
		into = slices.Grow(into, min(limit, r.n-skip))
	}
	for i := skip; i < r.n && i-skip < limit; i++ {
		into = append(into, r.items[(r.head+i)%len(r.items)])
	}
	return into, true
}
