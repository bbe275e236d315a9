package tasks

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// FileOp says what happened to a watched file.
type FileOp string

// The file operations of a file_changed event.
const (
	FileWrite  FileOp = "write"
	FileCreate FileOp = "create"
	FileRemove FileOp = "remove"
	FileRename FileOp = "rename"
)

// FileOps lists every file operation.
var FileOps = []FileOp{FileWrite, FileCreate, FileRemove, FileRename}

// MaxFilePath bounds the path of a file change, in bytes (Linux's PATH_MAX).
const MaxFilePath = 4096

// FileChange is what a file_changed event carries instead of a task: Path, relative to
// the watched directory Dir with forward slashes, had Op done to it. A rename within
// Dir names the new path in Path and the old one in From.
type FileChange struct {
	Dir  string `json:"dir"`
	Path string `json:"path"`
	Op   FileOp `json:"op"`
	From string `json:"from,omitempty"`
}

// Validate checks c: a known op, an absolute Dir, and paths that stay inside it.
func (c *FileChange) Validate() error {
	if !slices.Contains(FileOps, c.Op) {
		return Errorf(EInvalid, "op", "op must be among %s, got %q", join(FileOps), c.Op)
	}
	if c.Dir == "" || !filepath.IsAbs(c.Dir) || !utf8.ValidString(c.Dir) || len(c.Dir) > MaxFilePath {
		return Errorf(EInvalid, "dir", "dir must be an absolute path of at most %d bytes of UTF-8, got %q", MaxFilePath, c.Dir)
	}
	if err := checkRelPath("path", c.Path); err != nil {
		return err
	}
	switch {
	case c.Op == FileRename && c.From == "":
		return Errorf(EInvalid, "from", "a rename needs the path it came from")
	case c.Op != FileRename && c.From != "":
		return Errorf(EInvalid, "from", "only a rename has a from path, not a %s", c.Op)
	case c.From != "":
		return checkRelPath("from", c.From)
	}
	return nil
}

// checkRelPath checks that p is a clean, slash-separated path that stays inside the
// directory it is relative to.
func checkRelPath(field, p string) error {
	switch {
	case p == "":
		return Errorf(EInvalid, field, "%s must not be empty", field)
	case len(p) > MaxFilePath:
		return Errorf(EInvalid, field, "%s must be at most %d bytes", field, MaxFilePath)
	case !utf8.ValidString(p) || strings.ContainsRune(p, 0):
		return Errorf(EInvalid, field, "%s must be UTF-8 without NUL bytes", field)
	case path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return Errorf(EInvalid, field, "%s must be a clean path inside the watched directory, got %q", field, p)
	}
	return nil
}

// FileWatchActor is the actor of file_changed events: a watcher cannot know who
// changed a file.
const FileWatchActor = "file_watch"

// RecordFileChange appends a file_changed event for c to the log, with source
// file_watch, in one write like every other change, and returns it.
func (s *Service) RecordFileChange(ctx context.Context, c FileChange) (*Event, error) {
	events, err := s.RecordFileChanges(ctx, []FileChange{c})
	if err != nil {
		return nil, err
	}
	return events[0], nil
}

// RecordFileChanges is RecordFileChange for several changes at once, in order, in one
// write: a checkout that touches a thousand files costs one transaction, not a
// thousand. If one of cs is invalid, none is recorded.
func (s *Service) RecordFileChanges(ctx context.Context, cs []FileChange) ([]*Event, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	now := NewTime(s.now())
	events := make([]*Event, len(cs))
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			return nil, err
		}
		c := cs[i]
		events[i] = &Event{Type: EventFileChanged, Source: SourceFileWatch, Actor: FileWatchActor, Time: now, File: &c}
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		for _, e := range events {
			if err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record %d file changes: %w", len(cs), err)
	}
	return events, nil
}
