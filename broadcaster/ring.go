package broadcaster

import "sync"

// ring holds the most recent frames, in seq order with no gap, within a bound on
// their number and on their bytes: the history replay sends without reading the log.
type ring struct {
	maxFrames, maxBytes int

	mu     sync.Mutex
	frames []*frame // circular: the oldest at head
	head   int
	n      int
	bytes  int
}

func newRing(maxFrames, maxBytes int) ring {
	return ring{maxFrames: maxFrames, maxBytes: maxBytes}
}

// push appends f, which comes right after the newest frame, and lets the oldest frames
// go as the bounds require. A frame that does not follow the newest, or that is larger
// than the whole byte bound (and so is not kept), empties the ring first: the ring
// never holds frames on both sides of a gap.
func (r *ring) push(f *frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := len(f.sse)
	if r.n > 0 && f.seq != r.frames[(r.head+r.n-1)%len(r.frames)].seq+1 {
		r.reset() // not the next one: what the ring holds would no longer be all there is
	}
	if size > r.maxBytes {
		r.reset()
		return
	}
	for r.n > 0 && (r.n >= r.maxFrames || r.bytes+size > r.maxBytes) {
		r.dropOldest()
	}
	if r.n == len(r.frames) {
		r.grow()
	}
	r.frames[(r.head+r.n)%len(r.frames)] = f
	r.n++
	r.bytes += size
}

// grow doubles the ring's array, up to maxFrames, keeping the frames in order.
func (r *ring) grow() {
	next := make([]*frame, min(max(2*len(r.frames), 64), r.maxFrames))
	for i := range r.n {
		next[i] = r.frames[(r.head+i)%len(r.frames)]
	}
	r.frames, r.head = next, 0
}

func (r *ring) dropOldest() {
	r.bytes -= len(r.frames[r.head].sse)
	r.frames[r.head] = nil
	r.head = (r.head + 1) % len(r.frames)
	r.n--
}

func (r *ring) reset() {
	clear(r.frames)
	r.head, r.n, r.bytes = 0, 0, 0
}

// after appends to into the frames with a seq above seq, oldest first, and reports
// whether the ring holds every frame above seq: true when its oldest frame is at most
// seq+1. An empty ring holds none.
func (r *ring) after(seq int64, into []*frame) ([]*frame, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || r.frames[r.head].seq > seq+1 {
		return into, false
	}
	// Seqs in the ring have no gap: the first one above seq is at a known offset.
	skip := max(0, int(seq+1-r.frames[r.head].seq))
	for i := skip; i < r.n; i++ {
		into = append(into, r.frames[(r.head+i)%len(r.frames)])
	}
	return into, true
}
