package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"taskhub/broadcaster"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

const within = 5 * time.Second // how long a test waits for something that should come at once

func TestStreamPreamble(t *testing.T) {
	url, _ := startServer(t)
	resp, err := http.Get(url + "/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// The preamble arrives at once, before any event exists.
	got := make([]byte, len("retry: 3000\n: connected "))
	if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != "retry: 3000\n: connected " {
		t.Fatalf("stream starts %q, %v", got, err)
	}
	rest, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || len(strings.TrimSpace(rest)) == 0 {
		t.Fatalf("subscriber id line %q, %v", rest, err)
	}
}

// TestStreamFilters opens a stream per filter and makes the same changes for each: the
// stream must carry exactly the changes the filter matches, in order, up to the last.
// An update matches on the values from before it too, so a subscriber sees a task go.
func TestStreamFilters(t *testing.T) {
	url, _ := startServer(t)
	for _, tc := range []struct {
		query string
		want  []string // the steps below whose events must arrive
	}{
		{"", []string{"create a", "create b", "a in_progress", "b to alice", "delete b", "create c", "c done", "c to p2", "a done"}},
		{"types=task_updated,task_deleted", []string{"a in_progress", "b to alice", "delete b", "c done", "c to p2", "a done"}},
		{"task_id={a}", []string{"a in_progress", "a done"}}, // opened after a exists, from there on
		{"assignee=bob", []string{"create b", "b to alice", "create c", "c done", "c to p2"}},
		{"assignee=alice&project=p1", []string{"create a", "a in_progress", "a done"}},
		{"project=p2", []string{"create b", "b to alice", "delete b", "c to p2"}},
		{"status=in_progress", []string{"a in_progress", "a done"}},
		{"label=x", []string{"create a", "a in_progress", "a done"}},
		{"label=y,z", []string{"create b", "b to alice", "delete b", "create c", "c done", "c to p2"}},
		{"source=rest_api&types=task_created", []string{"create a", "create b", "create c"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			ids := map[string]int64{} // each case makes its own tasks
			steps := []struct {
				name string
				do   func()
			}{
				{"create a", func() {
					ids["a"] = createTask(t, url, `{"title":"a","assignee":"alice","project":"p1","labels":["x"]}`)
				}},
				{"create b", func() {
					ids["b"] = createTask(t, url, `{"title":"b","assignee":"bob","project":"p2","labels":["y"]}`)
				}},
				{"a in_progress", func() { patchTask(t, url, ids["a"], `{"status":"in_progress"}`) }},
				{"b to alice", func() { patchTask(t, url, ids["b"], `{"assignee":"alice"}`) }},
				{"delete b", func() {
					call(t, http.MethodDelete, fmt.Sprintf("%s/api/tasks/%d", url, ids["b"]), "", http.StatusNoContent, nil)
				}},
				{"create c", func() { ids["c"] = createTask(t, url, `{"title":"c","assignee":"bob","labels":["z"]}`) }},
				{"c done", func() { patchTask(t, url, ids["c"], `{"status":"done"}`) }},
				{"c to p2", func() { patchTask(t, url, ids["c"], `{"project":"p2"}`) }},
				{"a done", func() { patchTask(t, url, ids["a"], `{"status":"done"}`) }},
			}
			seqOf := map[string]int64{}
			query, rest := tc.query, steps
			if strings.Contains(query, "{a}") {
				steps[0].do()
				query, rest = strings.ReplaceAll(query, "{a}", strconv.FormatInt(ids["a"], 10)), steps[1:]
			}
			// Without Last-Event-ID a stream may also carry an event committed just
			// before it opened; from a given id on, it carries exactly what follows.
			from := http.Header{"Last-Event-ID": {strconv.FormatInt(lastEventSeq(t, url), 10)}}
			s := openStream(t, url+"/events/stream?"+query, from)
			for _, st := range rest {
				st.do()
				seqOf[st.name] = lastEventSeq(t, url)
			}
			var want, got []int64
			for _, name := range tc.want {
				want = append(want, seqOf[name])
			}
			for len(got) < len(want) && (len(got) == 0 || got[len(got)-1] < want[len(want)-1]) {
				for _, e := range s.nextEvent(t, within).events(t) {
					got = append(got, e.Seq)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got seqs %v, want %v (steps at %v)", got, want, seqOf)
			}
		})
	}
}

func TestStreamBadRequests(t *testing.T) {
	url, _ := startServer(t)
	for _, tc := range []struct{ query, header, field string }{
		{"types=task_moved", "", "types"},
		{"status=doing", "", "status"},
		{"source=email", "", "source"},
		{"task_id=abc", "", "task_id"},
		{"task_id=0", "", "task_id"},
		{"batch=fast", "", "batch"},
		{"batch=11s", "", "batch"},
		{"batch=-1s", "", "batch"},
		{"last_event_id=x", "", "last_event_id"},
		{"", "x", "Last-Event-ID"},
		{"colour=red", "", "colour"},
		{"batch=1s&batch=2s", "", "batch"},
	} {
		t.Run(tc.query+tc.header, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url+"/events/stream?"+tc.query, nil)
			if tc.header != "" {
				req.Header.Set("Last-Event-ID", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			want := `"code":"invalid_argument"`
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), want) ||
				!strings.Contains(string(b), fmt.Sprintf(`"field":%q`, tc.field)) {
				t.Errorf("got %d %s, want 400 invalid_argument on %s", resp.StatusCode, b, tc.field)
			}
		})
	}
}

