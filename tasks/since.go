package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SeqBefore returns the seq of the last event made before t, 0 when there is none:
// passed as after, it reads the log from t on. Events are written in time order (up
// to changes made at the same moment), so it is found by a binary search over the
// seqs, a few reads of one event each, however long the log.
func (s *Service) SeqBefore(ctx context.Context, t time.Time) (int64, error) {
	// Every event up to lo is before t; every event after hi is not.
	var lo int64
	hi, err := s.store.LastSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("find the events since %s: %w", t.Format(time.RFC3339), err)
	}
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		events, err := s.store.Events(ctx, EventQuery{After: mid - 1, Limit: 1})
		if err != nil {
			return 0, fmt.Errorf("find the events since %s: %w", t.Format(time.RFC3339), err)
		}
		if len(events) == 0 || events[0].Seq > hi { // none from mid to hi: pruned
			hi = mid - 1
			continue
		}
		var e struct {
			Time Time `json:"time"`
		}
		if err := json.Unmarshal(events[0].Data, &e); err != nil {
			return 0, fmt.Errorf("event %d: %w", events[0].Seq, err)
		}
		if e.Time.Before(t) {
			lo = events[0].Seq
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}
