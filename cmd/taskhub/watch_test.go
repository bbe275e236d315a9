package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fileEvent is the part of a file_changed event's JSON the tests look at.
type fileEvent struct {
	Seq    int64  `json:"seq"`
	Type   string `json:"type"`
	TaskID int64  `json:"task_id"`
	Source string `json:"source"`
	Actor  string `json:"actor"`
	Task   any    `json:"task"`
	File   struct {
		Dir, Path, Op, From string
	} `json:"file"`
}

func (e fileEvent) String() string {
	if e.File.From != "" {
		return fmt.Sprintf("%s %s→%s", e.File.Op, e.File.From, e.File.Path)
	}
	return fmt.Sprintf("%s %s", e.File.Op, e.File.Path)
}

// nextFile returns the next event of s, which must be a file_changed one.
func nextFile(t *testing.T, s *sseStream) fileEvent {
	t.Helper()
	m := s.nextEvent(t, 5*time.Second)
	var e fileEvent
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		t.Fatalf("event data %q: %v", m.Data, err)
	}
	if m.Event != "file_changed" || e.Type != "file_changed" || fmt.Sprint(e.Seq) != m.ID {
		t.Fatalf("got event %q id %s: %s, want a file_changed", m.Event, m.ID, m.Data)
	}
	if e.Source != "file_watch" || e.TaskID != 0 || e.Task != nil || e.Actor == "" {
		t.Fatalf("file event %s", m.Data)
	}
	return e
}

func expectFile(t *testing.T, s *sseStream, want string) fileEvent {
	t.Helper()
	e := nextFile(t, s)
	if got := e.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	return e
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	mustDo(t, os.WriteFile(name, []byte(s), 0o644))
}

func TestWatch(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	root, err := filepath.EvalSymlinks(dir)
	mustDo(t, err)
	mustDo(t, os.MkdirAll(filepath.Join(dir, ".git", "refs"), 0o755))
	url, _ := startServer(t, "--watch", dir)
	s := openStream(t, url+"/events/stream?types=file_changed&source=file_watch", nil)
	all := openStream(t, url+"/events/stream", nil)
	at := func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }

	writeFile(t, at("a.txt"), "1")
	first := expectFile(t, s, "create a.txt")
	if first.File.Dir != root {
		t.Errorf("dir %q, want %q", first.File.Dir, root)
	}
	f, err := os.OpenFile(at("a.txt"), os.O_APPEND|os.O_WRONLY, 0)
	mustDo(t, err)
	for i := range 20 { // a burst of writes: one event
		fmt.Fprintf(f, "line %d\n", i)
		mustDo(t, f.Sync())
	}
	mustDo(t, f.Close())
	expectFile(t, s, "write a.txt")
	mustDo(t, os.Rename(at("a.txt"), at("b.txt")))
	expectFile(t, s, "rename a.txt→b.txt")
	mustDo(t, os.Remove(at("b.txt")))
	expectFile(t, s, "remove b.txt")

	mustDo(t, os.MkdirAll(at("docs/new"), 0o755))
	writeFile(t, at("docs/new/c.md"), "c")
	expectFile(t, s, "create docs")
	expectFile(t, s, "create docs/new")
	expectFile(t, s, "create docs/new/c.md")

	// None of these is reported: VCS internals, editor temp files, files outside.
	writeFile(t, at(".git/refs/main"), "x")
	writeFile(t, at(".git/index"), "x")
	for _, n := range []string{".c.md.swp", "c.md~", ".#c.md", "#c.md#", "4913", "c.tmp"} {
		writeFile(t, at("docs/new/"+n), "x")
	}
	writeFile(t, filepath.Join(outside, "secret.txt"), "x")
	// An editor's save by rename is one write of the file it saves.
	writeFile(t, at("docs/new/c.md.tmp"), "c2")
	mustDo(t, os.Rename(at("docs/new/c.md.tmp"), at("docs/new/c.md")))
	last := expectFile(t, s, "write docs/new/c.md")

	// On the unfiltered stream too, in the same order as the tasks' events.
	id := createTask(t, url, `{"title":"after the files"}`)
	var seen []string
	for {
		m := all.nextEvent(t, 5*time.Second)
		if m.Event == "task_created" {
			if e := m.events(t)[0]; e.TaskID != id || e.Seq <= last.Seq {
				t.Fatalf("task event %s after file events up to %d", m.Data, last.Seq)
			}
			break
		}
		var e fileEvent
		mustDo(t, json.Unmarshal([]byte(m.Data), &e))
		seen = append(seen, e.String())
	}
	want := "create a.txt,write a.txt,rename a.txt→b.txt,remove b.txt,create docs,create docs/new,create docs/new/c.md,write docs/new/c.md"
	if got := strings.Join(seen, ","); got != want {
		t.Errorf("unfiltered stream: %s\nwant %s", got, want)
	}

	// Replay and the polling API treat them like any other event.
	replay := openStream(t, url+"/events/stream?types=file_changed", http.Header{"Last-Event-Id": {fmt.Sprint(first.Seq)}})
	expectFile(t, replay, "write a.txt")
	var page struct {
		Events []fileEvent `json:"events"`
	}
	call(t, http.MethodGet, fmt.Sprintf("%s/api/events?after=%d&limit=1", url, first.Seq-1), "", http.StatusOK, &page)
	if len(page.Events) != 1 || page.Events[0].String() != "create a.txt" || page.Events[0].File.Dir != root {
		t.Errorf("/api/events: %+v", page.Events)
	}
}

func TestWatchArguments(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, "x")
	db := filepath.Join(t.TempDir(), "taskhub.db")
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"missing", []string{"--watch", filepath.Join(dir, "none")}, "", "no such file or directory"},
		{"a file", []string{"--watch", file}, "", "not a directory"},
		{"overlap", []string{"--watch", dir, "--watch", filepath.Join(dir, ".")}, "", "overlaps"},
		{"from env", nil, dir + "," + file, "TASKHUB_WATCH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("TASKHUB_WATCH", tc.env)
			}
			var out bytes.Buffer
			code := run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, tc.args...), &out, &out)
			if code != 2 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output %q; want 2 and %q", code, out.String(), tc.want)
			}
		})
	}
}