// TestStreamRefusesBody: a body the stream would never read is refused up front.
func TestStreamRefusesBody(t *testing.T) {
	url, _ := startServer(t)
	req, _ := http.NewRequest(http.MethodGet, url+"/events/stream", strings.NewReader("unexpected"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "no request body") {
		t.Errorf("got %d %s, want 400", resp.StatusCode, b)
	}
}

func TestStreamBatching(t *testing.T) {
	url, _ := startServer(t)
	s := openStream(t, url+"/events/stream?batch=300ms", nil)
	const n = 30
	var ids []int64
	for range n {
		ids = append(ids, createTask(t, url, `{"title":"burst"}`))
	}
	var got []int64
	messages := 0
	for len(got) < n {
		m := s.nextEvent(t, within)
		if m.Event != "batch_update" {
			t.Fatalf("event %q, want batch_update", m.Event)
		}
		events := m.events(t)
		if m.ID != strconv.FormatInt(events[len(events)-1].Seq, 10) {
			t.Errorf("batch id %s, want its last seq %d", m.ID, events[len(events)-1].Seq)
		}
		for _, e := range events {
			got = append(got, e.TaskID)
		}
		messages++
	}
	if !slices.Equal(got, ids) {
		t.Errorf("batched task ids %v, want %v", got, ids)
	}
	if messages >= n {
		t.Errorf("%d events came in %d batches: nothing was coalesced", n, messages)
	}
}

func TestStreamKeepalive(t *testing.T) {
	url, _ := startServer(t, "--keepalive", "100ms")
	s := openStream(t, url+"/events/stream", nil)
	for range 3 {
		if m := s.next(t, within); m.Comment != "keepalive" && !strings.HasPrefix(m.Comment, "connected ") {
			t.Fatalf("got %+v, want keepalive comments on a silent stream", m)
		}
	}
}

// TestReplayNoGapNoDuplicate has 4 writers change tasks while a subscriber keeps
// dropping its connection and reconnecting with the last id it got: in the end it must
// have every event exactly once, in order.
func TestReplayNoGapNoDuplicate(t *testing.T) {
	url, _ := startServer(t)
	var ids []int64
	for range 4 {
		ids = append(ids, createTask(t, url, `{"title":"contended"}`))
	}
	first := lastEventSeq(t, url)
	const each = 60
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range each {
				patchTask(t, url, ids[(w+i)%4], fmt.Sprintf(`{"description":"w%d-%d"}`, w, i))
			}
		})
	}
	var got []int64
	lastID := first
	end := first + 4*each
	for reconnects := 0; lastID < end; reconnects++ {
		s := openStream(t, url+"/events/stream", http.Header{"Last-Event-ID": {strconv.FormatInt(lastID, 10)}})
		for range 1 + reconnects%7 { // a few events, then drop the connection
			m := s.nextEvent(t, within)
			got = append(got, m.events(t)[0].Seq)
			lastID, _ = strconv.ParseInt(m.ID, 10, 64)
			if lastID == end {
				break
			}
		}
		s.close()
	}
	wg.Wait()
	for i, seq := range got {
		if seq != first+1+int64(i) {
			t.Fatalf("event %d has seq %d, want %d: a gap or a duplicate (got %v)", i, seq, first+1+int64(i), got)
		}
	}
}

