// Package filewatch turns changes to the files under a directory into file_changed
// events. It watches the whole tree with fsnotify, subdirectories created later
// included, ignores version-control directories and editor temp files, and debounces
// what a save or a burst of writes does to one path into one change.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"taskhub/tasks"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a path must stay quiet before its change is reported.
const DefaultDebounce = 150 * time.Millisecond

// maxWaitFactor bounds how long a path that never stays quiet (a log being appended
// to) waits: at most this many debounce periods after its first change.
const maxWaitFactor = 10

// renamePairing is how long Run waits after a Rename for the Create of the same move.
// inotify queues the two together, so it comes at once when it comes at all.
const renamePairing = 50 * time.Millisecond

// finalFlushTimeout bounds the recording of what is pending when Run ends.
const finalFlushTimeout = 5 * time.Second

// Recorder records file changes, in order, all or none: tasks.Service is one.
type Recorder interface {
	RecordFileChanges(ctx context.Context, cs []tasks.FileChange) ([]*tasks.Event, error)
}

// Config configures a Watcher.
type Config struct {
	Dir      string        // the directory whose tree is watched
	Recorder Recorder      // where changes go
	Logger   *slog.Logger  // nil discards
	Debounce time.Duration // 0 means DefaultDebounce
}

// Watcher reports the changes under one directory. New sets up the watches; Run
// reports until its context ends or Close is called.
type Watcher struct {
	root     string // absolute, symlinks resolved
	rec      Recorder
	logger   *slog.Logger
	debounce time.Duration
	fsw      *fsnotify.Watcher
	handled  func(name string) // if set (by tests, before Run): called with each event's path once folded in

	// Owned by Run.
	dirs       map[string]bool    // watched directories, relative ("" is the root)
	pending    map[string]*change // debounced changes by relative path
	order      int64              // counts first sightings, to report in that order
	lastRename string             // the path of a Rename just seen, which a Create may pair with
	selfMoves  map[string]string  // renamed watched dirs whose own watch is to report the move: old → new ("" outside)

	mu      sync.Mutex
	started bool
	done    chan struct{} // closed when Run returns
}

// before is what a path was before its first change in a debounce window.
type before int

const (
	absent   before = iota // it was created
	existed                // it was written, removed or renamed away
	replaced               // a temp file was renamed onto it: saved, most likely
)

// change is what is known of one path's debounced change.
type change struct {
	before   before
	from     string // the path it was renamed from, within the tree
	order    int64
	first    time.Time
	deadline time.Time
}

// New checks that dir is a directory and watches its tree. It fails when dir is not a
// directory or cannot be watched; subdirectories that cannot be are logged and skipped.
func New(cfg Config) (*Watcher, error) {
	root, err := filepath.Abs(cfg.Dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a directory", cfg.Dir)
	}
	if cfg.Recorder == nil {
		return nil, errors.New("filewatch: no Recorder")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	debounce := cfg.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	w := &Watcher{
		root: root, rec: cfg.Recorder, logger: logger, debounce: debounce, fsw: fsw,
		dirs: map[string]bool{}, pending: map[string]*change{}, selfMoves: map[string]string{},
		done: make(chan struct{}),
	}
	if err := fsw.Add(root); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	w.dirs[""] = true
	w.addTree("", time.Time{})
	return w, nil
}

// Dir returns the watched directory: absolute, with symlinks resolved.
func (w *Watcher) Dir() string { return w.root }

// Run reports changes until ctx ends or Close is called. Changes still waiting for
// their debounce then are reported at once, so that none seen is lost. Errors of the
// watch are logged, not returned.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("filewatch: Run called twice")
	}
	w.started = true
	w.mu.Unlock()
	defer close(w.done)
	defer w.fsw.Close()
	defer w.flushAll(ctx)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			w.handle(ev, time.Now())
			if w.handled != nil {
				w.handled(ev.Name)
			}
			if !w.pairRename() {
				return nil
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.logger.Warn("file events were lost: too many changes at once; changes to files already there then are not reported",
					"dir", w.root, "err", err)
				w.rescan(time.Now())
			} else {
				w.logger.Error("watch files", "dir", w.root, "err", err)
			}
		case now := <-timer.C:
			w.flush(ctx, now.Add(w.debounce/2))
		}
		if next, ok := w.nextDeadline(); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
	}
}

// Close stops the watch and waits for Run, if it was started, to return.
func (w *Watcher) Close() error {
	err := w.fsw.Close()
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.done
	}
	return err
}

// abs returns the path on disk of p, a path relative to the root as rel returns it.
func (w *Watcher) abs(p string) string { return filepath.Join(w.root, filepath.FromSlash(p)) }

// rel returns name relative to the root with forward slashes, and whether it is a
// path inside the tree that is reported at all.
func (w *Watcher) rel(name string) (string, bool) {
	r, err := filepath.Rel(w.root, name)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	r = filepath.ToSlash(r)
	return r, !Ignored(r)
}

