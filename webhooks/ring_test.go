package webhooks

import (
	"fmt"
	"strings"
	"testing"

	"taskhub/tasks"
)

func records(from, to int64, size int) []*tasks.Record {
	var list []*tasks.Record
	for seq := from; seq <= to; seq++ {
		list = append(list, &tasks.Record{Seq: seq, Data: []byte(strings.Repeat("x", size))})
	}
	return list
}

func seqs(list []*tasks.Record) string {
	var b strings.Builder
	for _, r := range list {
		fmt.Fprintf(&b, "%d ", r.Seq)
	}
	return strings.TrimSpace(b.String())
}

func TestRing(t *testing.T) {
	g := newRing()
	if _, ok := g.after(0, 10); ok {
		t.Error("an empty ring told what follows seq 0")
	}
	for _, r := range records(1, 5, 10) {
		g.add(r)
	}
	for _, tc := range []struct {
		seq   int64
		limit int
		want  string
		ok    bool
	}{
		{0, 10, "1 2 3 4 5", true},
		{2, 2, "3 4", true},
		{5, 10, "", true}, // nothing yet
		{-1, 10, "", false},
	} {
		got, ok := g.after(tc.seq, tc.limit)
		if seqs(got) != tc.want || ok != tc.ok {
			t.Errorf("after(%d, %d) = [%s], %v; want [%s], %v", tc.seq, tc.limit, seqs(got), ok, tc.want, tc.ok)
		}
	}
	g.add(records(9, 9, 10)[0]) // a gap: the ring starts again
	if got, ok := g.after(5, 10); ok {
		t.Errorf("after a gap, after(5) = [%s], true; want not known", seqs(got))
	}
	for _, r := range records(10, ringEvents+20, 1) {
		g.add(r)
	}
	if _, ok := g.after(19, 1); ok {
		t.Error("the ring kept more than ringEvents")
	}
	if got, ok := g.after(20, 1); !ok || seqs(got) != "21" {
		t.Errorf("after(20) = [%s], %v; want [21] from the oldest kept", seqs(got), ok)
	}
	g.clear()
	if _, ok := g.after(ringEvents+20, 1); ok {
		t.Error("a cleared ring told what follows its last seq")
	}
}

func TestRingBytes(t *testing.T) {
	g := newRing()
	size := ringBytes / 4
	for _, r := range records(1, 6, size) {
		g.add(r)
	}
	if _, ok := g.after(1, 1); ok {
		t.Error("the ring kept more than ringBytes")
	}
	if got, ok := g.after(2, 10); !ok || seqs(got) != "3 4 5 6" {
		t.Errorf("after(2) = [%s], %v; want the 4 newest", seqs(got), ok)
	}
}

func TestPages(t *testing.T) {
	var p pages
	p.add(10, records(11, 20, 1))
	p.add(30, records(32, 35, 1)) // a gap in the log: 31 was pruned, say
	for _, tc := range []struct {
		seq   int64
		limit int
		want  string
		ok    bool
	}{
		{10, 100, "11 12 13 14 15 16 17 18 19 20", true},
		{15, 3, "16 17 18", true},
		{30, 100, "32 33 34 35", true},
		{31, 2, "32 33", true},
		{20, 100, "", false}, // past the page: the log may have more by now
		{35, 100, "", false},
		{9, 100, "", false},
		{25, 100, "", false},
	} {
		got, ok := p.after(tc.seq, tc.limit)
		if seqs(got) != tc.want || ok != tc.ok {
			t.Errorf("after(%d, %d) = [%s], %v; want [%s], %v", tc.seq, tc.limit, seqs(got), ok, tc.want, tc.ok)
		}
	}
	for i := range int64(keptPages) {
		p.add(100+10*i, records(101+10*i, 110+10*i, 1))
	}
	if _, ok := p.after(10, 1); ok {
		t.Errorf("kept more than %d pages", keptPages)
	}
	if _, ok := p.after(100, 1); !ok {
		t.Error("the oldest of the last pages was dropped")
	}
	p.add(200, records(201, 202, keptBytes/2))
	p.add(300, records(301, 302, keptBytes/2))
	if _, ok := p.after(200, 1); ok {
		t.Error("kept more than keptBytes")
	}
	if _, ok := p.after(300, 1); !ok {
		t.Error("the page read last was dropped")
	}
	p.clear()
	if _, ok := p.after(300, 1); ok {
		t.Error("a cleared page was read")
	}
}

func TestListenKeepsNothingWithoutWorkers(t *testing.T) {
	e, err := NewEngine(EngineConfig{Store: &memStore{}, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	e.Listen(&tasks.Record{Seq: 1, Type: tasks.EventTaskCreated})
	if _, ok := e.tail.after(0, 1); ok {
		t.Error("the engine kept an event while it delivered no endpoint")
	}
	e.workers[1] = &worker{wake: make(chan struct{}, 1)}
	e.Listen(&tasks.Record{Seq: 2, Type: tasks.EventTaskCreated})
	if got, ok := e.tail.after(1, 1); !ok || seqs(got) != "2" {
		t.Errorf("with a worker, after(1) = [%s], %v; want [2]", seqs(got), ok)
	}
}
