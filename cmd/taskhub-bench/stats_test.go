//go:build linux

package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1ms … 100ms
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 100", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the minimum", hundred, 0.001, time.Millisecond},
		{"p50 of 2 is the lower", []time.Duration{1, 2}, 50, 1},
		{"p99 of 2 is the upper", []time.Duration{1, 2}, 99, 2},
		{"p99 of 1000 leaves 10 above", seqDurations(1000), 99, 990},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(p%g) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func seqDurations(n int) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = time.Duration(i + 1)
	}
	return d
}

func TestSummarize(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	got := summarize(d)
	want := latencySummary{n: 5, p50: 3, p99: 5, max: 5}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if got := summarize(nil).String(); got != "n/a (no deliveries)" {
		t.Errorf("empty summary %q", got)
	}
}
