package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
)

// TestConcurrentConditionalPatch sends 8 PATCHes with the same If-Match at once, round
// after round: exactly one may win, the seven others get 412 and change nothing.
func TestConcurrentConditionalPatch(t *testing.T) {
	const writers, rounds = 8, 5
	s := newServer(t)
	task := s.createTitled(t, "contended")

	for round := range rounds {
		cur := s.get(t, task.ID)
		seq := s.lastSeq(t)
		type result struct {
			writer int
			status int
			body   []byte
			err    error
		}
		results := make(chan result, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				body := fmt.Sprintf(`{"title": "round %d writer %d"}`, round, w)
				<-start // all at once
				status, _, b, err := s.send("PATCH", taskPath(task.ID), body, patchCT(etag(cur.Version)))
				results <- result{w, status, b, err}
			})
		}
		close(start)
		wg.Wait()
		close(results)

		winner := -1
		var statuses []int
		for r := range results {
			if r.err != nil {
				t.Fatalf("round %d writer %d: %v", round, r.writer, r.err)
			}
			statuses = append(statuses, r.status)
			switch r.status {
			case http.StatusOK:
				winner = r.writer
			case http.StatusPreconditionFailed:
				if code := decode[apiError](t, r.body).Error.Code; code != "precondition_failed" {
					t.Errorf("round %d writer %d: 412 with code %q", round, r.writer, code)
				}
			}
		}
		slices.Sort(statuses)
		want := append([]int{http.StatusOK}, slices.Repeat([]int{http.StatusPreconditionFailed}, writers-1)...)
		if !slices.Equal(statuses, want) {
			t.Fatalf("round %d: statuses %v, want one 200 and %d 412", round, statuses, writers-1)
		}
		got := s.get(t, task.ID)
		if wantTitle := fmt.Sprintf("round %d writer %d", round, winner); got.Title != wantTitle || got.Version != cur.Version+1 {
			t.Errorf("round %d: task is %q at version %d, want %q at %d", round, got.Title, got.Version, wantTitle, cur.Version+1)
		}
		if evs := s.eventsAfter(t, seq); len(evs) != 1 {
			t.Errorf("round %d: %d new events, want 1", round, len(evs))
		}
	}
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// TestConcurrentCreates checks that tasks created at once get distinct ids, and that
// their ids, like the seqs of their events, follow commit order.
func TestConcurrentCreates(t *testing.T) {
	const writers = 8
	s := newServer(t)
	start := make(chan struct{})
	created := make(chan int64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			status, _, b, err := s.send("POST", "/api/tasks", fmt.Sprintf(`{"title": "writer %d"}`, w), jsonCT)
			if err != nil || status != http.StatusCreated {
				t.Errorf("writer %d: status %d, err %v, body %s", w, status, err, truncate(b))
				return
			}
			var task apiTask
			if err := json.Unmarshal(b, &task); err != nil {
				t.Errorf("writer %d: %v", w, err)
				return
			}
			created <- task.ID
		})
	}
	close(start)
	wg.Wait()
	close(created)
	var got []int64
	for id := range created {
		got = append(got, id)
	}
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != writers {
		t.Fatalf("ids = %v, want %d distinct", got, writers)
	}
	var byEvent []int64
	for _, e := range s.eventsAfter(t, 0) {
		byEvent = append(byEvent, e.TaskID)
	}
	if !slices.Equal(byEvent, got) {
		t.Errorf("task ids in event order = %v, want ascending %v", byEvent, got)
	}
}

// TestPagingWhileCreating pages through the list while another goroutine creates
// tasks: the pages never skip a task nor show one twice, whatever the interleaving.
func TestPagingWhileCreating(t *testing.T) {
	s := newServer(t)
	for i := range 5 {
		s.createTitled(t, fmt.Sprint("before ", i))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 20 {
			if status, _, b, err := s.send("POST", "/api/tasks", fmt.Sprintf(`{"title": "during %d"}`, i), jsonCT); err != nil || status != http.StatusCreated {
				t.Errorf("create %d: status %d, err %v, body %s", i, status, err, truncate(b))
				return
			}
		}
	})
	var paged []int64
	query := "limit=2"
	for {
		p := s.list(t, query)
		paged = append(paged, ids(p.Tasks)...)
		if p.NextCursor == "" {
			break
		}
		query = "limit=2&cursor=" + url.QueryEscape(p.NextCursor)
	}
	wg.Wait()

	// No task is deleted, so the pages must be exactly the tasks up to the last one seen.
	all := ids(s.list(t, "limit=500").Tasks)
	if len(all) != 25 {
		t.Fatalf("%d tasks, want 25", len(all))
	}
	if len(paged) < 5 || !slices.Equal(paged, all[:len(paged)]) {
		t.Errorf("paged ids = %v, want a prefix of %v", paged, all)
	}
}
