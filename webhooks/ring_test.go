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
	if _, ok := e.tail.After(0, nil, 1); ok {
		t.Error("the engine kept an event while it delivered no endpoint")
	}
	e.workers[1] = &worker{wake: make(chan struct{}, 1)}
	e.Listen(&tasks.Record{Seq: 2, Type: tasks.EventTaskCreated})
	if got, ok := e.tail.After(1, nil, 1); !ok || seqs(got) != "2" {
		t.Errorf("with a worker, after(1) = [%s], %v; want [2]", seqs(got), ok)
	}
}

func TestTailBounds(t *testing.T) {
	g := newTail()
	for _, r := range records(1, ringEvents+1, 1) {
		g.Push(r)
	}
	if _, ok := g.After(0, nil, 1); ok {
		t.Error("the tail kept more than ringEvents")
	}
	if got, ok := g.After(1, nil, 1); !ok || seqs(got) != "2" {
		t.Errorf("After(1) = [%s], %v; want [2], the oldest kept", seqs(got), ok)
	}
	g.Reset()
	for _, r := range records(1, 5, ringBytes/4) {
		g.Push(r)
	}
	if _, ok := g.After(0, nil, 10); ok {
		t.Error("the tail kept more than ringBytes of events' data")
	}
	if got, ok := g.After(1, nil, 10); !ok || seqs(got) != "2 3 4 5" {
		t.Errorf("After(1) = [%s], %v; want the 4 newest", seqs(got), ok)
	}
}
