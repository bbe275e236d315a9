package broadcaster

import "taskhub/internal/seqring"

// newRing returns the ring of the most recent frames, within a bound on their number
// and on their bytes: the history replay sends without reading the log.
func newRing(maxFrames, maxBytes int) *seqring.Ring[*frame] {
	return seqring.New(maxFrames, maxBytes, func(f *frame) int64 { return f.seq }, func(f *frame) int { return len(f.sse) })
}
