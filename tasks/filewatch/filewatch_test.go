package filewatch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/filewatch"
)

// recorder collects the changes a Watcher reports.
type recorder struct {
	changes chan tasks.FileChange
}

func (r *recorder) RecordFileChanges(_ context.Context, cs []tasks.FileChange) ([]*tasks.Event, error) {
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	for _, c := range cs {
		r.changes <- c
	}
	return make([]*tasks.Event, len(cs)), nil
}

const debounce = 100 * time.Millisecond

// start watches dir until the test ends.
func start(t *testing.T, dir string) *recorder {
	t.Helper()
	rec := &recorder{changes: make(chan tasks.FileChange, 100)}
	w, err := filewatch.New(filewatch.Config{Dir: dir, Recorder: rec, Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait(); w.Close() })
	return rec
}

// next returns the next reported change, within a deadline.
func (r *recorder) next(t *testing.T) tasks.FileChange {
	t.Helper()
	select {
	case c := <-r.changes:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported within 5s")
	}
	panic("unreachable")
}

// expect checks the next change's op, path and from, as "op path" or "rename from→path".
func (r *recorder) expect(t *testing.T, want string) {
	t.Helper()
	c := r.next(t)
	got := fmt.Sprintf("%s %s", c.Op, c.Path)
	if c.From != "" {
		got = fmt.Sprintf("%s %s→%s", c.Op, c.From, c.Path)
	}
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// quiet checks that nothing more is reported. A marker file written last, reported
// after everything before it, proves that without waiting on a guess.
func (r *recorder) quiet(t *testing.T, dir string) {
	t.Helper()
	marker := filepath.Join(dir, "zz-marker")
	write(t, marker, "x")
	if c := r.next(t); c.Path != "zz-marker" {
		t.Fatalf("reported %+v, want nothing before the marker", c)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "remove zz-marker")
}

func write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, name, s string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "old", "deep"), 0o755))
	rec := start(t, dir)
	root, _ := filepath.EvalSymlinks(dir)

	write(t, filepath.Join(dir, "a.txt"), "1")
	c := rec.next(t)
	if c.Op != tasks.FileCreate || c.Path != "a.txt" || c.Dir != root {
		t.Fatalf("got %+v, want create a.txt in %s", c, root)
	}

	for i := range 20 { // a burst of writes is one change
		appendTo(t, filepath.Join(dir, "a.txt"), fmt.Sprint(i))
	}
	rec.expect(t, "write a.txt")

	must(t, os.Rename(filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")))
	rec.expect(t, "rename a.txt→b.txt")

	must(t, os.Remove(filepath.Join(dir, "b.txt")))
	rec.expect(t, "remove b.txt")

	// A new directory, and a file in it made before its watch could be in place.
	must(t, os.MkdirAll(filepath.Join(dir, "new", "sub"), 0o755))
	write(t, filepath.Join(dir, "new", "sub", "c.txt"), "c")
	rec.expect(t, "create new")
	rec.expect(t, "create new/sub")
	rec.expect(t, "create new/sub/c.txt")
	appendTo(t, filepath.Join(dir, "new", "sub", "c.txt"), "more")
	rec.expect(t, "write new/sub/c.txt")

	// A directory existing at the start, renamed; then its files under the new name.
	must(t, os.Rename(filepath.Join(dir, "old"), filepath.Join(dir, "moved")))
	rec.expect(t, "rename old→moved")
	write(t, filepath.Join(dir, "moved", "deep", "d.txt"), "d")
	rec.expect(t, "create moved/deep/d.txt")

	rec.quiet(t, dir)
}

func TestWatchEditorSaves(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "notes.md")
	write(t, name, "v1")
	rec := start(t, dir)

	// vim (backupcopy=no): probe file 4913, swap file, rename to backup, write anew,
	// drop the backup.
	write(t, filepath.Join(dir, ".notes.md.swp"), "swap")
	write(t, filepath.Join(dir, "4913"), "")
	must(t, os.Remove(filepath.Join(dir, "4913")))
	must(t, os.Rename(name, name+"~"))
	write(t, name, "v2")
	must(t, os.Remove(name+"~"))
	must(t, os.Remove(filepath.Join(dir, ".notes.md.swp")))
	rec.expect(t, "write notes.md")

	// An atomic save: write a temp file, rename it onto the target.
	write(t, name+".tmp", "v3")
	must(t, os.Rename(name+".tmp", name))
	rec.expect(t, "write notes.md")

	// The same with a temp name no rule knows (sed -i): it was created within the
	// window, so it is a temp file all the same.
	write(t, filepath.Join(dir, "sedAb12Cd"), "v4")
	must(t, os.Rename(filepath.Join(dir, "sedAb12Cd"), name))
	rec.expect(t, "write notes.md")

	// Emacs lock and autosave files.
	must(t, os.Symlink("user@host.1234", filepath.Join(dir, ".#notes.md")))
	write(t, filepath.Join(dir, "#notes.md#"), "auto")
	rec.quiet(t, dir)
}

