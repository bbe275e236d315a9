package seqring

import (
	"slices"
	"testing"
)

// item is a numbered item of the given size.
type item struct {
	seq  int64
	size int
}

func newRing(maxItems, maxBytes int) *Ring[item] {
	return New(maxItems, maxBytes, func(i item) int64 { return i.seq }, func(i item) int { return i.size })
}

func seqs(items []item) []int64 {
	var out []int64
	for _, i := range items {
		out = append(out, i.seq)
	}
	return out
}

func TestAfter(t *testing.T) {
	r := newRing(100, 1000)
	if _, ok := r.After(0, nil, 10); ok {
		t.Error("an empty ring told what follows 0")
	}
	for seq := int64(1); seq <= 5; seq++ {
		r.Push(item{seq, 10})
	}
	for _, tc := range []struct {
		seq   int64
		limit int
		want  []int64
		ok    bool
	}{
		{0, 10, []int64{1, 2, 3, 4, 5}, true},
		{2, 2, []int64{3, 4}, true},
		{5, 10, nil, true}, // nothing yet
		{-1, 10, nil, false},
	} {
		got, ok := r.After(tc.seq, nil, tc.limit)
		if !slices.Equal(seqs(got), tc.want) || ok != tc.ok {
			t.Errorf("After(%d, %d) = %v, %v; want %v, %v", tc.seq, tc.limit, seqs(got), ok, tc.want, tc.ok)
		}
	}
	into := make([]item, 1, 8)
	if got, _ := r.After(3, into, 10); !slices.Equal(seqs(got), []int64{0, 4, 5}) {
		t.Errorf("After(3) into one item: %v, want the item and then 4 and 5", seqs(got))
	}
	r.Reset()
	if _, ok := r.After(5, nil, 10); ok {
		t.Error("a reset ring told what follows its last number")
	}
	if r.bytes != 0 || r.n != 0 {
		t.Errorf("a reset ring holds %d items and %d bytes", r.n, r.bytes)
	}
}

func TestBounds(t *testing.T) {
	r := newRing(4, 1000)
	for seq := int64(1); seq <= 6; seq++ {
		r.Push(item{seq, 30})
	}
	if got, ok := r.After(2, nil, 10); !ok || !slices.Equal(seqs(got), []int64{3, 4, 5, 6}) {
		t.Errorf("after 2: %v %v, want all of 3 to 6", seqs(got), ok)
	}
	if _, ok := r.After(1, nil, 10); ok {
		t.Error("after 1: the ring no longer holds 2, yet says it holds all")
	}
	r.Push(item{7, 950})
	// 6 and 7 fit in the 1000 bytes; 5 and 6 and 7 do not.
	if got, ok := r.After(5, nil, 10); !ok || !slices.Equal(seqs(got), []int64{6, 7}) || r.bytes > 1000 {
		t.Errorf("after an item near the byte bound: %v %v (%d bytes), want 6 and 7", seqs(got), ok, r.bytes)
	}
	if _, ok := r.After(4, nil, 10); ok {
		t.Error("after 4: 5 was let go for the bytes, yet the ring says it holds all")
	}
	r.Push(item{8, 1001})
	if _, ok := r.After(7, nil, 10); ok || r.n != 0 {
		t.Errorf("an item larger than the byte bound was kept, or left %d others", r.n)
	}
	r.Push(item{9, 30})
	r.Push(item{11, 30}) // 10 skipped
	if _, ok := r.After(9, nil, 10); ok {
		t.Error("after a gap the ring still claims what came before it")
	}
	if got, ok := r.After(10, nil, 10); !ok || !slices.Equal(seqs(got), []int64{11}) {
		t.Errorf("after the gap: %v %v, want 11", seqs(got), ok)
	}
}

func TestGrowKeepsOrder(t *testing.T) {
	r := newRing(1000, 64)
	for seq := int64(1); seq <= 100; seq++ {
		r.Push(item{seq, 1}) // the bytes keep 64: the oldest is no longer at the array's start
	}
	r.maxBytes = 1 << 20
	for seq := int64(101); seq <= 300; seq++ {
		r.Push(item{seq, 1}) // the array grows from there
	}
	got, ok := r.After(36, nil, 1000)
	var want []int64
	for seq := int64(37); seq <= 300; seq++ {
		want = append(want, seq)
	}
	if !ok || !slices.Equal(seqs(got), want) {
		t.Errorf("after growing: %v, %v; want 37 to 300 in order", seqs(got), ok)
	}
}
