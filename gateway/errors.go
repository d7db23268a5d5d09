package gateway

import (
	"errors"
	"strings"
	"time"
)

// ErrNotFound is returned by lookups that find nothing.
var ErrNotFound = errors.New("not found")

// FieldError is a problem with one field, named by its JSON pointer
// ("/indicators/0/value").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError collects every field problem of one input, so a caller
// can fix all of them at once.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add appends a field problem.
func (e *ValidationError) Add(field, msg string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: msg})
}

// Err returns e when it holds problems, else nil.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// DeliveryError tells the dispatcher what to do about a failed delivery
// attempt: give up now (Permanent) or retry no sooner than RetryAfter.
// Errors a sink returns that are not DeliveryErrors are retried with back-off.
type DeliveryError struct {
	Err        error
	Permanent  bool
	RetryAfter time.Duration
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying (HTTP 4xx, SMTP 5xx).
func Permanent(err error) error { return &DeliveryError{Err: err, Permanent: true} }

// RetryAfter marks err as temporary with the receiver's requested delay.
func RetryAfter(err error, after time.Duration) error {
	return &DeliveryError{Err: err, RetryAfter: after}
}
