package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/schemas"
)

func requireJSON(c *fiber.Ctx) error {
	ct := c.Get(fiber.HeaderContentType)
	if ct == "" {
		return nil // curl without -H; the body is still checked as JSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != fiber.MIMEApplicationJSON && mt != "application/vnd.schakel.event+json") {
		return fail(c, fiber.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	return nil
}

// postEvent ingests one canonical event from an api source key.
func (s *Server) postEvent(c *fiber.Ctx) error {
	if err := requireJSON(c); err != nil {
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

// decodeCanonical validates body against the event schema and decodes it.
// Schema problems and normalisation problems are reported together so the
// sender can fix everything at once.
func decodeCanonical(body []byte) (*gateway.Event, error) {
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
		ve.Add(e.Pointer, e.Message)
		seen[e.Pointer] = true
	}
	if decErr != nil && len(serrs) == 0 {
		ve.Add("", "body is not a canonical event: "+decErr.Error())
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
	ev, err := decodeCanonical(body)
	if err != nil {
		s.o.Metrics.Rejected.WithLabelValues(src.Name, "invalid").Inc()
		return err
	}
	res, err := s.o.Pipeline.Ingest(c.UserContext(), pipelineSource(src), ev)
	if err != nil {
		return err
	}
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

// postWebhook ingests a Standard-Webhooks-signed POST for a webhook source.
func (s *Server) postWebhook(c *fiber.Ctx) error {
	src, ok := s.sources[c.Params("source")]
	if !ok || src.Type != "webhook" {
		return fail(c, fiber.StatusNotFound, "no webhook source named "+c.Params("source"))
	}
	body, err := RequestBody(c, s.o.BodyLimit)
	if err != nil {
		return err
	}
	get := func(name string) string { return c.Get(name) }
	if err := webhook.Verify(src.Secret, get, body, time.Now(), s.o.WebhookTolerance); err != nil {
		s.o.Metrics.Rejected.WithLabelValues(src.Name, "auth").Inc()
		return fail(c, fiber.StatusUnauthorized, "webhook signature: "+err.Error())
	}
	if err := requireJSON(c); err != nil {
		return err
	}
	format := src.Format
	if format == "" || format == "canonical" {
		// Accept either a bare event or the envelope Schakel itself sends, so
		// one Schakel can feed another.
		var env struct {
			Event json.RawMessage `json:"event"`
			Type  string          `json:"type"`
		}
		if json.Unmarshal(body, &env) == nil && env.Type != "" && len(env.Event) > 0 {
			body = env.Event
		}
		return s.ingestCanonical(c, src, body)
	}
	parse, ok := s.o.Parsers[format]
	if !ok {
		return fail(c, fiber.StatusUnsupportedMediaType, "source format "+format+" is not supported by this build")
	}
	evs, err := parse(body)
	if err != nil {
		var ve *gateway.ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return fail(c, fiber.StatusBadRequest, "body: "+err.Error())
	}
	results := make([]gateway.Result, 0, len(evs))
	for _, ev := range evs {
		res, err := s.o.Pipeline.Ingest(c.UserContext(), pipelineSource(src), ev)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted", "events": results})
}
