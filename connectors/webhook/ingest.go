package webhook

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/metrics"
)

// IngestPath is where webhook sources POST: /api/v1/ingest/{source}.
const IngestPath = "/api/v1/ingest/:source"

// IngestSource is a configured source of type webhook.
type IngestSource struct {
	Name       string
	DefaultTLP gateway.TLP
	Own        bool   // the relay's own analysts author it (config own: true)
	Format     string // body format: canonical (default), misp, stix, csaf
	Secret     string // signing secret (whsec_…)
}

// Parser maps a non-canonical webhook body to canonical events. A
// *gateway.ValidationError names the fields at fault; any other error
// refuses the body as unreadable.
type Parser func(body []byte) ([]*gateway.Event, error)

// IngestOptions wire the signed-webhook ingest.
type IngestOptions struct {
	Ingest    gateway.Ingester
	Sources   []IngestSource
	Parsers   map[string]Parser // by format; canonical is built in
	Metrics   *metrics.Metrics
	BodyLimit int           // largest body once decoded; default 10 MiB
	Tolerance time.Duration // clock skew allowed; default DefaultTolerance
}

// Ingest receives Standard-Webhooks-signed POSTs from webhook sources. The
// signature is the authentication: no API key is involved.
type Ingest struct {
	o       IngestOptions
	sources map[string]IngestSource
}

// NewIngest returns the ingest endpoint for o.Sources.
func NewIngest(o IngestOptions) *Ingest {
	if o.BodyLimit <= 0 {
		o.BodyLimit = 10 << 20
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	in := &Ingest{o: o, sources: make(map[string]IngestSource, len(o.Sources))}
	for _, s := range o.Sources {
		in.sources[s.Name] = s
	}
	return in
}

// Mount adds POST /api/v1/ingest/{source} to app. Errors use the gateway's
// JSON error shape (the app's error handler writes them).
func (in *Ingest) Mount(app *fiber.App, _ *httpapi.Auth) {
	app.Post(IngestPath, in.post)
}

func (in *Ingest) post(c *fiber.Ctx) error {
	src, ok := in.sources[c.Params("source")]
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "no webhook source named "+c.Params("source"))
	}
	body, err := httpapi.RequestBody(c, in.o.BodyLimit)
	if err != nil {
		return err
	}
	get := func(name string) string { return c.Get(name) }
	if err := Verify(src.Secret, get, body, time.Now(), in.o.Tolerance); err != nil {
		in.rejected(src.Name, "auth")
		return fiber.NewError(fiber.StatusUnauthorized, "webhook signature: "+err.Error())
	}
	if err := httpapi.RequireJSON(c); err != nil {
		return err
	}
	format := src.Format
	if format == "" {
		format = "canonical"
	}
	gsrc := gateway.Source{Name: src.Name, DefaultTLP: src.DefaultTLP, Format: format, Own: src.Own}
	if format == "canonical" {
		return in.canonical(c, gsrc, body)
	}
	parse, ok := in.o.Parsers[format]
	if !ok {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "source format "+format+" is not supported by this build")
	}
	evs, err := parse(body)
	if err != nil {
		var ve *gateway.ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return fiber.NewError(fiber.StatusBadRequest, "body: "+httpapi.PlainError(err))
	}
	results := make([]gateway.Result, 0, len(evs))
	for _, ev := range evs {
		res, err := in.o.Ingest.Ingest(c.UserContext(), gsrc, ev)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted", "events": results})
}

// canonical ingests a bare canonical event or the envelope Schakel itself
// sends, so one Schakel can feed another.
func (in *Ingest) canonical(c *fiber.Ctx, src gateway.Source, body []byte) error {
	var env struct {
		Event json.RawMessage `json:"event"`
		Type  string          `json:"type"`
	}
	if json.Unmarshal(body, &env) == nil && env.Type != "" && len(env.Event) > 0 {
		body = env.Event
	}
	ev, err := httpapi.DecodeCanonical(body)
	if err != nil {
		in.rejected(src.Name, "invalid")
		return err
	}
	res, err := in.o.Ingest.Ingest(c.UserContext(), src, ev)
	if err != nil {
		return err
	}
	return httpapi.Ingested(c, res)
}

func (in *Ingest) rejected(source, reason string) {
	if in.o.Metrics != nil {
		in.o.Metrics.Rejected.WithLabelValues(source, reason).Inc()
	}
}
