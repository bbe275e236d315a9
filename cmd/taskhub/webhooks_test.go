package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// TestWebhooksKilled kills `taskhub serve` with -9 while a webhook request is in
// flight, and starts it again on the same database: every event reaches the receiver,
// in order, and the only one it gets twice is the one in flight at the kill,
// recognised by its webhook-id. Every request's signature is checked with svix's
// verifier.
func TestWebhooksKilled(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	const holdAt = 30 // the request held in flight at the kill
	var (
		mu       sync.Mutex
		ids      []string
		more     = make(chan struct{}, 1)
		inFlight = make(chan struct{})
		killed   = make(chan struct{})
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("request %s does not verify: %v", r.Header.Get("webhook-id"), err)
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		n := len(ids)
		mu.Unlock()
		select {
		case more <- struct{}{}:
		default:
		}
		if n == holdAt {
			close(inFlight)
			<-killed
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	db := filepath.Join(t.TempDir(), "taskhub.db")
	args := []string{"--db", db, "--addr", "127.0.0.1:0", "--webhooks-allow-private"}
	cmd, url, _ := startServe(t, nil, args...)
	call(t, http.MethodPost, url+"/api/webhooks", fmt.Sprintf(`{"url": %q, "secret": %q, "filters": {"types": ["task_created"]}}`,
		receiver.URL+"/hook", secret), http.StatusCreated, nil)
	const total = 80
	for i := range total {
		call(t, http.MethodPost, url+"/api/tasks", fmt.Sprintf(`{"title": "task %d"}`, i), http.StatusCreated, nil)
	}
	select {
	case <-inFlight:
	case <-time.After(20 * time.Second):
		t.Fatal("the request to hold in flight never came")
	}
	cmd.Process.Kill()
	cmd.Wait()
	close(killed)
	startServe(t, nil, args...) // it waits for the dead process's lease to run out

	deadline := time.After(30 * time.Second)
	for {
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		if n >= total+1 {
			break
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("the receiver got %d requests, want %d: every event, and the one in flight again", n, total+1)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var seqs []int64
	for _, id := range ids {
		s, _, _ := strings.Cut(strings.TrimPrefix(id, "msg_"), "_")
		seq, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("webhook-id %q", id)
		}
		seqs = append(seqs, seq)
	}
	dup := 0
	for i := 1; i < len(seqs); i++ {
		switch {
		case seqs[i] == seqs[i-1]:
			dup++
			if i != holdAt {
				t.Errorf("seq %d came twice, at request %d: only the one in flight at the kill (request %d) may", seqs[i], i+1, holdAt)
			}
		case seqs[i] != seqs[i-1]+1:
			t.Errorf("request %d has seq %d after %d: a gap or a step back", i+1, seqs[i], seqs[i-1])
		}
	}
	if dup != 1 || len(seqs) != total+1 {
		t.Errorf("%d requests with %d duplicates, want %d with the one in flight twice: %v", len(seqs), dup, total+1, seqs)
	}
}
