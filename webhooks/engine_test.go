package webhooks_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
	"taskhub/webhooks"

	svix "github.com/svix/svix-webhooks/go"
)

// harness is a store with the Service, a tailer and an Engine running on it, as
// taskhub serve runs them, with private targets allowed (the receivers are on
// loopback).
type harness struct {
	db     *sqlite.DB
	tasks  *tasks.Service
	hooks  *webhooks.Service
	client *http.Client
}

// openDB opens a database in a new file of t's, closed when t ends, after the
// cleanups registered later (such as an engine's stop).
func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "taskhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := openDB(t)
	h := &harness{db: db, tasks: tasks.NewService(db), client: webhooks.NewClient(true),
		hooks: webhooks.NewService(webhooks.Config{Store: db, Vocabulary: api.StreamVocabulary(), AllowPrivate: true})}
	ctx, cancel := context.WithCancel(context.Background())
	tailer, err := tasks.NewTailer(ctx, db, tasks.TailerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := webhooks.NewEngine(webhooks.EngineConfig{Store: db, Client: h.client, Node: "test", LeaseTTL: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tailer.Listen(engine.Listen)
	var wg sync.WaitGroup
	wg.Go(func() { tailer.Run(ctx) })
	wg.Go(func() { engine.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

// message is a request a receiver got.
type message struct {
	id, signature string
	body          []byte
	header        http.Header
}

// receiver is an endpoint on loopback that checks every request's signature with
// svix's verifier, not TaskHub's signer, and answers as answer says (nil: 204).
type receiver struct {
	*httptest.Server
	t      *testing.T
	mu     sync.Mutex
	secret string
	got    []message
	more   chan struct{}
	answer func(n int, w http.ResponseWriter) bool // n counts requests from 1; true: answered
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, more: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	wh, err := svix.NewWebhook(r.secret)
	if err == nil {
		err = wh.Verify(body, req.Header)
	}
	if err != nil {
		r.t.Errorf("request %s: the signature does not verify: %v", req.Header.Get("webhook-id"), err)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" || req.Method != http.MethodPost {
		r.t.Errorf("%s with Content-Type %q", req.Method, ct)
	}
	r.got = append(r.got, message{req.Header.Get("webhook-id"), req.Header.Get("webhook-signature"), body, req.Header})
	n, answer := len(r.got), r.answer
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
	if answer == nil || !answer(n, w) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (r *receiver) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.got...)
}

// waitFor waits until the receiver has got n requests.
func (r *receiver) waitFor(n int, within time.Duration) []message {
	r.t.Helper()
	deadline := time.After(within)
	for {
		if got := r.messages(); len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			r.t.Fatalf("the receiver got %d requests within %s, want %d", len(r.messages()), within, n)
		}
	}
}

func (h *harness) create(t *testing.T, r *receiver, body string) *webhooks.Endpoint {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	req := webhooks.CreateRequest{URL: r.URL + "/hook", Secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	r.mu.Lock()
	r.secret = req.Secret // before the endpoint exists: its first request may come at once
	r.mu.Unlock()
	if body != "" {
		req.Filters.Projects = []string{body}
	}
	e, err := h.hooks.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkLog checks that msgs are the log's events from seq from on, in order, each
// once, its body byte for byte, with its webhook-id.
func (h *harness) checkLog(t *testing.T, msgs []message, from int64, match func(tasks.Record) bool) {
	t.Helper()
	ctx := context.Background()
	logID, err := h.db.LogID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	records, err := h.db.Events(ctx, tasks.EventQuery{After: from - 1, Limit: tasks.MaxEventsLimit})
	if err != nil {
		t.Fatal(err)
	}
	var want []tasks.Record
	for _, r := range records {
		if match == nil || match(r) {
			want = append(want, r)
		}
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d requests, want %d", len(msgs), len(want))
	}
	for i, r := range want {
		if msgs[i].id != webhooks.MessageID(logID, r.Seq) || string(msgs[i].body) != string(r.Data) {
			t.Fatalf("request %d: %s %s, want event %d: %s", i, msgs[i].id, msgs[i].body, r.Seq, r.Data)
		}
	}
}

func TestDeliverInOrder(t *testing.T) {
	h := newHarness(t)
	ctx := tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: "alice"})
	if _, err := h.tasks.Create(ctx, tasks.Update{Title: tasks.Value("before")}); err != nil {
		t.Fatal(err)
	}
	all, site := newReceiver(t), newReceiver(t)
	e := h.create(t, all, "")
	h.create(t, site, "site")
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			project := "other"
			if i%4 == 0 {
				project = "site"
			}
			if _, err := h.tasks.Create(ctx, tasks.Update{Title: tasks.Value(fmt.Sprint("task ", i)), Project: tasks.Value(project)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The first endpoint gets every event from its webhook_created on: both creates of
	// endpoints and the tasks'.
	h.checkLog(t, all.waitFor(n+2, 10*time.Second), e.State.Cursor+1, nil)
	h.checkLog(t, site.waitFor(n/4, 10*time.Second), e.State.Cursor+1, func(r tasks.Record) bool {
		return len(r.Match.Projects) > 0 && r.Match.Projects[0] == "site"
	})
	last, _ := h.db.LastSeq(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := h.hooks.Get(context.Background(), e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State.Cursor == last && *got.State.Lag == 0 && got.State.LastStatus == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %+v, want cursor %d, lag 0, last status 204", got.State, last)
		}
		time.Sleep(20 * time.Millisecond) // the cursor is stored after the answer is read
	}
	page, err := h.hooks.Deliveries(context.Background(), e.ID, 100, "")
	if err != nil || len(page.Deliveries) != n+2 || page.Deliveries[0].Seq != last || page.Deliveries[0].Status != 204 {
		t.Errorf("deliveries %+v, %v", page, err)
	}
}

func TestRotationSignsWithBoth(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	e := h.create(t, r, "")
	old := e.Secret
	rotated, err := h.hooks.RotateSecret(context.Background(), e.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	msgs := r.waitFor(2, 10*time.Second) // webhook_created, then the rotation's webhook_updated
	if sigs := strings.Fields(msgs[1].signature); len(sigs) != 2 {
		t.Fatalf("after a rotation, webhook-signature %q, want two", msgs[1].signature)
	}
	for _, secret := range []string{old, rotated.Secret} {
		wh, err := svix.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(msgs[1].body, msgs[1].header); err != nil {
			t.Errorf("secret %s does not verify the message after the rotation: %v", secret[:10], err)
		}
	}
}

func TestFailThenRecover(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	r.answer = func(n int, w http.ResponseWriter) bool {
		if n > 2 {
			return false
		}
		w.Header().Set("Retry-After", "1") // rather than the first retry's 5s
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	e := h.create(t, r, "")
	ctx := context.Background()
	for i := range 3 {
		if _, err := h.tasks.Create(ctx, tasks.Update{Title: tasks.Value(fmt.Sprint("task ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := r.waitFor(6, 15*time.Second)
	if msgs[0].id != msgs[1].id || msgs[1].id != msgs[2].id || msgs[2].id == msgs[3].id {
		t.Errorf("webhook-ids %s %s %s %s: the first event three times, then the next", msgs[0].id, msgs[1].id, msgs[2].id, msgs[3].id)
	}
	h.checkLog(t, msgs[2:], e.State.Cursor+1, nil)
	page, err := h.hooks.Deliveries(ctx, e.ID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	first := page.Deliveries[len(page.Deliveries)-3:]
	if first[2].Attempt != 1 || first[2].Status != 503 || first[1].Attempt != 2 || first[0].Attempt != 3 || first[0].Status != 204 {
		t.Errorf("the first event's attempts, newest first: %+v", first)
	}
	if !strings.Contains(first[2].Error, "503") {
		t.Errorf("a failed attempt's error %q", first[2].Error)
	}
}

func TestGoneDisables(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	r.answer = func(_ int, w http.ResponseWriter) bool { w.WriteHeader(http.StatusGone); return true }
	e := h.create(t, r, "")
	r.waitFor(1, 10*time.Second)
	ctx := context.Background()
	var got *webhooks.Endpoint
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = h.hooks.Get(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
		if !got.Enabled || time.Now().After(deadline) {
			break
		}
	}
	if got.Enabled || !strings.Contains(got.State.DisabledReason, "410") || got.State.LastStatus != 410 {
		t.Fatalf("after a 410: %+v", got)
	}
	records, _ := h.db.Events(ctx, tasks.EventQuery{Types: []tasks.EventType{tasks.EventWebhookUpdated}, Limit: 10})
	if len(records) != 1 || records[0].Source != tasks.SourceSystem {
		t.Errorf("the disabling's event: %v", records)
	}
	if _, err := h.tasks.Create(ctx, tasks.Update{Title: tasks.Value("after")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // nothing to wait for: nothing must come
	if n := len(r.messages()); n != 1 {
		t.Errorf("a disabled endpoint got %d requests, want the one answered 410", n)
	}
}

func TestNoAnswerTimesOut(t *testing.T) {
	h := newHarness(t)
	h.client.Timeout = 300 * time.Millisecond
	release := make(chan struct{})
	r := newReceiver(t)
	r.answer = func(int, http.ResponseWriter) bool { <-release; return false }
	t.Cleanup(func() { close(release) })
	e := h.create(t, r, "")
	r.waitFor(1, 10*time.Second)
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		page, err := h.hooks.Deliveries(ctx, e.ID, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Deliveries) > 0 {
			if d := page.Deliveries[0]; d.Status != 0 || !strings.Contains(d.Error, "no answer within") || d.DurationMS < 300 {
				t.Errorf("an attempt without an answer: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt recorded")
		}
	}
	got, _ := h.hooks.Get(ctx, e.ID)
	if got.State.Failures != 1 || got.State.NextAttemptAt == nil {
		t.Fatalf("state after a timeout %+v", got.State)
	}
	if wait := time.Until(got.State.NextAttemptAt.Time); wait < 4*time.Second || wait > 6*time.Second {
		t.Errorf("the first retry is due in %s, want 5s with a tenth of jitter", wait)
	}
}

func TestGuardRefusesLoopbackByName(t *testing.T) {
	db := openDB(t)
	r := newReceiver(t)
	hooks := webhooks.NewService(webhooks.Config{Store: db, Vocabulary: api.StreamVocabulary()})
	port := r.URL[strings.LastIndex(r.URL, ":"):]
	e, err := hooks.Create(context.Background(), webhooks.CreateRequest{URL: "http://localhost" + port + "/hook"})
	if err != nil {
		t.Fatalf("a host name is checked when connected to, not at create: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	engine, err := webhooks.NewEngine(webhooks.EngineConfig{Store: db, Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); engine.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		page, err := hooks.Deliveries(context.Background(), e.ID, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Deliveries) > 0 {
			if d := page.Deliveries[0]; d.Status != 0 || !strings.Contains(d.Error, "a loopback address") {
				t.Errorf("an attempt to a loopback name: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt recorded")
		}
	}
	if n := len(r.messages()); n != 0 {
		t.Errorf("the receiver on loopback got %d requests through the guard", n)
	}
}
