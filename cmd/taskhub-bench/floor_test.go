//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFloorServer checks the floor server answers the bench as taskhub does: tasks
// with versions, and each change as an event, whole, on every stream, in seq order.
func TestFloorServer(t *testing.T) {
	fl := &floor{subs: map[*floorSub]struct{}{}, tasks: map[int64]*floorTask{}}
	srv := httptest.NewServer(fl.routes())
	defer srv.Close()
	defer fl.closeAll()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newAPI(srv.URL, 2)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var created, updated task
	if err := a.do(ctx, "POST", "/api/tasks", map[string]string{"title": "t"}, http.StatusCreated, &created); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 300)
	if err := a.do(ctx, "PATCH", "/api/tasks/1", map[string]string{"description": pad}, http.StatusOK, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.do(ctx, "PATCH", "/api/tasks/1", map[string]string{"title": "u"}, http.StatusOK, &updated); err != nil {
		t.Fatal(err)
	}
	if created.ID != 1 || created.Version != 1 || updated.Version != 3 {
		t.Fatalf("created %+v, updated %+v", created, updated)
	}
	if err := a.do(ctx, "PATCH", "/api/tasks/9", map[string]string{"title": "u"}, http.StatusNotFound, nil); err != nil {
		t.Fatal(err)
	}

	r := bufio.NewReader(resp.Body)
	var ids []string
	var last struct {
		Seq  int64     `json:"seq"`
		Time time.Time `json:"time"`
		Task floorTask `json:"task"`
	}
	for last.Seq < 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after events %v: %v", ids, err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, strings.TrimSpace(id))
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Join(ids, ",") != "1,2,3" || last.Seq != 3 || last.Time.IsZero() ||
		last.Task.Version != 3 || last.Task.Title != "u" || last.Task.Description != pad {
		t.Errorf("ids %v, last event %+v", ids, last)
	}
	d, err := a.debug(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.ConnectedClients != 1 || d.LastSeq != 3 || d.EventsPublished != 3 {
		t.Errorf("debug %+v", d)
	}
}
