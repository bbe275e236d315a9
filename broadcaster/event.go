package broadcaster

import (
	"context"
	"strconv"
	"time"
)

// Event is one event of the log, as the Hub sends it: its JSON, and the values that
// subscribers' filters match on. For a change, each value list holds what the task had
// before and after it, so a subscriber also learns of a task that leaves its filter.
type Event struct {
	Seq  int64
	Type string
	Data []byte // the event's JSON, on one line

	TaskID    int64
	Source    string
	Assignees []string
	Projects  []string
	Statuses  []string
	Labels    []string
}

// Log is the durable event log: the only way events reach the Hub, and where replay
// reads from.
type Log interface {
	// After returns up to limit events with a seq above after, in seq order.
	After(ctx context.Context, after int64, limit int) ([]Event, error)
	// Last returns the seq of the newest event, 0 when there is none.
	Last(ctx context.Context) (int64, error)
	// First returns the seq of the oldest event kept, Last()+1 when none is.
	First(ctx context.Context) (int64, error)
}

// frame is an event encoded once for every subscriber that gets it, and for the
// replay ring.
type frame struct {
	seq       int64
	ev        Event     // what filters match on; its Data is part of sse
	sse       []byte    // id, event and data lines, and the blank line that ends the event
	published time.Time // zero for a frame read for replay
}

func newFrame(e *Event) *frame {
	b := make([]byte, 0, len(e.Data)+len(e.Type)+40)
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	start := len(b)
	b = append(b, e.Data...)
	b = append(b, "\n\n"...)
	f := &frame{seq: e.Seq, ev: *e, sse: b}
	f.ev.Data = b[start : start+len(e.Data) : start+len(e.Data)]
	return f
}

// appendBatch appends one batch_update event holding frames, whose id is the last seq.
func appendBatch(b []byte, frames []*frame) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, frames[len(frames)-1].seq, 10)
	b = append(b, "\nevent: batch_update\ndata: {\"events\":["...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.ev.Data...)
	}
	return append(b, "]}\n\n"...)
}