// TestResetAfterTruncation asks for events that retention has pruned: the stream says
// so with a reset event, then carries on live. A client that missed nothing gets none.
func TestResetAfterTruncation(t *testing.T) {
	url, _ := startServer(t, "--event-retention", "200ms")
	for range 3 {
		createTask(t, url, `{"title":"soon gone"}`)
	}
	deadline := time.Now().Add(within)
	for {
		var page struct{ Events []event }
		call(t, http.MethodGet, url+"/api/events?after=0", "", http.StatusOK, &page)
		if len(page.Events) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not pruned within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	truncated := openStream(t, url+"/events/stream", http.Header{"Last-Event-ID": {"1"}})
	current := openStream(t, url+"/events/stream", http.Header{"Last-Event-ID": {"3"}})
	ahead := openStream(t, url+"/events/stream", http.Header{"Last-Event-ID": {"99"}}) // from another database
	for s, reason := range map[*sseStream]string{truncated: "history_truncated", ahead: "unknown_event_id"} {
		if m := s.nextEvent(t, within); m.Event != "reset" || m.ID != "3" || m.Data != `{"reason":"`+reason+`"}` {
			t.Fatalf("first event %+v, want reset %s with id 3", m, reason)
		}
	}
	// Resuming from the reset's id is not reset again.
	resumed := openStream(t, url+"/events/stream", http.Header{"Last-Event-ID": {"3"}})
	createTask(t, url, `{"title":"live"}`)
	for _, s := range []*sseStream{truncated, current, ahead, resumed} {
		if m := s.nextEvent(t, within); m.Event != "task_created" || m.ID != "4" {
			t.Errorf("got %+v, want the live task_created 4", m)
		}
	}
}

func lastEventSeq(t testing.TB, url string) int64 {
	var page struct {
		LastSeq int64 `json:"last_seq"`
	}
	call(t, http.MethodGet, url+"/api/events?after=9223372036854775807", "", http.StatusOK, &page)
	return page.LastSeq
}

func debugSnapshot(t *testing.T, url string) broadcaster.Snapshot {
	t.Helper()
	var snap broadcaster.Snapshot
	call(t, http.MethodGet, url+"/events/debug", "", http.StatusOK, &snap)
	return snap
}

// waitFor polls the debug snapshot until ok accepts it: the hub's state is only seen
// from outside through it.
func waitFor(t *testing.T, url, what string, ok func(broadcaster.Snapshot) bool) broadcaster.Snapshot {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		snap := debugSnapshot(t, url)
		if ok(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			snap.Subscribers = nil
			t.Fatalf("%s: not within %s; debug counters: %+v", what, within, snap)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowSubscriberDropped has one subscriber that never reads: the others get every
// event without waiting for it, and it is dropped and counted.
func TestSlowSubscriberDropped(t *testing.T) {
	url, _ := startServer(t, "--stream-queue", "8")
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: stalled\r\n\r\n") // and never read
	fast := openStream(t, url+"/events/stream", nil)
	waitFor(t, url, "two subscribers", func(s broadcaster.Snapshot) bool { return s.ConnectedClients == 2 })

	// Big events fill the stalled connection's socket buffers, then its queue: write
	// them until the hub gives up on it.
	big := strings.Repeat("x", 60<<10)
	id := createTask(t, url, `{"title":"big"}`)
	n := 0
	for ; n < 400 && debugSnapshot(t, url).SubscribersDropped == 0; n++ {
		patchTask(t, url, id, fmt.Sprintf(`{"description":"%d %s"}`, n, big))
	}
	for range 1 + n { // the create, then every update
		fast.nextEvent(t, within)
	}
	snap := debugSnapshot(t, url)
	if snap.SubscribersDropped != 1 || snap.ConnectedClients != 1 || snap.Subscribers[0].UserAgent == "stalled" {
		t.Errorf("after %d big events: %+v", n, snap)
	}
}

// TestBatchWindowOverQueueCap sends a batched subscriber more events within one
// window than its queue holds: the writer must take them out of the queue in time, so
// it is not dropped, and they all arrive, in order.
func TestBatchWindowOverQueueCap(t *testing.T) {
	url, _ := startServer(t, "--stream-queue", "8")
	s := openStream(t, url+"/events/stream?batch=2s", nil)
	waitFor(t, url, "the subscriber", func(s broadcaster.Snapshot) bool { return s.ConnectedClients == 1 })
	const n = 30
	var ids []int64
	for range n {
		ids = append(ids, createTask(t, url, `{"title":"burst"}`))
	}
	var got []int64
	for len(got) < n {
		for _, e := range s.nextEvent(t, within).events(t) {
			got = append(got, e.TaskID)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("task ids %v, want %v", got, ids)
	}
	if snap := debugSnapshot(t, url); snap.SubscribersDropped != 0 || snap.ConnectedClients != 1 {
		t.Errorf("subscribers dropped %d, connected %d: want 0 and 1", snap.SubscribersDropped, snap.ConnectedClients)
	}
}

func TestDebugCounters(t *testing.T) {
	url, _ := startServer(t)
	all := openStream(t, url+"/events/stream", http.Header{"User-Agent": {"all"}})
	updates := openStream(t, url+"/events/stream?types=task_updated&batch=50ms", http.Header{"User-Agent": {"updates"}})
	waitFor(t, url, "two subscribers", func(s broadcaster.Snapshot) bool { return s.ConnectedClients == 2 })
	id := createTask(t, url, `{"title":"counted"}`)
	patchTask(t, url, id, `{"status":"done"}`)
	patchTask(t, url, id, `{"status":"review"}`)
	for range 3 {
		all.nextEvent(t, within)
	}
	seen := 0
	for seen < 2 {
		seen += len(updates.nextEvent(t, within).events(t))
	}
	snap := waitFor(t, url, "counters settled", func(s broadcaster.Snapshot) bool { return s.EventsSent == 5 })
	if snap.EventsPublished != 3 || snap.LastSeq != 3 || snap.SubscribersDropped != 0 || snap.LastEventTime == nil ||
		snap.BatchesSent < 1 || snap.BatchesSent > 2 || snap.UptimeSeconds <= 0 {
		t.Errorf("snapshot %+v", snap)
	}
	bySub := map[string]broadcaster.SubscriberSnapshot{}
	for _, s := range snap.Subscribers {
		bySub[s.UserAgent] = s
	}
	if s := bySub["all"]; s.EventsSent != 3 || s.LastEventID != 3 || s.QueueCap != broadcaster.DefaultQueueCap || s.ID == "" {
		t.Errorf("subscriber all: %+v", s)
	}
	if s := bySub["updates"]; s.EventsSent != 2 || s.LastEventID != 3 || !slices.Equal(s.Filters.Types, []string{"task_updated"}) || s.Batch != "50ms" {
		t.Errorf("subscriber updates: %+v", s)
	}
}

// TestStreamGoroutinesReturn opens and closes many streams: the server's goroutines
// must come back to where they were. The server notices a closed stream at its next
// write, so keepalives come often here.
func TestStreamGoroutinesReturn(t *testing.T) {
	url, _ := startServer(t, "--keepalive", "100ms")
	createTask(t, url, `{"title":"warm up"}`)
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	var streams []*sseStream
	for range 50 {
		streams = append(streams, openStream(t, url+"/events/stream?batch=10ms", nil))
	}
	createTask(t, url, `{"title":"seen by all"}`)
	for _, s := range streams {
		s.nextEvent(t, within)
		s.close()
	}
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, url, "no subscribers", func(s broadcaster.Snapshot) bool { return s.ConnectedClients == 0 })
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(within)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before the streams:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClosedStreamNoticed: a client that closes its stream is let go within a quarter
// of the keepalive interval, without waiting for a write to fail.
func TestClosedStreamNoticed(t *testing.T) {
	url, _ := startServer(t, "--keepalive", "8s")
	s := openStream(t, url+"/events/stream", nil)
	waitFor(t, url, "one subscriber", func(s broadcaster.Snapshot) bool { return s.ConnectedClients == 1 })
	s.close()
	start := time.Now()
	waitFor(t, url, "the closed stream let go", func(s broadcaster.Snapshot) bool { return s.ConnectedClients == 0 })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("noticed after %s, want within about 2s (a quarter of the keepalive)", d)
	}
}

// TestCrossProcessDelivery has another process write to the server's database file:
// its event must reach the server's subscribers within a second.
func TestCrossProcessDelivery(t *testing.T) {
	url, db := startServer(t)
	s := openStream(t, url+"/events/stream", nil)
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUN_AS_WRITER="+db)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writer process: %v\n%s", err, out)
	}
	written := time.Now()
	m := s.nextEvent(t, within)
	if e := m.events(t)[0]; e.Type != "task_created" || e.Source != "system" {
		t.Errorf("got %+v", e)
	}
	// Well under the tailer's 1 s poll: the file watch must have woken it.
	if late := time.Since(written); late > 500*time.Millisecond {
		t.Errorf("delivered %s after the other process wrote (%s after it started)", late, time.Since(start))
	}
}

// writeAsOtherProcess is the body of the writer process of TestCrossProcessDelivery.
func writeAsOtherProcess(path string) error {
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = tasks.NewService(db).Create(context.Background(), tasks.Update{Title: tasks.Value("from another process")})
	return err
}

func TestMetrics(t *testing.T) {
	url, _ := startServer(t)
	s := openStream(t, url+"/events/stream", nil)
	createTask(t, url, `{"title":"measured"}`)
	s.nextEvent(t, within)
	// The counters move after the write the client has just read (the published one
	// after the event is handed to subscribers): wait for both.
	waitFor(t, url, "the event counted", func(s broadcaster.Snapshot) bool { return s.EventsSent == 1 && s.EventsPublished == 1 })
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	values := map[string]string{}
	for line := range strings.Lines(string(body)) {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(name, "#") {
			values[name] = value
		}
	}
	for name, want := range map[string]string{
		"taskhub_subscribers": "1", "taskhub_events_published_total": "1", "taskhub_events_sent_total": "1",
		"taskhub_batches_sent_total": "0", "taskhub_subscribers_dropped_total": "0",
		"taskhub_publish_to_flush_seconds_count": "1",
	} {
		if got := values[name]; got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	if values["go_goroutines"] == "" || values["process_resident_memory_bytes"] == "" {
		t.Error("no Go runtime or process metrics")
	}
}

// TestDashboardRoutes: the dashboard answers at /, while unknown paths of the API keep
// the API's JSON errors.
func TestDashboardRoutes(t *testing.T) {
	url, _ := startServer(t)
	for _, tc := range []struct {
		path, contentType string
		status            int
	}{
		{"/", "text/html", http.StatusOK},
		{"/api/nope", "application/json", http.StatusNotFound},
		{"/events/nope", "application/json", http.StatusNotFound},
		{"/.well-known/oauth-authorization-server", "application/json", http.StatusNotFound},
		{"//api/tasks", "application/json", http.StatusNotFound},
		{"/API/tasks", "application/json", http.StatusNotFound},
		{"/api", "application/json", http.StatusNotFound},
		{"/Events/stream", "application/json", http.StatusNotFound},
		{"/nope", "application/json", http.StatusNotFound}, // an unknown path: JSON, whatever it looks like
		{"/apiary", "application/json", http.StatusNotFound},
	} {
		resp, err := http.Get(url + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType)
		}
	}
}

// TestLoopbackHostOnly: without tokens, the server answers only requests that name a
// loopback host, so a web page that rebinds its own name to 127.0.0.1 gets nothing.
func TestLoopbackHostOnly(t *testing.T) {
	url, _ := startServer(t)
	port := url[strings.LastIndex(url, ":")+1:]
	for host, want := range map[string]int{
		"127.0.0.1:" + port: http.StatusCreated, "localhost:" + port: http.StatusCreated,
		"evil.example:" + port: http.StatusForbidden, "evil.example": http.StatusForbidden,
	} {
		req, _ := http.NewRequest(http.MethodPost, url+"/api/tasks", strings.NewReader(`{"title":"t"}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
