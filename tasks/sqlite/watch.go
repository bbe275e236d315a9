package sqlite

import (
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

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
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Name == wal && ev.Has(fsnotify.Write|fsnotify.Create) {
					db.signalCommitted()
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
