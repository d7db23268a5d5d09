package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/schemas"
)

// RequireJSON refuses a request whose Content-Type is set and is not JSON
// (415). Ingest paths of connectors use it too.
func RequireJSON(c *fiber.Ctx) error {
	ct := c.Get(fiber.HeaderContentType)
	if ct == "" {
		return nil // curl without -H; the body is still checked as JSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != fiber.MIMEApplicationJSON && mt != "application/vnd.schakel.event+json") {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	return nil
}

// postEvent ingests one canonical event from an api source key.
func (s *Server) postEvent(c *fiber.Ctx) error {
	if err := RequireJSON(c); err != nil {
		return err
	}
	caller, _ := CallerOf(c)
	src, ok := s.sources[caller.Scope.Name]
	if !ok {
		return fail(c, fiber.StatusForbidden, fmt.Sprintf("source %q is not configured", caller.Scope.Name))
	}
	body, err := RequestBody(c, s.o.BodyLimit)
	if err != nil {
		return err
	}
	return s.ingestCanonical(c, src, body)
}

// DecodeCanonical validates body against the event schema and decodes it.
// Schema problems and normalisation problems are reported together in a
// *gateway.ValidationError so the sender can fix everything at once.
func DecodeCanonical(body []byte) (*gateway.Event, error) {
	serrs := schemas.ValidateJSON(schemas.Event, body)
	var ev gateway.Event
	dec := json.NewDecoder(bytes.NewReader(body))
	decErr := dec.Decode(&ev)
	if len(serrs) == 0 && decErr == nil {
		return &ev, nil
	}
	ve := &gateway.ValidationError{}
	seen := map[string]bool{}
	for _, e := range serrs {
		ve.Add(e.Field, e.Message)
		seen[e.Field] = true
	}
	if decErr != nil && len(serrs) == 0 {
		fe := DecodeError(decErr)
		ve.Add(fe.Field, fe.Message)
	}
	if decErr == nil {
		// Report indicator problems the schema cannot see (a malformed IP).
		probe := ev.Clone()
		for _, fe := range normalize.Event(probe) {
			if !seen[fe.Field] {
				ve.Add(fe.Field, fe.Message)
			}
		}
	}
	return nil, ve
}

func (s *Server) ingestCanonical(c *fiber.Ctx, src SourceConfig, body []byte) error {
	ev, err := DecodeCanonical(body)
	if err != nil {
		s.o.Metrics.Rejected.WithLabelValues(src.Name, "invalid").Inc()
		return err
	}
	res, err := s.o.Pipeline.Ingest(c.UserContext(), pipelineSource(src), ev)
	if err != nil {
		return err
	}
	return Ingested(c, res)
}

// Ingested answers an ingested canonical event: 202 with the result, or 200
// when it was a duplicate.
func Ingested(c *fiber.Ctx, res gateway.Result) error {
	if res.Status == gateway.StatusDuplicate {
		return c.Status(fiber.StatusOK).JSON(res)
	}
	return c.Status(fiber.StatusAccepted).JSON(res)
}

func pipelineSource(src SourceConfig) gateway.Source {
	format := src.Format
	if format == "" {
		format = "canonical"
	}
	return gateway.Source{Name: src.Name, DefaultTLP: src.DefaultTLP, Format: format, Own: src.Own}
}
