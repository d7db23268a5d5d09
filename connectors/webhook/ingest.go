package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/limit"
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

	// Redis remembers the webhook-id of each ingested message, under
	// Prefix, so a replay within the tolerance is refused on every
	// replica. Nil turns replay protection off.
	Redis  redis.UniversalClient
	Prefix string

	// Limiter applies IngestPerMinute per webhook source (the
	// limits.ingest_per_minute that API keys get). Nil or <= 0: no limit.
	Limiter         Limiter
	IngestPerMinute int

	Log *slog.Logger // default slog.Default()
}

// Limiter is the per-key ingest limiter (limit.Limiter or limit.Leasing).
type Limiter interface {
	Allow(ctx context.Context, key string, lim limit.Limit) (limit.Decision, error)
}

// seenMargin is added to the time a message id is remembered, so clock
// drift between replicas and Redis cannot open a gap at the end.
const seenMargin = time.Minute

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
	if o.Prefix == "" {
		o.Prefix = "schakel"
	}
	if o.Log == nil {
		o.Log = slog.Default()
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
	// Limited after the signature check, like API keys after
	// authentication: unsigned requests cannot use up a source's budget.
	if err := in.limit(c, src.Name); err != nil {
		return err
	}
	if err := httpapi.RequireJSON(c); err != nil {
		return err
	}
	// Only a verified id is looked up or remembered, so nobody without the
	// secret can plant ids that would shadow the sender's messages.
	msgID := c.Get(HeaderID)
	seen, err := in.seen(c.UserContext(), src.Name, msgID)
	if err != nil {
		return err
	}
	if seen {
		return c.Status(fiber.StatusOK).JSON(fiber.Map{"status": "duplicate"})
	}
	format := src.Format
	if format == "" {
		format = "canonical"
	}
	gsrc := gateway.Source{Name: src.Name, DefaultTLP: src.DefaultTLP, Format: format, Own: src.Own}
	if format == "canonical" {
		res, err := in.canonical(c, gsrc, body)
		if err != nil {
			return err
		}
		in.remember(c.UserContext(), src.Name, msgID)
		return httpapi.Ingested(c, res)
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
	in.remember(c.UserContext(), src.Name, msgID)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted", "events": results})
}

// canonical ingests a bare canonical event or the envelope Schakel itself
// sends, so one Schakel can feed another.
func (in *Ingest) canonical(c *fiber.Ctx, src gateway.Source, body []byte) (gateway.Result, error) {
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
		return gateway.Result{}, err
	}
	return in.o.Ingest.Ingest(c.UserContext(), src, ev)
}

// limit takes one token of source's ingest budget: 429 with Retry-After
// when it is used up.
func (in *Ingest) limit(c *fiber.Ctx, source string) error {
	if in.o.IngestPerMinute <= 0 || in.o.Limiter == nil {
		return nil
	}
	d, err := in.o.Limiter.Allow(c.UserContext(), "ingest:webhook:"+source, limit.PerMinute(in.o.IngestPerMinute))
	if err != nil {
		return fmt.Errorf("webhook ingest limit: %w", err)
	}
	if d.Allowed {
		return nil
	}
	secs := int(d.RetryAfter.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	in.rejected(source, "limit")
	return fiber.NewError(fiber.StatusTooManyRequests, "ingest rate limit exceeded for webhook source "+source)
}

// seenKey is where a source's message id is remembered; the id is hashed
// so any header value makes a short, safe key.
func (in *Ingest) seenKey(source, msgID string) string {
	sum := sha256.Sum256([]byte(msgID))
	return in.o.Prefix + ":webhook:{" + source + "}:seen:" + hex.EncodeToString(sum[:])
}

// seen reports whether source's message msgID was ingested within the
// replay window.
func (in *Ingest) seen(ctx context.Context, source, msgID string) (bool, error) {
	if in.o.Redis == nil {
		return false, nil
	}
	n, err := in.o.Redis.Exists(ctx, in.seenKey(source, msgID)).Result()
	if err != nil {
		return false, fmt.Errorf("webhook replay check: %w", err)
	}
	return n > 0, nil
}

// remember records msgID once its message is ingested. Recording only
// after success (rather than claiming first and deleting on failure) means
// a crash or failed ingest never leaves an id behind that would turn the
// sender's retry into a lost message; the cost is that two copies racing in
// at the same moment may both be ingested, which the pipeline's content
// de-duplication absorbs. The id is kept for twice the tolerance: a
// timestamp up to the tolerance in the future stays acceptable that long.
func (in *Ingest) remember(ctx context.Context, source, msgID string) {
	if in.o.Redis == nil {
		return
	}
	ttl := 2*in.o.Tolerance + seenMargin
	if err := in.o.Redis.SetNX(ctx, in.seenKey(source, msgID), 1, ttl).Err(); err != nil {
		// The message is ingested; answering 5xx now would only make the
		// sender send it again.
		in.o.Log.Warn("webhook replay protection: cannot remember message id", "source", source, "error", err)
	}
}

func (in *Ingest) rejected(source, reason string) {
	if in.o.Metrics != nil {
		in.o.Metrics.Rejected.WithLabelValues(source, reason).Inc()
	}
}