// handle folds one fsnotify event into the pending changes.
func (w *Watcher) handle(ev fsnotify.Event, now time.Time) {
	// fsnotify reports a rename within the tree as a Rename of the old path at once
	// followed by a Create of the new one (inotify's MOVED_FROM, MOVED_TO); a Rename
	// that nothing follows closely was a move out of the tree.
	lastRename := w.lastRename
	w.lastRename = ""
	r, err := filepath.Rel(w.root, ev.Name)
	if err != nil || r == "." {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.logger.Warn("the watched directory went away; its changes are no longer reported", "dir", w.root)
		}
		return
	}
	if r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return
	}
	p := filepath.ToSlash(r)
	ignored := Ignored(p)
	switch {
	case ev.Has(fsnotify.Create):
		if lastRename != "" {
			w.moved(lastRename, p, ignored, now)
			if _, ok := w.selfMoves[lastRename]; ok {
				// A directory renamed within the tree: watch it under its new name once
				// its old watch has reported the move and is gone (see below).
				w.selfMoves[lastRename] = p
				return
			}
		} else if !ignored {
			w.touch(p, absent, now)
		}
		if !ignored {
			w.addIfDir(p, lastRename == "", now)
		}
	case ev.Has(fsnotify.Rename):
		if to, ok := w.selfMoves[p]; ok {
			// A renamed directory's own watch reporting the move its parent did; the
			// watch is gone now, so the new name can be watched.
			delete(w.selfMoves, p)
			if to != "" && !Ignored(to) {
				w.addIfDir(to, false, now)
			}
			return
		}
		w.lastRename = p
		if w.dirs[p] {
			w.selfMoves[p] = ""
		}
		w.forgetDirs(p)
		if !ignored {
			w.touch(p, existed, now)
		}
	case ev.Has(fsnotify.Remove):
		w.forgetDirs(p)
		if !ignored {
			w.touch(p, existed, now)
		}
	case ev.Has(fsnotify.Write):
		if !ignored {
			w.touch(p, existed, now)
		}
	}
	// Chmod alone changes no content: not reported.
}

// pairRename, after a Rename, handles the events that come right after it until
// one is not a Rename, so that the Create of the same move pairs with it; a Rename
// that nothing follows soon was a move out of the tree. It returns false when the
// watch was closed.
func (w *Watcher) pairRename() bool {
	for w.lastRename != "" {
		select {
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return false
			}
			w.handle(ev, time.Now())
		case <-time.After(renamePairing):
			w.lastRename = ""
		}
	}
	return true
}

// touch notes a change to p, whose state before it was b unless an earlier change in
// the window says otherwise, and pushes its deadline back.
func (w *Watcher) touch(p string, b before, now time.Time) *change {
	c, ok := w.pending[p]
	if !ok {
		w.order++
		c = &change{before: b, order: w.order, first: now}
		w.pending[p] = c
	}
	c.deadline = now.Add(w.debounce)
	if limit := c.first.Add(maxWaitFactor * w.debounce); c.deadline.After(limit) {
		c.deadline = limit
	}
	return c
}

// moved handles a rename of from (already noted as gone) to to within the tree.
func (w *Watcher) moved(from, to string, toIgnored bool, now time.Time) {
	if toIgnored {
		return // moved to a temp or ignored name: from is gone, as noted
	}
	src := w.pending[from]
	if Ignored(from) || (src != nil && src.before == absent) {
		// A file written under a temp name and renamed onto its target: a save.
		delete(w.pending, from)
		if _, ok := w.pending[to]; !ok {
			w.touch(to, replaced, now)
		} else {
			w.touch(to, existed, now)
		}
		return
	}
	orig := from
	if src != nil && src.from != "" {
		orig = src.from // renamed twice within the window
	}
	delete(w.pending, from)
	c := w.touch(to, absent, now)
	c.from = orig
}

// flush reports the changes whose deadline is until or earlier, in the order they
// were first seen, so a directory comes before the files created in it. Run passes
// half a debounce period from now, so that the many paths of a burst (a checkout,
// say) share a few flushes and transactions instead of taking one each.
func (w *Watcher) flush(ctx context.Context, until time.Time) {
	var due []string
	for p, c := range w.pending {
		if !c.deadline.After(until) {
			due = append(due, p)
		}
	}
	slices.SortFunc(due, func(a, b string) int { return int(w.pending[a].order - w.pending[b].order) })
	var changes []tasks.FileChange
	for _, p := range due {
		c := w.pending[p]
		delete(w.pending, p)
		fc, ok := w.outcome(p, c)
		if !ok {
			continue
		}
		if err := fc.Validate(); err != nil {
			// A name that is not UTF-8, say: it cannot be told in JSON.
			w.logger.Warn("a file change cannot be reported", "dir", w.root, "path", p, "err", err)
			continue
		}
		changes = append(changes, fc)
	}
	if _, err := w.rec.RecordFileChanges(ctx, changes); err != nil && ctx.Err() == nil {
		w.logger.Error("record file changes", "dir", w.root, "changes", len(changes), "err", err)
	}
}

