//go:build linux

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The floor server is what --floor measures against: the bench's own binary, run as
// `taskhub-bench serve`, answering the few requests the bench makes with the least
// work that still delivers every event to every subscriber. It keeps nothing on disk,
// has no filters, no replay, no batching, no coalescing and no metrics: a PATCH
// makes an event, and each subscriber's goroutine writes each event with one write(2)
// as soon as it can. Whatever latency and CPU it shows for a load is the share the
// kernel's loopback TCP and the shared cores take, which no server can undercut by
// much: taskhub's figures are worth reading beside it.

// floorServe runs the floor server until SIGTERM or SIGINT. It takes taskhub
// serve's --addr and ignores the flags it has no use for.
func floorServe(args []string) int {
	fs := flag.NewFlagSet("taskhub-bench serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "host:port to listen on (loopback only)")
	fs.String("db", "", "ignored: the floor server keeps nothing")
	fs.String("log-level", "", "ignored")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkLoopbackURL("http://" + *addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fl := &floor{subs: map[*floorSub]struct{}{}, tasks: map[int64]*floorTask{}}
	srv := &http.Server{Handler: fl.routes(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("taskhub listening on http://%s\n", ln.Addr()) // the line startServer waits for
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = srv.Close()
		fl.closeAll()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// floor is the floor server's state: its tasks, its log's last seq and its streams.
type floor struct {
	mu        sync.Mutex // orders seqs: each event is queued to every subscriber in seq order
	seq       int64
	nextID    int64
	tasks     map[int64]*floorTask
	subs      map[*floorSub]struct{}
	published int64
	dropped   int64
	sent      atomic.Int64
}

// floorTask is what the floor server keeps of a task: its events carry it whole, as
// taskhub's do, so --size pads them alike.
type floorTask struct {
	ID          int64  `json:"id"`
	Version     int64  `json:"version"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// floorSub is one subscriber: a queue and the goroutine that writes it.
type floorSub struct {
	conn  net.Conn
	queue chan []byte
}

func (fl *floor) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/tasks", func(w http.ResponseWriter, r *http.Request) {
		fl.change(w, r, http.StatusCreated, "task_created", 0)
	})
	mux.HandleFunc("PATCH /api/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			http.Error(w, `{"error":{"code":"not_found"}}`, http.StatusNotFound)
			return
		}
		fl.change(w, r, http.StatusOK, "task_updated", id)
	})
	mux.HandleFunc("GET /events/debug", func(w http.ResponseWriter, r *http.Request) {
		fl.mu.Lock()
		d := debugCounters{ConnectedClients: len(fl.subs), EventsPublished: fl.published, LastSeq: fl.seq, SubscribersDropped: fl.dropped}
		fl.mu.Unlock()
		d.EventsSent = fl.sent.Load()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("GET /events/stream", fl.stream)
	return mux
}

// change creates a task (id 0) or updates task id with the request's title and
// description, answers with the task, and publishes its event.
func (fl *floor) change(w http.ResponseWriter, r *http.Request, status int, typ string, id int64) {
	var body struct {
		Title       *string `json:"title"`
		Description *string `json:"description"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, `{"error":{"code":"invalid_argument"}}`, http.StatusBadRequest)
		return
	}
	fl.mu.Lock()
	t := fl.tasks[id]
	switch {
	case id == 0:
		fl.nextID++
		t = &floorTask{ID: fl.nextID}
		fl.tasks[t.ID] = t
	case t == nil:
		fl.mu.Unlock()
		http.Error(w, `{"error":{"code":"not_found"}}`, http.StatusNotFound)
		return
	}
	t.Version++
	if body.Title != nil {
		t.Title = *body.Title
	}
	if body.Description != nil {
		t.Description = *body.Description
	}
	answer := *t
	fl.seq++
	data, _ := json.Marshal(map[string]any{"seq": fl.seq, "type": typ, "task_id": t.ID, "time": time.Now().UTC(), "task": t})
	frame := fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", fl.seq, typ, data)
	for s := range fl.subs {
		select {
		case s.queue <- frame:
		default: // full: the subscriber is dropped, as taskhub would
			fl.dropped++
			delete(fl.subs, s)
			close(s.queue)
		}
	}
	fl.published++
	fl.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer)
}

// stream takes the connection over and writes each event to it with one write.
func (fl *floor) stream(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s := &floorSub{conn: conn, queue: make(chan []byte, 1024)}
	fl.mu.Lock()
	fl.subs[s] = struct{}{}
	fl.mu.Unlock()
	go fl.write(s)
}

// floorHead starts every stream.
const floorHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n: connected\n\n"

// write is the goroutine of one subscriber. It writes the response head, then each
// event queued, the subscriber having been registered before: every event made
// once its client has read the head reaches it, as with taskhub. It ends when its
// queue is closed (the subscriber was dropped, or the server is stopping) or a write
// fails.
func (fl *floor) write(s *floorSub) {
	defer s.conn.Close()
	if _, err := io.WriteString(s.conn, floorHead); err != nil {
		fl.drop(s)
		return
	}
	for frame := range s.queue {
		if _, err := s.conn.Write(frame); err != nil {
			fl.drop(s)
			return
		}
		fl.sent.Add(1)
	}
}

// drop ends s, unless it has already been.
func (fl *floor) drop(s *floorSub) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if _, ok := fl.subs[s]; ok {
		delete(fl.subs, s)
		close(s.queue)
	}
}

// closeAll ends every subscriber.
func (fl *floor) closeAll() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for s := range fl.subs {
		delete(fl.subs, s)
		close(s.queue)
	}
}
