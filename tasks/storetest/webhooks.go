package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"taskhub/tasks"
)

// OpenWebhooks returns a new, empty store that keeps webhooks, living until t ends.
type OpenWebhooks func(t *testing.T) tasks.WebhookStore

// RunWebhooks runs the cases of tasks.WebhookStore, each on a store of its own.
func RunWebhooks(t *testing.T, open OpenWebhooks) {
	cases := []struct {
		name string
		fn   func(*testing.T, tasks.WebhookStore)
	}{
		{"Endpoints", testWebhookEndpoints},
		{"FailedWriteLeavesNoEndpoint", testWebhookFailedWrite},
		{"StateByRevision", testWebhookState},
		{"Deliveries", testWebhookDeliveries},
		{"Leases", testWebhookLeases},
		{"LogID", testWebhookLogID},
		{"PruneKeepsWhatEndpointsNeed", testWebhookPrune},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func newWebhook(url string) *tasks.Webhook {
	now := tasks.NewTime(time.Now())
	return &tasks.Webhook{URL: url, Filters: json.RawMessage(`{"types":["task_created"]}`), Enabled: true,
		Secret: "whsec_c2VjcmV0", Revision: 1, CreatedAt: now, UpdatedAt: now}
}

// createWebhook stores w with its webhook_created event, as package webhooks does.
func createWebhook(t *testing.T, store tasks.WebhookStore, w *tasks.Webhook) {
	t.Helper()
	err := store.WriteWebhooks(context.Background(), func(tx tasks.WebhookTx) error {
		if err := tx.CreateWebhook(w); err != nil {
			return err
		}
		return tx.AppendEvent(&tasks.Event{Type: tasks.EventWebhookCreated, Source: tasks.SourceREST, Actor: "admin",
			Time: w.CreatedAt, Webhook: json.RawMessage(fmt.Sprintf(`{"id":%d}`, w.ID))})
	})
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
}

// jsonOf is v's JSON, to compare values whose fields include times and raw JSON.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sameWebhook(got, want *tasks.Webhook) bool { return jsonOf(got) == jsonOf(want) }

func testWebhookEndpoints(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	a, b := newWebhook("https://a.example/hook"), newWebhook("https://b.example/hook")
	until := tasks.NewTime(time.Now().Add(24 * time.Hour))
	next := tasks.NewTime(time.Now().Add(time.Minute))
	b.PreviousSecret, b.PreviousSecretUntil = "whsec_b2xk", &until
	b.State = tasks.WebhookState{Cursor: 7, LastStatus: 503, Failures: 2, NextAttemptAt: &next, DisabledReason: "x"}
	createWebhook(t, store, a)
	createWebhook(t, store, b)
	if a.ID == 0 || b.ID <= a.ID {
		t.Fatalf("ids %d and %d, want increasing from 1", a.ID, b.ID)
	}
	got, err := store.Webhook(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sameWebhook(got, b) {
		t.Errorf("read back %+v\nwrote %+v", got, b)
	}
	list, err := store.Webhooks(ctx)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("list: %v, %v", list, err)
	}
	records, decoded := events(t, store)
	if len(records) != 2 || decoded[0].Type != tasks.EventWebhookCreated || string(decoded[1].Webhook) != fmt.Sprintf(`{"id":%d}`, b.ID) {
		t.Errorf("events of the creates: %v", records)
	}
	if records[0].TaskID != 0 || fmt.Sprint(records[0].Match) != fmt.Sprint(tasks.Match{}) {
		t.Errorf("a webhook event matches on a task: %+v", records[0])
	}

	err = store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		w, err := tx.Webhook(a.ID)
		if err != nil {
			return err
		}
		w.URL, w.Enabled, w.Revision = "https://a.example/other", false, w.Revision+1
		w.Filters = json.RawMessage(`{}`)
		w.UpdatedAt = tasks.NewTime(time.Now())
		*a = *w
		return tx.UpdateWebhook(w)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.Webhook(ctx, a.ID); err != nil || !sameWebhook(got, a) {
		t.Errorf("after the update: %+v, %v\nwant %+v", got, err, a)
	}

	err = store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		if _, err := tx.Webhook(b.ID + 100); code(err) != tasks.ENotFound {
			t.Errorf("a missing webhook in a transaction: %v, want not_found", err)
		}
		return tx.DeleteWebhook(b.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Webhook(ctx, b.ID); code(err) != tasks.ENotFound {
		t.Errorf("a deleted webhook: %v, want not_found", err)
	}
	if list, _ := store.Webhooks(ctx); len(list) != 1 {
		t.Errorf("%d webhooks after a delete, want 1", len(list))
	}
}

func testWebhookFailedWrite(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	err := store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		w := newWebhook("https://a.example/hook")
		if err := tx.CreateWebhook(w); err != nil {
			return err
		}
		if err := tx.AppendEvent(&tasks.Event{Type: tasks.EventWebhookCreated, Source: tasks.SourceREST, Time: w.CreatedAt}); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("WriteWebhooks returned %v, want fn's error", err)
	}
	if list, _ := store.Webhooks(ctx); len(list) != 0 {
		t.Errorf("%d webhooks after a failed write", len(list))
	}
	if last, _ := store.LastSeq(ctx); last != 0 {
		t.Errorf("LastSeq %d after a failed write, want 0", last)
	}
}

func testWebhookState(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	w := newWebhook("https://a.example/hook")
	createWebhook(t, store, w)
	next := tasks.NewTime(time.Now())
	want := tasks.WebhookState{Cursor: 3, LastStatus: 500, Failures: 1, NextAttemptAt: &next}
	set := func(revision int64, s tasks.WebhookState) bool {
		t.Helper()
		var ok bool
		err := store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) (err error) {
			ok, err = tx.SetWebhookState(w.ID, revision, s, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !set(w.Revision, want) {
		t.Fatal("the state of the revision read was not stored")
	}
	if set(w.Revision+1, tasks.WebhookState{Cursor: 9}) {
		t.Error("a state for another revision was stored")
	}
	got, err := store.Webhook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(got.State) != jsonOf(want) {
		t.Errorf("state %s, want %s", jsonOf(got.State), jsonOf(want))
	}
}

func testWebhookDeliveries(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	a, b := newWebhook("https://a.example/hook"), newWebhook("https://b.example/hook")
	createWebhook(t, store, a)
	createWebhook(t, store, b)
	total := tasks.MaxWebhookDeliveries + 5
	record := func(tx tasks.WebhookTx, w *tasks.Webhook, d *tasks.WebhookDelivery) error {
		applied, err := tx.SetWebhookState(w.ID, w.Revision, tasks.WebhookState{Cursor: d.Seq, LastStatus: d.Status}, d)
		if err == nil && !applied {
			err = fmt.Errorf("the state of webhook %d at its revision was not stored", w.ID)
		}
		return err
	}
	err := store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		for i := 1; i <= total; i++ {
			d := &tasks.WebhookDelivery{Seq: int64(i), Attempt: 1, Status: 200,
				Time: tasks.NewTime(time.Now()), Duration: 1500 * time.Microsecond}
			if i == total {
				d.Attempt, d.Status, d.Error = 2, 0, "connection refused"
			}
			if err := record(tx, a, d); err != nil {
				return err
			}
			if i == 10 {
				// A state without an attempt, and one of a stale revision, record none.
				if _, err := tx.SetWebhookState(a.ID, a.Revision, tasks.WebhookState{Cursor: 10}, nil); err != nil {
					return err
				}
				if _, err := tx.SetWebhookState(a.ID, a.Revision+1, tasks.WebhookState{}, &tasks.WebhookDelivery{Seq: 99}); err != nil {
					return err
				}
			}
		}
		return record(tx, b, &tasks.WebhookDelivery{Seq: 1, Attempt: 1, Status: 204, Time: tasks.NewTime(time.Now())})
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := store.WebhookDeliveries(ctx, a.ID, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].N != int64(total) || page[0].Seq != int64(total) || page[2].N != int64(total-2) {
		t.Fatalf("newest 3: %+v", page)
	}
	if d := page[0]; d.Attempt != 2 || d.Status != 0 || d.Error != "connection refused" || d.WebhookID != a.ID {
		t.Errorf("the last attempt read back as %+v", d)
	}
	if page[1].Duration != 1500*time.Microsecond || page[1].Status != 200 {
		t.Errorf("an attempt read back as %+v", page[1])
	}
	all, err := store.WebhookDeliveries(ctx, a.ID, 0, 2*total)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != tasks.MaxWebhookDeliveries || all[len(all)-1].N != int64(total-tasks.MaxWebhookDeliveries+1) {
		t.Errorf("kept %d attempts, the oldest N %d; want the last %d", len(all), all[len(all)-1].N, tasks.MaxWebhookDeliveries)
	}
	for i, d := range all {
		if d.Seq != d.N || i > 0 && d.N != all[i-1].N-1 {
			t.Fatalf("attempt N %d after N %d is of seq %d; want one attempt at each seq, numbered alike", d.N, all[max(i-1, 0)].N, d.Seq)
		}
	}
	older, err := store.WebhookDeliveries(ctx, a.ID, page[2].N, 2)
	if err != nil || len(older) != 2 || older[0].N != page[2].N-1 {
		t.Errorf("the page after N %d: %+v, %v", page[2].N, older, err)
	}
	if other, _ := store.WebhookDeliveries(ctx, b.ID, 0, 10); len(other) != 1 || other[0].N != 1 || other[0].Status != 204 {
		t.Errorf("the other endpoint's attempts: %+v", other)
	}
	// A change of the endpoint goes on numbering its attempts.
	err = store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		a.Revision++
		if err := tx.UpdateWebhook(a); err != nil {
			return err
		}
		return record(tx, a, &tasks.WebhookDelivery{Seq: 7, Attempt: 1, Status: 201, Time: tasks.NewTime(time.Now())})
	})
	if err != nil {
		t.Fatal(err)
	}
	if page, err := store.WebhookDeliveries(ctx, a.ID, 0, tasks.MaxWebhookDeliveries+1); err != nil || len(page) != tasks.MaxWebhookDeliveries ||
		page[0].N != int64(total+1) || page[0].Status != 201 || page[1].N != int64(total) || page[len(page)-1].N != int64(total-tasks.MaxWebhookDeliveries+2) {
		t.Errorf("after a change, the newest attempt N %d of %d kept, %v; want N %d on top of the %d before it", page[0].N, len(page), err, total+1, total)
	}
	if err := store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error { return tx.DeleteWebhook(a.ID) }); err != nil {
		t.Fatal(err)
	}
	if gone, err := store.WebhookDeliveries(ctx, a.ID, 0, 10); err != nil || len(gone) != 0 {
		t.Errorf("a deleted endpoint's attempts: %+v, %v", gone, err)
	}
}

func testWebhookLeases(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	w := newWebhook("https://a.example/hook")
	createWebhook(t, store, w)
	acquire := func(owner string, ttl time.Duration) bool {
		t.Helper()
		held, err := store.AcquireWebhookLease(ctx, w.ID, owner, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	if !acquire("a", time.Minute) {
		t.Fatal("a free lease was not given")
	}
	if acquire("b", time.Minute) {
		t.Fatal("a lease held by a was given to b")
	}
	if !acquire("a", time.Minute) {
		t.Fatal("the holder could not renew")
	}
	if err := store.ReleaseWebhookLease(ctx, w.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if acquire("b", time.Minute) {
		t.Fatal("a release by another owner freed the lease")
	}
	if err := store.ReleaseWebhookLease(ctx, w.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire("b", 0) {
		t.Fatal("a released lease was not given")
	}
	// b's lease of no length has run out by the next call.
	if !acquire("a", time.Minute) {
		t.Fatal("an expired lease was not given")
	}
	held, err := store.AcquireWebhookLease(ctx, w.ID+100, "a", time.Minute)
	if err != nil || held {
		t.Errorf("the lease of a missing endpoint: %v, %v; want not held", held, err)
	}
	if err := store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error { return tx.DeleteWebhook(w.ID) }); err != nil {
		t.Fatal(err)
	}
	if held, err := store.AcquireWebhookLease(ctx, w.ID, "a", time.Minute); err != nil || held {
		t.Errorf("the lease of a deleted endpoint: %v, %v; want not held", held, err)
	}
}

func testWebhookLogID(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	id, err := store.LogID(ctx)
	if err != nil || len(id) < 8 {
		t.Fatalf("LogID %q, %v", id, err)
	}
	if again, _ := store.LogID(ctx); again != id {
		t.Errorf("LogID changed from %q to %q", id, again)
	}
}

func testWebhookPrune(t *testing.T, store tasks.WebhookStore) {
	ctx := context.Background()
	svc := tasks.NewService(store)
	for range 5 {
		create(t, svc, tasks.Update{})
	}
	held, idle := newWebhook("https://a.example/hook"), newWebhook("https://b.example/hook")
	held.State.Cursor = 2 // it has handled events 1 and 2, not 3 on
	idle.Enabled, idle.State.Cursor = false, 0
	createWebhook(t, store, held)
	createWebhook(t, store, idle)
	var first, last int64
	err := store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) (err error) {
		first, last, err = tx.LogBounds()
		return err
	})
	if err != nil || first != 1 || last != 7 {
		t.Fatalf("LogBounds %d, %d, %v; want 1 and 7", first, last, err)
	}
	if _, err := store.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if first, _ := store.FirstSeq(ctx); first != 3 {
		t.Errorf("after pruning everything old, FirstSeq %d: want 3, the first event the enabled endpoint needs", first)
	}
	err = store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) error {
		held.Enabled, held.Revision = false, held.Revision+1
		return tx.UpdateWebhook(held)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if first, _ := store.FirstSeq(ctx); first != 8 {
		t.Errorf("with no endpoint enabled, FirstSeq %d after pruning all: want 8", first)
	}
	err = store.WriteWebhooks(ctx, func(tx tasks.WebhookTx) (err error) {
		first, last, err = tx.LogBounds()
		return err
	})
	if err != nil || first != 8 || last != 7 {
		t.Errorf("LogBounds of an empty log %d, %d, %v; want 8 and 7", first, last, err)
	}
}
