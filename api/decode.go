package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"taskhub/tasks"

	"github.com/labstack/echo/v4"
)

// requireJSON refuses a request body that is not declared as JSON.
func requireJSON(r *http.Request, types ...string) error {
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, t := range types {
			if mt == t {
				return nil
			}
		}
	}
	if ct == "" {
		ct = "none"
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
		Message: fmt.Sprintf("Content-Type must be %s, got %s", types[0], ct)}
}

// decodeObject reads a body that must be exactly one JSON object and calls field for
// each of its members in order. A member named twice is an error: which one would win
// is a guess a client should not have to make.
func decodeObject(body io.Reader, field func(name string, value json.RawMessage) error) error {
	dec := json.NewDecoder(body)
	tok, err := dec.Token()
	if err != nil {
		return bodyError(err)
	}
	if tok != json.Delim('{') {
		return invalid("", "request body must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bodyError(unfinished(err))
		}
		name := tok.(string) // inside an object, the decoder yields only string keys here
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return bodyError(unfinished(err))
		}
		// encoding/json would quietly replace bytes that are not UTF-8; JSON is UTF-8.
		if !utf8.ValidString(name) || !utf8.Valid(value) {
			return invalid(strings.ToValidUTF8(name, "?"), "request body is not valid UTF-8")
		}
		if seen[name] {
			return invalid(name, fmt.Sprintf("field %q is given twice", name))
		}
		seen[name] = true
		if err := field(name, value); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bodyError(unfinished(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return bodyError(err)
		}
		return invalid("", "request body must hold one JSON object and nothing after it")
	}
	return nil
}

// unfinished turns the end of the body inside the object into the error it is.
func unfinished(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// bodyError explains why a body could not be read as JSON.
func bodyError(err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
		return err // the error handler words it
	case errors.Is(err, io.EOF):
		return invalid("", "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "request body ends in the middle of the JSON")
	case errors.As(err, &syntax):
		return invalid("", fmt.Sprintf("request body is not valid JSON at byte %d: %v", syntax.Offset, err))
	}
	return invalid("", fmt.Sprintf("request body could not be read: %v", err))
}

// readOnlyFields are task fields a client sees but never sets.
var readOnlyFields = map[string]bool{
	"id": true, "version": true, "created_at": true, "updated_at": true, "created_by": true, "updated_by": true,
	"lease_expires_at": true,
}

// decodeUpdate reads a task body: all of a new task's fields for POST, a JSON merge
// patch for PATCH. null clears an optional field; title, status and priority cannot be
// cleared. Only the shape is checked here; the rules are the Service's.
func decodeUpdate(body io.Reader) (tasks.Update, error) {
	var u tasks.Update
	err := decodeObject(body, func(name string, v json.RawMessage) error {
		null := bytes.Equal(v, []byte("null"))
		switch name {
		case "title":
			return decodeRequired(name, v, null, "a string", &u.Title)
		case "status":
			return decodeRequired(name, v, null, "a string", &u.Status)
		case "priority":
			return decodeRequired(name, v, null, "a string", &u.Priority)
		case "description":
			return decodeField(name, v, "a string or null", &u.Description)
		case "assignee":
			return decodeField(name, v, "a string or null", &u.Assignee)
		case "project":
			return decodeField(name, v, "a string or null", &u.Project)
		case "labels":
			return decodeList(name, v, "an array of strings or null", &u.Labels)
		case "depends_on":
			return decodeList(name, v, "an array of task ids or null", &u.DependsOn)
		case "parent_id":
			return decodeField(name, v, "a task id or null", &u.ParentID)
		case "due_at":
			return decodeField(name, v, "an RFC 3339 time or null", &u.DueAt)
		case "progress":
			return decodeRequired(name, v, null, fmt.Sprintf("an integer from 0 to %d", tasks.MaxProgress), &u.Progress)
		case "progress_message":
			return decodeField(name, v, "a string or null", &u.ProgressMessage)
		}
		if readOnlyFields[name] {
			return invalid(name, fmt.Sprintf("field %q is set by the server and cannot be given", name))
		}
		return invalid(name, fmt.Sprintf("unknown field %q", name))
	})
	return u, err
}

// decodeField decodes v into f, which null sets to its zero value.
func decodeField[T any](name string, v json.RawMessage, want string, f *tasks.Field[T]) error {
	var value T
	if err := json.Unmarshal(v, &value); err != nil {
		return invalid(name, fmt.Sprintf("%s must be %s", name, want))
	}
	*f = tasks.Value(value)
	return nil
}

// decodeList is decodeField for an array, whose elements must not be null: decoded
// as they are, a null would quietly become "" or 0.
func decodeList[T any](name string, v json.RawMessage, want string, f *tasks.Field[[]T]) error {
	var elems []*T
	if err := json.Unmarshal(v, &elems); err != nil {
		return invalid(name, fmt.Sprintf("%s must be %s", name, want))
	}
	var list []T
	if elems != nil {
		list = make([]T, len(elems))
	}
	for i, e := range elems {
		if e == nil {
			return invalid(name, fmt.Sprintf("%s must be %s, but element %d is null", name, want, i))
		}
		list[i] = *e
	}
	*f = tasks.Value(list)
	return nil
}

// decodeRequired is decodeField for a field that cannot be cleared.
func decodeRequired[T any](name string, v json.RawMessage, null bool, want string, f *tasks.Field[T]) error {
	if null {
		return invalid(name, fmt.Sprintf("%s cannot be null", name))
	}
	return decodeField(name, v, want, f)
}
