//go:build linux

package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank
// method: the smallest value with at least p% of the values at or below it. It is
// always one of the values, never an interpolation. Zero for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// latencySummary is p50/p99/max of a set of latencies.
type latencySummary struct {
	n             int
	p50, p99, max time.Duration
}

// summarize sorts d in place and summarizes it.
func summarize(d []time.Duration) latencySummary {
	slices.Sort(d)
	s := latencySummary{n: len(d), p50: percentile(d, 50), p99: percentile(d, 99)}
	if len(d) > 0 {
		s.max = d[len(d)-1]
	}
	return s
}

func (s latencySummary) String() string {
	if s.n == 0 {
		return "n/a (no deliveries)"
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (of %d)", ms(s.p50), ms(s.p99), ms(s.max), s.n)
}

// ms formats d in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