func TestWatchIgnores(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, ".git", "objects"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(dir, "link")))
	rec := start(t, dir)

	write(t, filepath.Join(dir, ".git", "index"), "x")
	write(t, filepath.Join(dir, ".git", "objects", "ab"), "x")
	must(t, os.MkdirAll(filepath.Join(dir, "sub", ".git", "refs"), 0o755)) // a nested repository
	rec.expect(t, "create sub")
	write(t, filepath.Join(dir, "sub", ".git", "refs", "main"), "x")
	for _, n := range []string{"a.swp", ".a.swo", "a.swx", "a~", "a.tmp", "b___jb_tmp___"} {
		write(t, filepath.Join(dir, n), "x")
	}
	// Outside the directory, also through a symlink inside it: not followed.
	write(t, filepath.Join(outside, "secret.txt"), "x")
	write(t, filepath.Join(dir, "link", "through.txt"), "x")
	// A name that is not UTF-8 cannot be told in JSON: logged, not reported.
	write(t, filepath.Join(dir, "bad\xffname"), "x")
	rec.quiet(t, dir)

	// A file moved out of the directory is gone from it; one moved in is new.
	write(t, filepath.Join(dir, "leaving.txt"), "x")
	rec.expect(t, "create leaving.txt")
	must(t, os.Rename(filepath.Join(dir, "leaving.txt"), filepath.Join(outside, "left.txt")))
	rec.expect(t, "remove leaving.txt")
	must(t, os.Rename(filepath.Join(outside, "left.txt"), filepath.Join(dir, "back.txt")))
	rec.expect(t, "create back.txt")
	rec.quiet(t, dir)
}

func TestWatchSlowWriterStillReported(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "app.log")
	write(t, name, "")
	rec := start(t, dir)
	// A file written more often than the debounce period is still reported, within
	// the bound on how long a change may wait.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(debounce / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				appendTo(t, name, "line\n")
			}
		}
	})
	c := rec.next(t)
	close(stop)
	wg.Wait()
	if c.Op != tasks.FileWrite || c.Path != "app.log" {
		t.Fatalf("got %+v", c)
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	write(t, file, "x")
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{file, "not a directory"},
	} {
		_, err := filewatch.New(filewatch.Config{Dir: tc.dir, Recorder: &recorder{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s): %v, want an error with %q", tc.dir, err, tc.want)
		}
	}
}

