package tasks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"taskhub/tasks"
)

// TestTimeUnmarshalJSON checks that a Time takes RFC 3339 and only that: time.Parse
// also takes offsets RFC 3339 does not allow (hours 24 and over, minute 60).
func TestTimeUnmarshalJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time // zero: refused
	}{
		{`"2026-01-01T10:00:00Z"`, time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)},
		{`"2026-01-01T10:00:00.1234567Z"`, time.Date(2026, 1, 1, 10, 0, 0, 123456000, time.UTC)},
		{`"2026-01-01T10:00:00+23:59"`, time.Date(2026, 1, 1, 10, 0, 0, 0, time.FixedZone("", 23*3600+59*60))},
		{`"2026-01-01T10:00:00-23:59"`, time.Date(2026, 1, 1, 10, 0, 0, 0, time.FixedZone("", -23*3600-59*60))},
		{`"2026-01-01T10:00:00-00:00"`, time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)},
		{`"2026-01-01T10:00:00+24:00"`, time.Time{}},
		{`"2026-01-01T10:00:00-24:00"`, time.Time{}},
		{`"2026-01-01T10:00:00+01:60"`, time.Time{}},
		{`"2026-01-01T10:00:00+99:00"`, time.Time{}},
		{`"2026-01-01T10:00:00"`, time.Time{}},
		{`"2026-01-01"`, time.Time{}},
		{`5`, time.Time{}},
	} {
		var got tasks.Time
		err := json.Unmarshal([]byte(tc.in), &got)
		switch {
		case tc.want.IsZero() && err == nil:
			t.Errorf("%s: accepted as %s", tc.in, got)
		case !tc.want.IsZero() && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case !tc.want.IsZero() && !got.Equal(tc.want):
			t.Errorf("%s: %s, want %s", tc.in, got, tc.want.UTC())
		}
	}
}

// TestNoteLength checks the limit of a change's note, whoever sends it: at most
// MaxNote characters, counted as characters, not bytes.
func TestNoteLength(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	task, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("noted")})
	if err != nil {
		t.Fatal(err)
	}
	before := len(allEvents(t, svc))
	_, err = svc.Update(ctx, task.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone), Note: strings.Repeat("n", tasks.MaxNote+1)})
	wantError(t, err, tasks.EInvalid, "note")
	if got, err := svc.Get(ctx, task.ID); err != nil || got.Version != task.Version || len(allEvents(t, svc)) != before {
		t.Fatalf("a refused note changed the task: %+v, %v", got, err)
	}
	note := strings.Repeat("é", tasks.MaxNote) // 2 bytes each
	if _, err := svc.Update(ctx, task.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone), Note: note}); err != nil {
		t.Fatalf("a note of %d characters: %v", tasks.MaxNote, err)
	}
	if events := allEvents(t, svc); events[len(events)-1].Note != note {
		t.Errorf("the event's note is not the one sent")
	}
}
