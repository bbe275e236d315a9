package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// LoadTokens reads and parses the tokens file at path.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

// TokensWatcher reloads a tokens file into an Auth whenever the file changes. It
// watches the file's directory, not the file: editors and deploy tools replace a file
// by renaming another over it, which a watch on the file itself would lose.
type TokensWatcher struct {
	path     string
	auth     *Auth
	logger   *slog.Logger
	onSwap   func(old, next *Tokens)
	watcher  *fsnotify.Watcher
	debounce time.Duration
	last     []byte // the content last read, to skip reloads that change nothing
}

// NewTokensWatcher starts watching the directory of path, then reads the file once
// more into auth. onSwap, if set, is called after each later new set is in force
// (auth has then ended the streams of the tokens it revoked). Run does the reloading. Call it before the
// server takes requests.
func NewTokensWatcher(path string, auth *Auth, logger *slog.Logger, onSwap func(old, next *Tokens)) (*TokensWatcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch tokens file: %w", err)
	}
	// The file's directory, and, when the file is a symlink, its target's: a
	// Kubernetes secret swaps a ..data link beside the file, a link to a file
	// elsewhere changes there. No event names the file itself in either case.
	dirs := []string{filepath.Dir(abs)}
	if target, err := filepath.EvalSymlinks(abs); err == nil && filepath.Dir(target) != dirs[0] {
		dirs = append(dirs, filepath.Dir(target))
	}
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch tokens file's directory: %w", err)
		}
	}
	// Read again now that changes are seen: one made since the caller's LoadTokens
	// would otherwise wait for the next. (Before the server listens: no stream to end.)
	if next, err := LoadTokens(abs); err == nil {
		auth.Swap(next)
	}
	if onSwap == nil {
		onSwap = func(old, next *Tokens) {}
	}
	return &TokensWatcher{path: abs, auth: auth, logger: logger, onSwap: onSwap, watcher: w, debounce: 100 * time.Millisecond}, nil
}

// Run reloads the file after each change, a short while after the last of a burst,
// until ctx ends; then it stops watching. A file that does not parse leaves the set in
// force as it is, and the log says why.
func (w *TokensWatcher) Run(ctx context.Context) {
	defer w.watcher.Close()
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.watcher.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.debounce)
			} else {
				timer.Reset(w.debounce)
			}
			fire = timer.C
		case err, ok := <-w.watcher.Errors:
			if !ok {
				return
			}
			w.logger.Error("watch tokens file", "path", w.path, "err", err)
		case <-fire:
			fire = nil
			w.reload()
		}
	}
}

// reload reads the file after any change in a watched directory: a change to another
// file there leaves the content as it was, and nothing happens.
func (w *TokensWatcher) reload() {
	data, err := os.ReadFile(w.path)
	if err == nil && bytes.Equal(data, w.last) {
		return
	}
	next, err := LoadTokens(w.path)
	if err != nil {
		w.logger.Error("tokens file not reloaded: the tokens in force stay", "path", w.path, "err", err)
		return
	}
	w.last = data
	old, ended := w.auth.Swap(next)
	w.logger.Info("tokens file reloaded", "path", w.path, "tokens", next.Len())
	if ended > 0 {
		w.logger.Info("closed the streams of revoked tokens", "streams", ended)
	}
	w.onSwap(old, next)
}
