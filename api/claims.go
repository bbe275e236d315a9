package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/labstack/echo/v4"
)

// Claims and their leases: POST /api/tasks/{id}/claim, POST /api/tasks/claim (the
// next ready task), POST /api/tasks/{id}/heartbeat and POST /api/tasks/{id}/release.
// Each takes an optional JSON body: none, or an empty one, is no options.

func (h *handlers) claimTask(c echo.Context) error {
	id, err := taskAction(c)
	if err != nil {
		return err
	}
	req := tasks.ClaimRequest{TaskID: id}
	if err := optionalBody(c, func(name string, v json.RawMessage) error {
		if name == "lease_seconds" {
			return decodeLease(v, &req)
		}
		return invalid(name, fmt.Sprintf("unknown field %q: the body takes only lease_seconds", name))
	}); err != nil {
		return err
	}
	t, err := h.svc.Claim(withActor(c), req)
	if err != nil {
		return err
	}
	return writeTask(c, http.StatusOK, t)
}

func (h *handlers) claimNext(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	var req tasks.ClaimRequest
	if err := optionalBody(c, func(name string, v json.RawMessage) error {
		switch name {
		case "lease_seconds":
			return decodeLease(v, &req)
		case "project":
			return decodeString(name, v, &req.Project)
		case "label":
			return decodeString(name, v, &req.Label)
		}
		return invalid(name, fmt.Sprintf("unknown field %q: the body takes project, label and lease_seconds", name))
	}); err != nil {
		return err
	}
	t, err := h.svc.Claim(withActor(c), req)
	if tasks.ErrorCode(err) == tasks.ENotFound {
		return c.NoContent(http.StatusNoContent) // nothing is ready
	}
	if err != nil {
		return err
	}
	return writeTask(c, http.StatusOK, t)
}

func (h *handlers) heartbeat(c echo.Context) error {
	id, err := taskAction(c)
	if err != nil {
		return err
	}
	if err := optionalBody(c, func(name string, _ json.RawMessage) error {
		return invalid(name, fmt.Sprintf("unknown field %q: a heartbeat takes no fields", name))
	}); err != nil {
		return err
	}
	t, err := h.svc.Heartbeat(withActor(c), id)
	if err != nil {
		return err
	}
	return writeTask(c, http.StatusOK, t)
}

func (h *handlers) release(c echo.Context) error {
	id, err := taskAction(c)
	if err != nil {
		return err
	}
	var note string
	if err := optionalBody(c, func(name string, v json.RawMessage) error {
		if name == "note" {
			return decodeString(name, v, &note)
		}
		return invalid(name, fmt.Sprintf("unknown field %q: the body takes only note", name))
	}); err != nil {
		return err
	}
	t, err := h.svc.Release(withActor(c), id, note)
	if err != nil {
		return err
	}
	return writeTask(c, http.StatusOK, t)
}

// taskAction checks the query (none is taken) and returns the task id of the path.
func taskAction(c echo.Context) (int64, error) {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return 0, err
	}
	return pathID(c)
}

// optionalBody calls field for each member of the request's body, a JSON object,
// when it has one: a body of no bytes has no members.
func optionalBody(c echo.Context, field func(name string, value json.RawMessage) error) error {
	r := c.Request()
	if r.ContentLength == 0 {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if len(body) == 0 {
		return nil
	}
	if err := requireJSON(r, echo.MIMEApplicationJSON); err != nil {
		return err
	}
	return decodeObject(bytes.NewReader(body), field)
}

// decodeLease reads lease_seconds into req: a whole number of seconds, whose range
// is the Service's to check.
func decodeLease(v json.RawMessage, req *tasks.ClaimRequest) error {
	var n int64
	if err := json.Unmarshal(v, &n); err != nil {
		return invalid("lease_seconds", fmt.Sprintf("lease_seconds must be a whole number of seconds, %d to %d, got %s",
			tasks.MinLeaseSeconds, tasks.MaxLeaseSeconds, v))
	}
	req.LeaseSeconds = tasks.Value(n)
	return nil
}

func decodeString(name string, v json.RawMessage, into *string) error {
	if err := json.Unmarshal(v, into); err != nil || string(v) == "null" {
		return invalid(name, fmt.Sprintf("%s must be a string", name))
	}
	return nil
}
