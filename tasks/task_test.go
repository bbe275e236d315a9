package tasks_test

import (
	"encoding/json"
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
