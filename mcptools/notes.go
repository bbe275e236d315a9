package mcptools

import (
	"context"
	"fmt"
	"strings"

	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
)

// noteSchema describes a note as tools return it.
func noteSchema() map[string]any {
	return result(map[string]any{
		"id":      map[string]any{"type": "integer"},
		"task_id": map[string]any{"type": "integer"},
		"author":  map[string]any{"type": "string"},
		"time":    map[string]any{"type": "string"},
		"text":    map[string]any{"type": "string"},
	}, "id", "task_id", "author", "time", "text")
}

// noteTools are the tools of a task's notes. Adding a note is neither destructive
// (the thread only grows) nor idempotent (each call adds one).
func (s *Server) noteTools() []tool {
	return []tool{
		{newTool("add_note", "Add note",
			"Add a note to a task's thread: what you found, decided or left undone, for whoever works on it next. Notes are kept in order and never changed; adding one does not change the task's version.",
			hints{}, obj(map[string]any{
				"task_id": id("the task to add the note to"),
				"text": map[string]any{"type": "string", "minLength": 1, "maxLength": tasks.MaxNoteText,
					"description": fmt.Sprintf("the note, in Markdown; 1 to %d characters (at most %d KiB)", tasks.MaxNoteText, tasks.MaxNoteTextBytes>>10)},
			}, "task_id", "text"), noteSchema()), s.addNote},
		{newTool("list_notes", "List notes",
			"List a task's notes, oldest first. Pages: pass next_cursor back as cursor.",
			hints{readOnly: true, idempotent: true}, obj(map[string]any{
				"task_id": id("the task whose notes to list"),
				"limit":   map[string]any{"type": "integer", "minimum": 1, "maximum": tasks.MaxListLimit, "description": fmt.Sprintf("page size, default %d", tasks.DefaultListLimit)},
				"cursor":  str("next_cursor of the previous page", 0),
			}, "task_id"), result(map[string]any{
				"notes":       map[string]any{"type": "array", "items": noteSchema()},
				"next_cursor": map[string]any{"type": "string", "description": "pass as cursor for the next page; empty on the last"},
			}, "notes", "next_cursor")), s.listNotes},
	}
}

func (s *Server) addNote(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("add_note", err), nil
	}
	var id int64
	var text string
	_, idErr := get(a, "task_id", &id)
	_, textErr := get(a, "text", &text)
	if err := firstError([]error{idErr, textErr}); err != nil {
		return s.toolError("add_note", err), nil
	}
	n, err := s.svc.AddNote(s.actor(ctx), id, text)
	if err != nil {
		return s.toolError("add_note", taskField(err)), nil
	}
	return mcp.NewToolResultStructured(n, fmt.Sprintf("Added note %d to task %d", n.ID, n.TaskID)), nil
}

func (s *Server) listNotes(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("list_notes", err), nil
	}
	var id int64
	limit := tasks.DefaultListLimit
	var cursor string
	_, idErr := get(a, "task_id", &id)
	_, limitErr := get(a, "limit", &limit)
	_, cursorErr := get(a, "cursor", &cursor)
	if err := firstError([]error{idErr, limitErr, cursorErr}); err != nil {
		return s.toolError("list_notes", err), nil
	}
	page, err := s.svc.Notes(ctx, id, cursor, limit)
	if err != nil {
		return s.toolError("list_notes", taskField(err)), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d notes on task %d", len(page.Notes), id)
	for _, n := range page.Notes {
		fmt.Fprintf(&b, "\n\nnote %d by %s at %s:\n%s", n.ID, n.Author, n.Time, n.Text)
	}
	if page.NextCursor != "" {
		fmt.Fprintf(&b, "\n\nmore with cursor %s", page.NextCursor)
	}
	return mcp.NewToolResultStructured(page, b.String()), nil
}

// taskField names task_id in the errors about the task as a whole: it does not exist,
// or it has as many notes as it may.
func taskField(err error) error {
	err = withField(err, "task_id")
	if e, ok := asError(err); ok && e.Code == tasks.EConflict && e.Field == "" {
		return &tasks.Error{Code: e.Code, Message: e.Message, Field: "task_id"}
	}
	return err
}
