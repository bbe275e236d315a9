package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"taskhub/tasks/filewatch"
)

// dirsFlag is the repeatable --watch: each value may also be a comma list (as its
// environment form is). Each item must be an existing directory, and no two may
// overlap: a change would be reported twice.
type dirsFlag []string

func (l *dirsFlag) String() string { return strings.Join(*l, ",") }

func (l *dirsFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		dir, err := filepath.Abs(part)
		if err == nil {
			dir, err = filepath.EvalSymlinks(dir)
		}
		if err != nil {
			return fmt.Errorf("cannot watch %s: %w", part, err)
		}
		if fi, err := os.Stat(dir); err != nil {
			return fmt.Errorf("cannot watch %s: %w", part, err)
		} else if !fi.IsDir() {
			return fmt.Errorf("cannot watch %s: not a directory", part)
		}
		for _, other := range *l {
			if inside(dir, other) || inside(other, dir) {
				return fmt.Errorf("cannot watch %s: it overlaps %s, also watched", part, other)
			}
		}
		*l = append(*l, dir)
	}
	return nil
}

// inside reports whether dir is base or under it.
func inside(dir, base string) bool {
	rel, err := filepath.Rel(base, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// startWatchers watches each of dirs, reporting to rec, in group until ctx ends.
func startWatchers(ctx context.Context, group *sync.WaitGroup, dirs []string, rec filewatch.Recorder, logger *slog.Logger) error {
	for _, dir := range dirs {
		w, err := filewatch.New(filewatch.Config{Dir: dir, Recorder: rec, Logger: logger})
		if err != nil {
			return err
		}
		group.Go(func() { w.Run(ctx) })
		logger.Info("watching files", "dir", w.Dir())
	}
	return nil
}
