package misp

import (
	"github.com/gofiber/fiber/v2"
)

// mispError is the shape MISP gives exceptions: {"name","message","url"}.
// PyMISP and MISP's sync client read name and message.
type mispError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	URL     string `json:"url"`
}

// fail writes a MISP exception with status.
func fail(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(mispError{Name: msg, Message: msg, URL: c.OriginalURL()})
}

// authFailed is the middleware's onFail: MISP's wording, our status.
func authFailed(c *fiber.Ctx, status int, msg string) error {
	if status == fiber.StatusUnauthorized {
		msg = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header. (" + msg + ")"
	}
	return fail(c, status, msg)
}

// saveError is MISP's reply when an event cannot be saved (403): the sync
// client looks for the "not newer" text in errors to treat it as benign.
type saveError struct {
	Saved   bool   `json:"saved"`
	Name    string `json:"name"`
	Message string `json:"message"`
	URL     string `json:"url"`
	Errors  any    `json:"errors"`
}

// errNotNewer is the exact text MISP 2.5 answers a stale push with.
const errNotNewer = "Event could not be saved: Event in the request not newer than the local copy."

func saveFailed(c *fiber.Ctx, status int, name string, errs any) error {
	msg := name
	if s, ok := errs.(string); ok {
		msg = s
	}
	return c.Status(status).JSON(saveError{Name: name, Message: msg, URL: c.OriginalURL(), Errors: errs})
}
