package batch

import (
	"slices"
	"testing"
)

func TestGather(t *testing.T) {
	ops := make(chan int, 10)
	for i := range 5 {
		ops <- i + 1
	}
	if got := Gather(ops, 0, nil, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("up to 3: %v, want [0 1 2]", got)
	}
	if got := Gather(ops, 9, make([]int, 0, 8), 8); !slices.Equal(got, []int{9, 3, 4, 5}) {
		t.Errorf("what waits: %v, want [9 3 4 5]", got)
	}
	ops <- 6
	close(ops)
	if got := Gather(ops, 7, nil, 8); !slices.Equal(got, []int{7, 6}) {
		t.Errorf("after close: %v, want [7 6]", got)
	}
}
