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

func TestMore(t *testing.T) {
	ops := make(chan int, 10)
	if got := More(ops, []int{1}, 4); !slices.Equal(got, []int{1}) {
		t.Errorf("nothing waiting: %v, want [1]", got)
	}
	for i := range 5 {
		ops <- i + 2
	}
	if got := More(ops, []int{1}, 4); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("up to 4: %v, want [1 2 3 4]", got)
	}
	if got := More(ops, make([]int, 4), 4); len(got) != 4 || len(ops) != 2 {
		t.Errorf("full already: took %d, left %d; want none taken, 2 left", len(got)-4, len(ops))
	}
}