// outcome decides what a debounced change to p was, from what p was before the window
// and whether it is there now.
func (w *Watcher) outcome(p string, c *change) (tasks.FileChange, bool) {
	_, err := os.Lstat(w.abs(p))
	exists := err == nil
	fc := tasks.FileChange{Dir: w.root, Path: p}
	switch {
	case exists && c.from != "":
		fc.Op, fc.From = tasks.FileRename, c.from
	case exists && c.before == absent:
		fc.Op = tasks.FileCreate
	case exists:
		fc.Op = tasks.FileWrite
	case c.before == absent && c.from == "":
		return fc, false // created and gone again within the window
	default:
		fc.Op = tasks.FileRemove
	}
	return fc, true
}

// flushAll, as Run ends, takes in the events the watch has ready and reports every
// pending change, whatever its deadline.
func (w *Watcher) flushAll(ctx context.Context) {
	for drained := false; !drained; {
		select {
		case ev, ok := <-w.fsw.Events:
			if ok {
				w.handle(ev, time.Now())
			} else {
				drained = true
			}
		default:
			drained = true
		}
	}
	if len(w.pending) == 0 {
		return
	}
	var last time.Time
	for _, c := range w.pending {
		if c.deadline.After(last) {
			last = c.deadline
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
	defer cancel()
	w.flush(ctx, last)
}

func (w *Watcher) nextDeadline() (time.Time, bool) {
	var next time.Time
	for _, c := range w.pending {
		if next.IsZero() || c.deadline.Before(next) {
			next = c.deadline
		}
	}
	return next, !next.IsZero()
}

// addIfDir watches p and the tree under it when p is a directory (not a symlink to
// one: links are not followed out of the tree). When report is set, what is already
// in it is reported as created: it may have been made before the watch was in place.
func (w *Watcher) addIfDir(p string, report bool, now time.Time) {
	fi, err := os.Lstat(w.abs(p))
	if err != nil || !fi.IsDir() {
		return
	}
	if err := w.fsw.Add(w.abs(p)); err != nil {
		w.logger.Warn("cannot watch a directory; changes in it are not reported", "dir", w.root, "path", p, "err", err)
		return
	}
	w.dirs[p] = true
	var at time.Time
	if report {
		at = now
	}
	w.addTree(p, at)
}

// addTree watches every directory under the watched directory p. With a non-zero
// now, each entry found is noted as created at now.
func (w *Watcher) addTree(p string, now time.Time) {
	start := w.abs(p)
	filepath.WalkDir(start, func(name string, d fs.DirEntry, err error) error {
		if name == start {
			return nil
		}
		if err != nil {
			w.logger.Warn("cannot read a directory; changes in it are not reported", "dir", w.root, "path", name, "err", err)
			return nil
		}
		r, ok := w.rel(name)
		if !ok {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !now.IsZero() {
			w.touch(r, absent, now)
		}
		if d.IsDir() {
			if err := w.fsw.Add(name); err != nil {
				w.logger.Warn("cannot watch a directory; changes in it are not reported", "dir", w.root, "path", r, "err", err)
				return filepath.SkipDir
			}
			w.dirs[r] = true
		}
		return nil
	})
}

// rescan, after the kernel dropped events (its queue overflowed), forgets the
// watched directories that are gone and watches those that appeared meanwhile,
// reporting each, and what is in it, as created. Changes to files in directories
// watched all along cannot be told from the tree, and are not reported.
func (w *Watcher) rescan(now time.Time) {
	for d := range w.dirs {
		if d == "" {
			continue
		}
		if fi, err := os.Lstat(w.abs(d)); err != nil || !fi.IsDir() {
			w.forgetDirs(d)
			_ = w.fsw.Remove(w.abs(d)) // gone with it, most likely
			w.touch(d, existed, now)
		}
	}
	filepath.WalkDir(w.root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == w.root || !d.IsDir() {
			return nil
		}
		r, ok := w.rel(name)
		switch {
		case !ok:
			return filepath.SkipDir
		case w.dirs[r]:
			return nil
		}
		w.touch(r, absent, now)
		w.addIfDir(r, true, now)
		return filepath.SkipDir // addIfDir watched the tree under it
	})
}

// forgetDirs drops the watches of p and the directories under it, when p was a
// watched directory that was removed or renamed away. The watch of p itself goes with
// its own event; those under it would report stale paths.
func (w *Watcher) forgetDirs(p string) {
	if !w.dirs[p] {
		return
	}
	for d := range w.dirs {
		if d == p || strings.HasPrefix(d, p+"/") {
			delete(w.dirs, d)
			if d != p {
				_ = w.fsw.Remove(w.abs(d))
			}
		}
	}
}
