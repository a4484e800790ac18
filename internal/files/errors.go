package files

import (
	"errors"
	"fmt"

	"github.com/veloxhq/velox/internal/metadata"
)

// Error codes. They are part of the API: clients match on them.
const (
	CodeNotFound           = "not_found"
	CodeConflict           = "conflict"
	CodeInvalidName        = "invalid_name"
	CodeInvalidRequest     = "invalid_request"
	CodePreconditionFailed = "precondition_failed"
	CodeForbidden          = "forbidden"
	CodeTooLarge           = "too_large"
	CodeUnavailable        = "unavailable"
	CodeIncomplete         = "incomplete_upload"
	CodeQuotaExceeded      = "quota_exceeded"
)

// Error is a failure a user can act on: a stable code and a readable
// message. Anything else that reaches the API is an internal error.
type Error struct {
	Code    string
	Message string
	Err     error // the underlying cause, if any; never shown to users
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or "" if it is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

var errNotFound = errorf(CodeNotFound, "No such file or folder.")

// notFoundOr turns metadata.ErrNotFound into the user-facing not-found
// error and passes anything else (such as a serialization conflict to
// retry) through.
func notFoundOr(err error) error {
	if errors.Is(err, metadata.ErrNotFound) {
		return errNotFound
	}
	return err
}
