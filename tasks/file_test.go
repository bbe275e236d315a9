package tasks_test

import (
	"context"
	"strings"
	"testing"

	"taskhub/tasks"
)

func TestRecordFileChange(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	want := tasks.FileChange{Dir: "/srv/repo", Path: "docs/new.md", Op: tasks.FileRename, From: "docs/old.md"}
	e, err := svc.RecordFileChange(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq == 0 || e.Type != tasks.EventFileChanged || e.Source != tasks.SourceFileWatch || e.TaskID != 0 || e.Task != nil {
		t.Errorf("event %+v", e)
	}
	events := allEvents(t, svc)
	if len(events) != 1 {
		t.Fatalf("%d events in the log, want 1", len(events))
	}
	got := events[0]
	if got.Seq != e.Seq || got.File == nil || *got.File != want || got.Task != nil || got.Actor != tasks.FileWatchActor {
		t.Errorf("stored %+v (file %+v), want file %+v", got, got.File, want)
	}
	// The log's filters see it like any other event.
	byType, _, err := svc.EventsFor(ctx, tasks.EventQuery{Types: []tasks.EventType{tasks.EventFileChanged}, Sources: []tasks.Source{tasks.SourceFileWatch}, Limit: 10})
	if err != nil || len(byType) != 1 {
		t.Errorf("filtered: %v, %v", byType, err)
	}
}

func TestRecordFileChanges(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	cs := []tasks.FileChange{
		{Dir: "/srv/repo", Path: "a.txt", Op: tasks.FileCreate},
		{Dir: "/srv/repo", Path: "b.txt", Op: tasks.FileWrite},
	}
	events, err := svc.RecordFileChanges(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[1].Seq != events[0].Seq+1 || events[0].File.Path != "a.txt" {
		t.Fatalf("events %+v", events)
	}
	// All or none: one bad change records nothing.
	_, err = svc.RecordFileChanges(ctx, append(cs, tasks.FileChange{Dir: "/srv/repo", Path: "../x", Op: tasks.FileWrite}))
	wantError(t, err, tasks.EInvalid, "path")
	if n := len(allEvents(t, svc)); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
	if events, err := svc.RecordFileChanges(ctx, nil); err != nil || events != nil {
		t.Errorf("no changes: %v, %v", events, err)
	}
}

func TestRecordFileChangeValidation(t *testing.T) {
	svc, _ := newService(t)
	ok := tasks.FileChange{Dir: "/srv/repo", Path: "a.txt", Op: tasks.FileWrite}
	for _, tc := range []struct {
		name  string
		edit  func(*tasks.FileChange)
		field string
	}{
		{"unknown op", func(c *tasks.FileChange) { c.Op = "chmod" }, "op"},
		{"relative dir", func(c *tasks.FileChange) { c.Dir = "repo" }, "dir"},
		{"no dir", func(c *tasks.FileChange) { c.Dir = "" }, "dir"},
		{"empty path", func(c *tasks.FileChange) { c.Path = "" }, "path"},
		{"absolute path", func(c *tasks.FileChange) { c.Path = "/etc/passwd" }, "path"},
		{"outside", func(c *tasks.FileChange) { c.Path = "../secret" }, "path"},
		{"dot", func(c *tasks.FileChange) { c.Path = "." }, "path"},
		{"unclean", func(c *tasks.FileChange) { c.Path = "a//b" }, "path"},
		{"not utf-8", func(c *tasks.FileChange) { c.Path = "a\xff" }, "path"},
		{"too long", func(c *tasks.FileChange) { c.Path = strings.Repeat("a", tasks.MaxFilePath+1) }, "path"},
		{"rename without from", func(c *tasks.FileChange) { c.Op = tasks.FileRename }, "from"},
		{"from without rename", func(c *tasks.FileChange) { c.From = "b.txt" }, "from"},
		{"from outside", func(c *tasks.FileChange) { c.Op, c.From = tasks.FileRename, "../b.txt" }, "from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := svc.RecordFileChange(context.Background(), c)
			wantError(t, err, tasks.EInvalid, tc.field)
		})
	}
	if n := len(allEvents(t, svc)); n != 0 {
		t.Errorf("%d events after refused changes, want 0", n)
	}
}
