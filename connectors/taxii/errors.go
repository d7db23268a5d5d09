package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// ErrorBody is the TAXII 2.1 error message (§3.6.1).
type ErrorBody struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	ErrorCode   string         `json:"error_code,omitempty"`
	HTTPStatus  string         `json:"http_status,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

// httpError is a failure with the status and text the client gets.
type httpError struct {
	status  int
	desc    string
	details map[string]any
}

func (e *httpError) Error() string { return e.desc }

func fail(status int, desc string) error { return &httpError{status: status, desc: desc} }

// badParam is the 400 for one malformed query parameter, named in details.
func badParam(param, msg string) error {
	return &httpError{status: fiber.StatusBadRequest, desc: param + ": " + msg, details: map[string]any{"parameter": param}}
}

// writeJSON answers with a TAXII resource; every TAXII response carries the
// TAXII media type, errors included (taxii2-client checks it on all of them).
func writeJSON(c *fiber.Ctx, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, MediaTAXII)
	return c.Send(body)
}

func writeError(c *fiber.Ctx, status int, desc string, details map[string]any) error {
	return writeJSON(c, status, ErrorBody{
		Title:       http.StatusText(status),
		Description: desc,
		ErrorCode:   strconv.Itoa(status),
		HTTPStatus:  strconv.Itoa(status),
		Details:     details,
	})
}

// handle runs h and renders any error it returns in the TAXII shape, so no
// error of a TAXII route reaches the gateway's JSON error handler.
func (s *Server) handle(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := h(c)
		if err == nil {
			return nil
		}
		var he *httpError
		var ve *gateway.ValidationError
		switch {
		case errors.As(err, &he):
			return writeError(c, he.status, he.desc, he.details)
		case errors.As(err, &ve):
			fields := make([]map[string]string, len(ve.Fields))
			for i, f := range ve.Fields {
				fields[i] = map[string]string{"field": f.Field, "message": f.Message}
			}
			return writeError(c, fiber.StatusBadRequest, ve.Error(), map[string]any{"fields": fields})
		case errors.Is(err, gateway.ErrNotFound):
			return writeError(c, fiber.StatusNotFound, "not found", nil)
		}
		s.log.ErrorContext(c.UserContext(), "taxii request failed", "path", c.Path(), "method", c.Method(),
			"request_id", c.Locals("request_id"), "error", err)
		if errors.Is(err, context.DeadlineExceeded) || unavailable(err) {
			c.Set(fiber.HeaderRetryAfter, "5")
			return writeError(c, fiber.StatusServiceUnavailable, "temporarily unavailable; retry later", nil)
		}
		return writeError(c, fiber.StatusInternalServerError, "internal error", nil)
	}
}

func unavailable(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) || errors.Is(err, redis.ErrClosed)
}
