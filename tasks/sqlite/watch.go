package sqlite

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// walSettle is how long after a write to the WAL a commit by another process is
// surely visible.
const walSettle = 25 * time.Millisecond

// watchWAL makes Committed fire when the database's write-ahead log changes, which is
// how a commit by another process (a `taskhub mcp` on the same file) reaches this
// one's readers at once. It watches the directory, not the file: SQLite deletes and
// recreates the -wal file. The goroutine it starts ends when Close closes the watcher.
func (db *DB) watchWAL(path string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", filepath.Dir(path), err)
	}
	db.watcher = w
	wal := path + "-wal"
	go func() {
		defer close(db.watchDone)
		// Another process writes its commit to the WAL before it updates the index
		// that makes the commit visible to readers, which no file event reports: so
		// signal again a moment after the last write.
		var again <-chan time.Time
		for {
			select {
			case <-again:
				again = nil
				db.signalCommitted()
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Name == wal && ev.Has(fsnotify.Write|fsnotify.Create) {
					db.signalCommitted()
					if again == nil {
						again = time.After(walSettle)
					}
				}
			case _, ok := <-w.Errors:
				// An overflowed or failed watch loses signals, not data: readers also
				// poll.
				if !ok {
					return
				}
			}
		}
	}()
	return nil
}
