package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/storage"
)

// statusOf maps error codes to HTTP statuses.
var statusOf = map[string]int{
	files.CodeNotFound:           http.StatusNotFound,
	files.CodeConflict:           http.StatusConflict,
	files.CodeInvalidName:        http.StatusBadRequest,
	files.CodeInvalidRequest:     http.StatusBadRequest,
	files.CodePreconditionFailed: http.StatusPreconditionFailed,
	files.CodeForbidden:          http.StatusForbidden,
	files.CodeTooLarge:           http.StatusRequestEntityTooLarge,
	files.CodeUnavailable:        http.StatusServiceUnavailable,
	files.CodeIncomplete:         http.StatusBadRequest,
	files.CodeQuotaExceeded:      http.StatusInsufficientStorage,
	codeUnauthorized:             http.StatusUnauthorized,
	codeRangeNotSatisfiable:      http.StatusRequestedRangeNotSatisfiable,
}

const (
	codeUnauthorized        = "unauthorized"
	codeRangeNotSatisfiable = "range_not_satisfiable"
	codeInternal            = "internal"
	codeCorrupt             = "corrupt"
	codeTooManyAttempts     = "too_many_attempts"
)

// errorBody is the JSON shape of every API error.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// error writes err as a JSON error response. Errors that are not
// *files.Error become 500 "Internal error." and are logged once here, with
// the request that caused them.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	var rl interface{ RetryAfter() time.Duration }
	if errors.As(err, &rl) {
		secs := int(rl.RetryAfter().Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeError(w, http.StatusTooManyRequests, codeTooManyAttempts,
			fmt.Sprintf("Too many failed sign-in attempts. Wait %d seconds before trying again.", max(secs, 1)))
		return
	}
	var fe *files.Error
	if errors.As(err, &fe) {
		status, ok := statusOf[fe.Code]
		if !ok {
			status = http.StatusBadRequest
		}
		if status >= 500 {
			s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
		}
		writeError(w, status, fe.Code, fe.Message)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; there is nobody to answer.
		return
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, files.CodeTooLarge, "The upload is larger than this server accepts.")
		return
	}
	if errors.Is(err, storage.ErrCorrupt) {
		// The error names the blob, so the log says which one to restore.
		s.Logger.Error("stored file failed its integrity check", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
		writeError(w, http.StatusInternalServerError, codeCorrupt, "The stored contents of this file failed an integrity check; ask an administrator to restore it.")
		return
	}
	s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
	writeError(w, http.StatusInternalServerError, codeInternal, "Internal error.")
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// decodeJSON reads a small JSON request body into v, rejecting unknown
// fields so that typos are reported instead of ignored.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &files.Error{Code: files.CodeInvalidRequest, Message: "The request body is not valid JSON for this endpoint: " + err.Error()}
	}
	return nil
}

func badRequest(format string) error {
	return &files.Error{Code: files.CodeInvalidRequest, Message: format}
}
