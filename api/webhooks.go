package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"taskhub/broadcaster"
	"taskhub/tasks"
	"taskhub/webhooks"

	"github.com/labstack/echo/v4"
)

// webhookHandlers serve /api/webhooks (admin scope): the endpoints, their secrets,
// attempts and replays. The rules are the webhooks.Service's.
type webhookHandlers struct{ svc *webhooks.Service }

// mountWebhooks adds the routes of /api/webhooks to e.
func mountWebhooks(e *echo.Echo, svc *webhooks.Service) {
	h := webhookHandlers{svc}
	get := func(path string, fn echo.HandlerFunc) { e.Match([]string{http.MethodGet, http.MethodHead}, path, fn) }
	e.POST("/api/webhooks", h.create)
	get("/api/webhooks", h.list)
	get("/api/webhooks/:id", h.get)
	e.PATCH("/api/webhooks/:id", h.update)
	e.DELETE("/api/webhooks/:id", h.delete)
	e.POST("/api/webhooks/:id/rotate-secret", h.rotate)
	get("/api/webhooks/:id/deliveries", h.deliveries)
	e.POST("/api/webhooks/:id/replay", h.replay)
}

// webhookID returns the endpoint id of the path, in its canonical form only.
func webhookID(c echo.Context) (int64, error) {
	id, ok := canonicalID(c.Param("id"))
	if !ok {
		return 0, invalid("id", fmt.Sprintf("webhook id must be a positive integer in decimal, without sign or leading zeros, got %q", c.Param("id")))
	}
	return id, nil
}

// readOnlyWebhookFields are fields of an endpoint a client sees but never sets.
var readOnlyWebhookFields = map[string]bool{
	"id": true, "state": true, "created_at": true, "updated_at": true, "previous_secret_expires_at": true,
}

func unknownWebhookField(name string) error {
	if readOnlyWebhookFields[name] {
		return invalid(name, fmt.Sprintf("field %q is set by the server and cannot be given", name))
	}
	return invalid(name, fmt.Sprintf("unknown field %q", name))
}

// decodeJSON decodes v into dst, or names field and what it must be.
func decodeJSON(field string, v json.RawMessage, want string, dst any) error {
	if bytes.Equal(v, []byte("null")) || json.Unmarshal(v, dst) != nil {
		return invalid(field, fmt.Sprintf("%s must be %s", field, want))
	}
	return nil
}

// filterFields are the keys of an endpoint's filters: the stream's filter parameters.
var filterFields = []string{"types", "task_id", "assignee", "project", "status", "label", "source"}

// decodeFilter reads an endpoint's filters: an object of the stream's filter names,
// each a list; null is no filter. Fields are named filters.NAME.
func decodeFilter(v json.RawMessage) (webhooks.Filter, error) {
	var f webhooks.Filter
	if bytes.Equal(v, []byte("null")) {
		return f, nil
	}
	if len(v) == 0 || v[0] != '{' {
		return f, invalid("filters", "filters must be an object of lists: "+strings.Join(filterFields, ", "))
	}
	strs := func(field string, value json.RawMessage, dst *[]string) error {
		var l tasks.Field[[]string]
		if err := decodeList(field, value, "an array of strings", &l); err != nil {
			return err
		}
		*dst = l.Value
		return nil
	}
	err := decodeObject(bytes.NewReader(v), func(name string, value json.RawMessage) error {
		field := "filters." + name
		switch name {
		case "types":
			return strs(field, value, &f.Types)
		case "assignee":
			return strs(field, value, &f.Assignees)
		case "project":
			return strs(field, value, &f.Projects)
		case "status":
			return strs(field, value, &f.Statuses)
		case "label":
			return strs(field, value, &f.Labels)
		case "source":
			return strs(field, value, &f.Sources)
		case "task_id":
			var l tasks.Field[[]int64]
			if err := decodeList(field, value, "an array of task ids", &l); err != nil {
				return err
			}
			f.TaskIDs = l.Value
			return nil
		}
		return invalid(field, fmt.Sprintf("unknown filter %q; the filters are %s", name, strings.Join(filterFields, ", ")))
	})
	// decodeObject names the members it refuses (one given twice) as in a body.
	if e, ok := err.(*Error); ok && !strings.HasPrefix(e.Field, "filters") {
		e.Field = strings.TrimSuffix("filters."+e.Field, ".")
	}
	return f, err
}

