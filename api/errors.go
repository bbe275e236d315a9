package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/labstack/echo/v4"
)

// Error codes that only HTTP has. The domain's codes are in package tasks.
const (
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeRateLimited          = "rate_limited"
	CodeUnavailable          = "unavailable"
)

// Error is an error response: the status and the body of the contract's error shape.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalid(field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: tasks.EInvalid, Message: message, Field: field}
}

// statusOf is the one table from domain error code to HTTP status.
var statusOf = map[string]int{
	tasks.EInvalid:            http.StatusBadRequest,
	tasks.ENotFound:           http.StatusNotFound,
	tasks.EConflict:           http.StatusConflict,
	tasks.EPreconditionFailed: http.StatusPreconditionFailed,
	tasks.EInternal:           http.StatusInternalServerError,
}

// codeOf names the statuses that echo itself produces (routing, middleware).
var codeOf = map[int]string{
	http.StatusBadRequest:            tasks.EInvalid,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusNotFound:              tasks.ENotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusRequestEntityTooLarge: CodePayloadTooLarge,
	http.StatusUnsupportedMediaType:  CodeUnsupportedMediaType,
	http.StatusTooManyRequests:       CodeRateLimited,
	http.StatusServiceUnavailable:    CodeUnavailable,
}

// toError turns any error a handler returns into the response to send.
func toError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if e, ok := errors.AsType[*broadcaster.RequestError](err); ok {
		return invalid(e.Field, e.Message)
	}
	if e, ok := errors.AsType[*tasks.Error](err); ok {
		if status, ok := statusOf[e.Code]; ok {
			return &Error{Status: status, Code: e.Code, Message: e.Message, Field: e.Field}
		}
	}
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		if code, ok := codeOf[he.Code]; ok {
			msg, _ := he.Message.(string)
			if msg == "" {
				msg = http.StatusText(he.Code)
			}
			return &Error{Status: he.Code, Code: code, Message: msg}
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: tasks.EInternal, Message: "internal error"}
}

// errorHandler writes every error in the contract's shape. Only internal errors are
// logged: the others are the client's to read.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		e := toError(err)
		if c.Response().Committed { // too late to answer: the status is sent
			if e.Status >= http.StatusInternalServerError {
				logger.Error("request failed after its response began", "path", c.Request().URL.Path, "err", err)
			}
			return
		}
		r := c.Request()
		switch {
		case errors.Is(err, echo.ErrNotFound):
			e.Message = fmt.Sprintf("%s %s is not an endpoint of this server", r.Method, r.URL.Path)
		case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
			e.Message = "request body must be at most 1 MiB"
		case errors.Is(err, echo.ErrMethodNotAllowed):
			e.Message = fmt.Sprintf("%s %s is not allowed; allowed: %s", r.Method, r.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
		}
		if e.Status >= http.StatusInternalServerError {
			logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		// net/http sends no body to HEAD.
		broadcaster.WriteError(c.Response(), e.Status, e.Code, e.Message, e.Field)
	}
}
