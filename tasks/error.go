package tasks

import (
	"errors"
	"fmt"
)

// Error codes. They are the codes of the external contract, so every adapter can pass
// them through unchanged and map each to its own status once.
const (
	EInvalid            = "invalid_argument"
	ENotFound           = "not_found"
	EConflict           = "conflict"
	EPreconditionFailed = "precondition_failed"
	EInternal           = "internal"
)

// Error is a domain error: a code from the list above, a message fit to show to the
// caller, and the input field it is about, if any.
type Error struct {
	Code    string
	Message string
	Field   string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and field and a formatted message.
func Errorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EInternal for any other
// error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}