func (h webhookHandlers) create(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	if err := requireJSON(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	var req webhooks.CreateRequest
	hasURL := false
	err := decodeObject(c.Request().Body, func(name string, v json.RawMessage) (err error) {
		switch name {
		case "url":
			hasURL = true
			return decodeJSON(name, v, "a string", &req.URL)
		case "filters":
			req.Filters, err = decodeFilter(v)
			return err
		case "enabled":
			req.Enabled = new(bool)
			return decodeJSON(name, v, "true or false", req.Enabled)
		case "secret":
			return decodeJSON(name, v, "a string", &req.Secret)
		case "from_seq":
			req.FromSeq = new(int64)
			return decodeJSON(name, v, "a seq (an integer)", req.FromSeq)
		}
		return unknownWebhookField(name)
	})
	if err != nil {
		return err
	}
	if !hasURL {
		return invalid("url", "url is required")
	}
	e, err := h.svc.Create(withActor(c), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/webhooks/%d", e.ID))
	return c.JSON(http.StatusCreated, e)
}

func (h webhookHandlers) list(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	list, err := h.svc.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"webhooks": list})
}

func (h webhookHandlers) get(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	e, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (h webhookHandlers) update(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	if err := requireJSON(c.Request(), "application/merge-patch+json", echo.MIMEApplicationJSON); err != nil {
		return err
	}
	var u webhooks.UpdateRequest
	err = decodeObject(c.Request().Body, func(name string, v json.RawMessage) error {
		null := bytes.Equal(v, []byte("null"))
		switch name {
		case "url":
			return decodeRequired(name, v, null, "a string", &u.URL)
		case "enabled":
			return decodeRequired(name, v, null, "true or false", &u.Enabled)
		case "filters":
			f, err := decodeFilter(v)
			u.Filters = tasks.Value(f)
			return err
		case "secret":
			return invalid(name, "secret is changed by POST /api/webhooks/{id}/rotate-secret")
		}
		return unknownWebhookField(name)
	})
	if err != nil {
		return err
	}
	e, err := h.svc.Update(withActor(c), id, u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (h webhookHandlers) delete(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	if err := h.svc.Delete(withActor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h webhookHandlers) rotate(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	var secret string
	err = optionalBody(c, func(name string, v json.RawMessage) error {
		if name == "secret" {
			return decodeJSON(name, v, "a string", &secret)
		}
		return invalid(name, fmt.Sprintf("unknown field %q; the body may give only secret", name))
	})
	if err != nil {
		return err
	}
	e, err := h.svc.RotateSecret(withActor(c), id, secret)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (h webhookHandlers) deliveries(c echo.Context) error {
	q, err := params(c, broadcaster.Params{Singles: []string{"limit", "cursor"}})
	if err != nil {
		return err
	}
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", webhooks.DefaultDeliveriesLimit)
	if err != nil {
		return err
	}
	page, err := h.svc.Deliveries(c.Request().Context(), id, int(limit), q.Get("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (h webhookHandlers) replay(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	if err := requireJSON(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	var from *int64
	err = decodeObject(c.Request().Body, func(name string, v json.RawMessage) error {
		if name == "from_seq" {
			from = new(int64)
			return decodeJSON(name, v, "a seq (an integer)", from)
		}
		return invalid(name, fmt.Sprintf("unknown field %q; the body gives from_seq", name))
	})
	if err != nil {
		return err
	}
	if from == nil {
		return invalid("from_seq", "from_seq is required: the seq to deliver again from")
	}
	e, err := h.svc.Replay(withActor(c), id, *from)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}
