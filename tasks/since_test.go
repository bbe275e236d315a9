package tasks_test

import (
	"context"
	"testing"
	"time"

	"taskhub/tasks"
)

// TestSeqBefore: the seq before the events made from a time on, also when the oldest
// events were pruned.
func TestSeqBefore(t *testing.T) {
	svc, path := newService(t)
	ctx := context.Background()
	var times []time.Time // of the events 1 to 10
	for range 10 {
		times = append(times, create(t, svc, tasks.Update{}).CreatedAt.Time)
	}
	check := func(at time.Time, want int64) {
		t.Helper()
		if got, err := svc.SeqBefore(ctx, at); err != nil || got != want {
			t.Errorf("SeqBefore(%s) = %d, %v; want %d", at.Format(time.RFC3339Nano), got, err, want)
		}
	}
	check(times[0].Add(-time.Hour), 0)
	for i, at := range times {
		check(at, int64(i))
		check(at.Add(time.Nanosecond), int64(i+1))
	}
	check(time.Now().Add(time.Hour), 10)
	if _, err := rawDB(t, path).Exec("DELETE FROM events WHERE seq <= 4"); err != nil {
		t.Fatal(err)
	}
	check(times[2], 0)
	check(times[6], 6)
	check(times[9].Add(time.Nanosecond), 10)
}