func TestCloseWithoutRun(t *testing.T) {
	w, err := filewatch.New(filewatch.Config{Dir: t.TempDir(), Recorder: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil { // returns at once: closed
		t.Fatal(err)
	}
}

func TestIgnored(t *testing.T) {
	for p, want := range map[string]bool{
		"a.txt": false, ".git": true, ".git/HEAD": true, "x/.hg/store": true, "src/.svn": true,
		"a.swp": true, ".a.txt.swp": true, ".a.txt.swo": true, "a.swx": true, "a.swf": false,
		"a.swift": false, "a~": true, ".#a": true, "#a#": true, "#a": false, "4913": true,
		"x/4913": true, "a.tmp": true, "a.tmpl": false, "gitignore": false, ".gitignore": false,
	} {
		if got := filewatch.Ignored(p); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestWatchFlushesAtShutdown stops a watch while a change still waits out its
// debounce: the change is reported all the same, not dropped.
func TestWatchFlushesAtShutdown(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{changes: make(chan tasks.FileChange, 10)}
	w, err := filewatch.New(filewatch.Config{Dir: dir, Recorder: rec, Debounce: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	handled := make(chan string, 10)
	filewatch.SetHandled(w, func(name string) { handled <- filepath.Base(name) })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- w.Run(ctx) }()
	write(t, filepath.Join(dir, "late.txt"), "x")
	select {
	case name := <-handled:
		if name != "late.txt" {
			t.Fatalf("handled %s first", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch saw no event within 5s")
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-rec.changes:
		if c.Op != tasks.FileCreate || c.Path != "late.txt" {
			t.Fatalf("got %+v, want the create of late.txt", c)
		}
	default:
		t.Fatal("the pending change was dropped when the watch stopped")
	}
}

// blockingRecorder holds the watch in its first RecordFileChanges until released,
// then keeps every change it is given.
type blockingRecorder struct {
	blocked, release chan struct{}
	mu               sync.Mutex
	seen             map[string]tasks.FileOp
	changed          chan struct{}
}

func (r *blockingRecorder) RecordFileChanges(_ context.Context, cs []tasks.FileChange) ([]*tasks.Event, error) {
	if r.blocked != nil {
		close(r.blocked)
		r.blocked = nil
		<-r.release
	}
	r.mu.Lock()
	for _, c := range cs {
		r.seen[c.Path] = c.Op
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return make([]*tasks.Event, len(cs)), nil
}

func (r *blockingRecorder) op(p string) tasks.FileOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[p]
}

// TestWatchRescansAfterOverflow makes the kernel drop events (its queue holds
// fs.inotify.max_queued_events) while the watch is held up, among them the creation
// of a directory. After the overflow the watch finds that directory, reports it and
// what is in it, and watches it from then on.
func TestWatchRescansAfterOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip("no inotify queue limit to read:", err)
	}
	var queue int
	if _, err := fmt.Sscan(string(b), &queue); err != nil || queue > 100_000 {
		t.Skipf("inotify queue of %q events: too many to overflow in a test", strings.TrimSpace(string(b)))
	}
	dir := t.TempDir()
	rec := &blockingRecorder{blocked: make(chan struct{}), release: make(chan struct{}),
		seen: map[string]tasks.FileOp{}, changed: make(chan struct{}, 1)}
	w, err := filewatch.New(filewatch.Config{Dir: dir, Recorder: rec, Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	defer func() { cancel(); wg.Wait(); w.Close() }()

	blocked := rec.blocked
	write(t, filepath.Join(dir, "first"), "x")
	<-blocked // the watch now waits in the recorder: inotify's queue fills
	for i := range queue + 1000 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%05d", i)))
		must(t, err)
		must(t, f.Close())
	}
	must(t, os.MkdirAll(filepath.Join(dir, "late", "deeper"), 0o755))
	write(t, filepath.Join(dir, "late", "deeper", "in"), "x")
	close(rec.release)

	waitFor := func(p string, op tasks.FileOp) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for rec.op(p) != op {
			select {
			case <-rec.changed:
			case <-deadline:
				t.Fatalf("%s of %s not reported within 30s (got %q)", op, p, rec.op(p))
			}
		}
	}
	waitFor("late", tasks.FileCreate)
	waitFor("late/deeper/in", tasks.FileCreate)
	write(t, filepath.Join(dir, "late", "deeper", "after"), "x") // watched now
	waitFor("late/deeper/after", tasks.FileCreate)
}
