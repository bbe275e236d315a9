package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/labstack/echo/v4"
)

type handlers struct {
	svc     *tasks.Service
	waits   *broadcaster.Waits          // nil: GET /api/events does not wait
	healthy func(context.Context) error // nil: the database is always there
}

// Anonymous is who REST changes are attributed to when the server has no tokens.
const Anonymous = "anonymous"

// withActor attributes the request's changes to its token's name, or to Anonymous.
func withActor(c echo.Context) context.Context {
	ctx := c.Request().Context()
	name, ok := Caller(ctx)
	if !ok {
		name = Anonymous
	}
	return tasks.WithActor(ctx, tasks.Actor{Source: tasks.SourceREST, Name: name})
}

func (h *handlers) health(c echo.Context) error {
	if h.healthy != nil {
		if err := h.healthy(c.Request().Context()); err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the database does not answer: " + err.Error()}
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (h *handlers) createTask(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	if err := requireJSON(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	u, err := decodeUpdate(c.Request().Body)
	if err != nil {
		return err
	}
	t, err := h.svc.Create(withActor(c), u)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/tasks/%d", t.ID))
	return writeTask(c, http.StatusCreated, t)
}

func (h *handlers) getTask(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	t, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return writeTask(c, http.StatusOK, t)
}

func (h *handlers) updateTask(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	version, err := ifMatch(c.Request())
	if err != nil {
		return err
	}
	if err := requireJSON(c.Request(), "application/merge-patch+json", echo.MIMEApplicationJSON); err != nil {
		return err
	}
	u, err := decodeUpdate(c.Request().Body)
	if err != nil {
		return err
	}
	t, err := h.svc.Update(withActor(c), id, version, u)
	if err != nil {
		return err
	}
	return writeTask(c, http.StatusOK, t)
}

func (h *handlers) deleteTask(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	version, err := ifMatch(c.Request())
	if err != nil {
		return err
	}
	if err := h.svc.Delete(withActor(c), id, version); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handlers) listTasks(c echo.Context) error {
	q, err := params(c, broadcaster.Params{
		Lists:   []string{"status"},
		Singles: []string{"assignee", "project", "label", "parent_id", "q", "limit", "cursor"},
	})
	if err != nil {
		return err
	}
	f := tasks.Filter{
		Assignee: q.Get("assignee"), Project: q.Get("project"), Label: q.Get("label"),
		Text: q.Get("q"), Cursor: q.Get("cursor"),
	}
	for _, s := range q["status"] {
		st, err := tasks.ParseStatus("status", s)
		if err != nil {
			return err
		}
		f.Statuses = append(f.Statuses, st)
	}
	if q.Has("parent_id") {
		id, err := intParam(q, "parent_id", 0)
		if err != nil {
			return err
		}
		f.ParentID = &id
	}
	limit, err := intParam(q, "limit", tasks.DefaultListLimit)
	if err != nil {
		return err
	}
	f.Limit = int(limit)
	page, err := h.svc.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (h *handlers) taskEvents(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	events, err := h.svc.TaskEvents(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"events": events})
}

func (h *handlers) events(c echo.Context) error {
	f, q, err := broadcaster.ParseFilterQuery(c.Request().URL.RawQuery, StreamVocabulary(), "after", "limit", "wait")
	if err != nil {
		return err
	}
	after, err := intParam(q, "after", 0)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", tasks.DefaultEventsLimit)
	if err != nil {
		return err
	}
	wait, err := waitParam(q)
	if err != nil {
		return err
	}
	return h.poll(c, after, f, int(limit), wait)
}

// writeTask sends t with its version as ETag, for If-Match on the next change.
func writeTask(c echo.Context, status int, t *tasks.Task) error {
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(status, t)
}

func etag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

// ifMatch returns the version an If-Match header asks for: 0 when there is none or it
// is "*" (any current version). TaskHub's ETags are strong, so a weak tag is an error.
func ifMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	if v, ok := strings.CutPrefix(h, `"v`); ok {
		if v, ok := strings.CutSuffix(v, `"`); ok {
			// Tags compare as strings: "v01" is not "v1".
			if n, ok := canonicalID(v); ok {
				return n, nil
			}
		}
	}
	return 0, invalid("If-Match", fmt.Sprintf(`If-Match must be an ETag of this server such as "v3", got %s`, h))
}

// pathID returns the task id of the path. Only its canonical form names a task:
// /api/tasks/+1 and /api/tasks/01 are not paths of task 1, as a cache or a log
// reader would otherwise take them for other resources.
func pathID(c echo.Context) (int64, error) {
	id, ok := canonicalID(c.Param("id"))
	if !ok {
		return 0, invalid("id", fmt.Sprintf("task id must be a positive integer in decimal, without sign or leading zeros, got %q", c.Param("id")))
	}
	return id, nil
}

// canonicalID parses s as a positive integer written as strconv.FormatInt writes it.
func canonicalID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// params returns the query parameters of the request, checked against p.
func params(c echo.Context, p broadcaster.Params) (url.Values, error) {
	return p.Parse(c.Request().URL.RawQuery)
}

// intParam returns the integer query parameter name, def when it is absent.
func intParam(q url.Values, name string, def int64) (int64, error) {
	if !q.Has(name) {
		return def, nil
	}
	s := q.Get(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalid(name, fmt.Sprintf("%s must be an integer, got %q", name, s))
	}
	return n, nil
}
