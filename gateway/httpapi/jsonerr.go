package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
)

// DecodeError describes an encoding/json decoding error for a client: the
// field as a JSON pointer and a plain message. The decoder's own text names
// Go types ("Go struct field Event.tlp of type gateway.TLP"), which tells a
// client nothing it can act on and tells anyone the implementation.
func DecodeError(err error) gateway.FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return gateway.FieldError{Field: jsonPointer(te.Field), Message: typeMessage(te)}
	}
	return gateway.FieldError{Message: PlainError(err)}
}

// PlainError is err's message with any encoding/json type error or time
// parse error in its chain rewritten as a plain message, so it can be
// returned to a client.
func PlainError(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		plain := typeMessage(te)
		if p := jsonPointer(te.Field); p != "" {
			plain = p + ": " + plain
		}
		msg = strings.Replace(msg, te.Error(), plain, 1)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		msg = strings.Replace(msg, pe.Error(), `not an RFC 3339 date-time such as "2026-11-20T09:14:33Z"`, 1)
	}
	var ie *json.InvalidUnmarshalError
	if errors.As(err, &ie) {
		msg = strings.Replace(msg, ie.Error(), "cannot be decoded", 1)
	}
	msg = strings.ReplaceAll(msg, "Time.UnmarshalJSON: input is not a JSON string", "a date-time must be a JSON string")
	return strings.ReplaceAll(msg, "json: ", "")
}

// jsonPointer turns the decoder's dotted field path ("recipients.email")
// into a JSON pointer ("/recipients/email").
func jsonPointer(field string) string {
	if field == "" {
		return ""
	}
	parts := strings.Split(field, ".")
	for i, p := range parts {
		parts[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
	}
	return "/" + strings.Join(parts, "/")
}

func typeMessage(te *json.UnmarshalTypeError) string {
	got := te.Value
	if i := strings.IndexByte(got, ' '); i > 0 {
		got = got[:i] // "number 1.5" → "number"
	}
	if got == "bool" {
		got = "boolean"
	}
	return "expected " + jsonKind(te.Type) + ", got " + got
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another value"
}
