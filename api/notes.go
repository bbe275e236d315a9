package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/labstack/echo/v4"
)

// addNote is POST /api/tasks/{id}/notes. A note has no URL of its own, so the answer
// has no Location: the note is in the thread it was added to.
func (h *handlers) addNote(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := requireJSON(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	text, err := decodeNote(c.Request().Body)
	if err != nil {
		return err
	}
	n, err := h.svc.AddNote(withActor(c), id, text)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, n)
}

// listNotes is GET /api/tasks/{id}/notes.
func (h *handlers) listNotes(c echo.Context) error {
	q, err := params(c, broadcaster.Params{Singles: []string{"limit", "cursor"}})
	if err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", tasks.DefaultListLimit)
	if err != nil {
		return err
	}
	page, err := h.svc.Notes(c.Request().Context(), id, q.Get("cursor"), int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// decodeNote reads the body of a new note, {"text": "…"}: only its shape; the rules of
// the text are the Service's.
func decodeNote(body io.Reader) (string, error) {
	var text *string
	err := decodeObject(body, func(name string, v json.RawMessage) error {
		if name != "text" {
			return invalid(name, fmt.Sprintf("unknown field %q; a note has only text", name))
		}
		if err := json.Unmarshal(v, &text); err != nil || text == nil {
			return invalid(name, "text must be a string")
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if text == nil {
		return "", invalid("text", "text is required")
	}
	return *text, nil
}
