package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of notes. A note's text is counted after trimming.
const (
	MaxNoteText      = 10000    // characters
	MaxNoteTextBytes = 32 << 10 // bytes
	MaxNotesPerTask  = 10000
)

// Note is one entry of a task's thread of notes: what someone said about the task,
// kept with it, oldest first. A note is never changed; it is deleted with its task,
// and is not part of the event log, so pruning the log leaves it alone. Its id is
// unique among all notes, and a task's notes have ids in the order they were added.
type Note struct {
	ID     int64  `json:"id"`
	TaskID int64  `json:"task_id"`
	Author string `json:"author"`
	Time   Time   `json:"time"`
	Text   string `json:"text"`
}

// NoteQuery selects notes for a Store: up to Limit notes of the task TaskID with an
// id above After.
type NoteQuery struct {
	TaskID int64
	After  int64
	Limit  int
}

// NotePage is one page of Notes. NextCursor is empty on the last page.
type NotePage struct {
	Notes      []*Note `json:"notes"`
	NextCursor string  `json:"next_cursor"`
}

// NoteText returns text trimmed, or an invalid_argument error for field when it breaks
// a rule of a note's text: not empty, at most MaxNoteText characters and
// MaxNoteTextBytes bytes, UTF-8 without NUL bytes.
func NoteText(field, text string) (string, error) {
	text = strings.TrimSpace(text)
	switch n := utf8.RuneCountInString(text); {
	case text == "":
		return "", Errorf(EInvalid, field, "%s must not be empty", field)
	case len(text) > MaxNoteTextBytes:
		return "", Errorf(EInvalid, field, "%s must be at most %d bytes, got %d", field, MaxNoteTextBytes, len(text))
	case n > MaxNoteText:
		return "", Errorf(EInvalid, field, "%s must be at most %d characters, got %d", field, MaxNoteText, n)
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return "", Errorf(EInvalid, field, "%s must be UTF-8 without NUL bytes", field)
	}
	return text, nil
}

// AddNote adds a note with text to the thread of the task with id, by the actor of
// ctx, and appends its task_note_added event, in one write. A note is not a change of
// the task: its version stays, so no one's If-Match fails because of it.
func (s *Service) AddNote(ctx context.Context, id int64, text string) (*Note, error) {
	if id < 1 {
		return nil, Errorf(EInvalid, "task_id", "task_id must be positive, got %d", id)
	}
	text, err := NoteText("text", text)
	if err != nil {
		return nil, err
	}
	actor := ActorFrom(ctx)
	var n *Note
	err = s.store.Write(ctx, func(tx Tx) error {
		t, err := tx.Task(id)
		if err != nil {
			return err
		}
		n, err = s.addNote(tx, t, text, actor)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("add a note to task %d: %w", id, err)
	}
	return n, nil
}

// addNote adds a note with text, which NoteText has checked, to t inside tx, with
// its event; t is the task as it is in tx, read through tx.Task. A change that comes
// with a note calls it after the change, in the change's transaction, with the task
// the change made.
func (s *Service) addNote(tx Tx, t *Task, text string, actor Actor) (*Note, error) {
	count, err := tx.CountNotes(t.ID)
	if err != nil {
		return nil, err
	}
	if count >= MaxNotesPerTask {
		return nil, Errorf(EConflict, "", "task %d has %d notes, as many as a task may have", t.ID, count)
	}
	n := &Note{TaskID: t.ID, Author: actor.Name, Time: NewTime(s.now()), Text: text}
	if err := tx.AddNote(n); err != nil {
		return nil, err
	}
	err = tx.AppendEvent(&Event{
		Type: EventTaskNoteAdded, TaskID: t.ID, Source: actor.Source, Actor: actor.Name,
		Time: n.Time, Task: t, AddedNote: n,
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Notes returns a page of up to limit (1 to MaxListLimit) notes of the task with id,
// oldest first, after the page that gave cursor ("" for the first). A task that does
// not exist is an ENotFound error.
func (s *Service) Notes(ctx context.Context, id int64, cursor string, limit int) (NotePage, error) {
	if id < 1 {
		return NotePage{}, Errorf(EInvalid, "task_id", "task_id must be positive, got %d", id)
	}
	if limit < 1 || limit > MaxListLimit {
		return NotePage{}, Errorf(EInvalid, "limit", "limit must be 1 to %d, got %d", MaxListLimit, limit)
	}
	q := NoteQuery{TaskID: id, Limit: limit + 1} // one more, to learn whether there is a next page
	if cursor != "" {
		after, err := decodeCursor(cursor)
		if err != nil {
			return NotePage{}, err
		}
		q.After = after
	}
	if _, err := s.store.Task(ctx, id); err != nil {
		return NotePage{}, fmt.Errorf("notes of task %d: %w", id, err)
	}
	notes, err := s.store.Notes(ctx, q)
	if err != nil {
		return NotePage{}, fmt.Errorf("notes of task %d: %w", id, err)
	}
	page := NotePage{Notes: notes}
	if len(notes) == q.Limit {
		page.Notes = notes[:limit]
		page.NextCursor = encodeCursor(page.Notes[limit-1].ID)
	}
	return page, nil
}

// noteEvent is the JSON of a task_note_added event: the event's fields, with "note"
// the note itself where a change's event has its note's text.
type noteEvent struct {
	*Event
	Note *Note `json:"note"`
}

// wire returns what e's JSON is made from.
func (e *Event) wire() any {
	if e.AddedNote != nil {
		return noteEvent{Event: e, Note: e.AddedNote}
	}
	return e
}

// UnmarshalJSON implements json.Unmarshaler, for readers of the log: "note" is the
// note itself in a task_note_added event (AddedNote), and the text of a change's note
// in any other (Note).
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event // without this method
	v := struct {
		*plain
		Note json.RawMessage `json:"note"`
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Note == nil || string(v.Note) == "null" {
		return nil
	}
	if e.Type == EventTaskNoteAdded {
		e.AddedNote = &Note{}
		return json.Unmarshal(v.Note, e.AddedNote)
	}
	return json.Unmarshal(v.Note, &e.Note)
}
