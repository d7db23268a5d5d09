package httpapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/schemas"
)

func (s *Server) auditAdmin(c *fiber.Ctx, rec audit.Record) {
	caller, _ := CallerOf(c)
	rec.Time = time.Now().UTC()
	rec.Actor = caller.Actor()
	if err := s.o.Audit.Append(c.UserContext(), rec); err != nil {
		s.o.Log.WarnContext(c.UserContext(), "audit append failed", "action", rec.Action, "error", err)
	}
}

func (s *Server) listEvents(c *fiber.Ctx) error {
	n, bad := queryLimit(c, 50, 1000)
	if bad != nil {
		return fail(c, fiber.StatusBadRequest, "invalid query", *bad)
	}
	q := store.ListQuery{Limit: n, Cursor: c.Query("cursor"), Source: c.Query("source")}
	if t := c.Query("tlp"); t != "" {
		tlp, _, err := gateway.ParseTLP(t)
		if err != nil {
			return fail(c, fiber.StatusBadRequest, "invalid query", gateway.FieldError{Field: "tlp", Message: err.Error()})
		}
		q.TLP = tlp
	}
	items, next, err := s.o.Store.ListEvents(c.UserContext(), q)
	if err != nil {
		return err
	}
	if items == nil {
		items = []store.Summary{}
	}
	return c.JSON(fiber.Map{"events": items, "next": next})
}

func (s *Server) getEvent(c *fiber.Ctx) error {
	ev, err := s.o.Store.Event(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(ev)
}

func (s *Server) listConstituents(c *fiber.Ctx) error {
	cs, err := s.o.Store.Constituents(c.UserContext())
	if err != nil {
		return err
	}
	views := make([]constituentView, len(cs))
	for i, k := range cs {
		views[i] = viewOf(k, nil)
	}
	return c.JSON(fiber.Map{"constituents": views})
}

func (s *Server) getConstituent(c *fiber.Ctx) error {
	k, err := s.o.Store.Constituent(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(viewOf(k, nil))
}

func (s *Server) putConstituent(c *fiber.Ctx) error {
	if err := RequireJSON(c); err != nil {
		return err
	}
	id := c.Params("id")
	data, err := RequestBody(c, s.o.BodyLimit)
	if err != nil {
		return err
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return fail(c, fiber.StatusBadRequest, "body is not a JSON object", DecodeError(err))
	}
	if v, ok := raw["id"]; !ok {
		raw["id"] = id
	} else if v != id {
		return fail(c, fiber.StatusBadRequest, "invalid input", gateway.FieldError{Field: "/id", Message: "must match the id in the path"})
	}
	if errs := schemas.Validate(schemas.Constituent, raw); len(errs) > 0 {
		return validationFromSchema(errs)
	}
	body, _ := json.Marshal(raw)
	var k gateway.Constituent
	if err := json.Unmarshal(body, &k); err != nil {
		return fail(c, fiber.StatusBadRequest, "invalid input", DecodeError(err))
	}
	if fe := k.SecretProblems(true); len(fe) > 0 {
		return &gateway.ValidationError{Fields: fe}
	}
	if s.o.Destinations != nil {
		if fe := s.o.Destinations.CheckConstituent(&k); len(fe) > 0 {
			return &gateway.ValidationError{Fields: fe}
		}
	}
	generated, err := generateSecrets(&k)
	if err != nil {
		return err
	}
	created, err := s.o.Store.PutConstituent(c.UserContext(), k)
	if err != nil {
		return err
	}
	if err := s.o.Registry.Refresh(c.UserContext()); err != nil {
		return err
	}
	s.auditAdmin(c, audit.Record{Action: "constituent.put", Recipient: id})
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	// A generated secret is shown here, once; stored secrets never are.
	return c.Status(status).JSON(viewOf(k, generated))
}

// queryLimit reads ?limit=: def when absent, else an integer in 1..max; a
// problem names the parameter, so "abc" or "-1" is not silently the
// default.
func queryLimit(c *fiber.Ctx, def, max int) (int, *gateway.FieldError) {
	s := c.Query("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, &gateway.FieldError{Field: "limit", Message: "must be an integer in 1.." + strconv.Itoa(max)}
	}
	return n, nil
}

func validationFromSchema(errs []gateway.FieldError) error {
	return &gateway.ValidationError{Fields: errs}
}

func (s *Server) deleteConstituent(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := s.o.Store.DeleteConstituent(c.UserContext(), id); err != nil {
		return err
	}
	if err := s.o.Registry.Refresh(c.UserContext()); err != nil {
		return err
	}
	s.auditAdmin(c, audit.Record{Action: "constituent.deleted", Recipient: id})
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) constituentKey(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := s.o.Store.Constituent(c.UserContext(), id); err != nil {
		return err
	}
	return s.issueKey(c, store.Scope{Role: store.RoleConstituent, Name: id})
}

func (s *Server) sourceKey(c *fiber.Ctx) error {
	name := c.Params("name")
	if _, ok := s.sources[name]; !ok {
		return fail(c, fiber.StatusNotFound, "no configured source named "+name)
	}
	return s.issueKey(c, store.Scope{Role: store.RoleSource, Name: name})
}

func (s *Server) issueKey(c *fiber.Ctx, sc store.Scope) error {
	key, err := s.o.Store.CreateKey(c.UserContext(), sc)
	if err != nil {
		return err
	}
	s.auditAdmin(c, audit.Record{Action: "key.created", Recipient: sc.Name, Details: map[string]string{"role": string(sc.Role), "key_hash": store.KeyHash(key)}})
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"key": key, "role": sc.Role, "name": sc.Name})
}

func (s *Server) deliveries(c *fiber.Ctx) error {
	ev, who := c.Query("event"), c.Query("constituent")
	if ev == "" && who == "" {
		return fail(c, fiber.StatusBadRequest, "invalid query", gateway.FieldError{Field: "event", Message: "give event or constituent (or both)"})
	}
	states, err := s.o.Store.Deliveries(c.UserContext(), ev, who)
	if err != nil {
		return err
	}
	if states == nil {
		states = []store.DeliveryState{}
	}
	out := fiber.Map{"deliveries": states}
	if ev != "" {
		recs, err := s.o.Audit.ForEvent(c.UserContext(), ev, 1000)
		if err != nil {
			return err
		}
		if who != "" {
			kept := recs[:0]
			for _, r := range recs {
				if r.Recipient == who {
					kept = append(kept, r)
				}
			}
			recs = kept
		}
		if recs == nil {
			recs = []audit.Record{}
		}
		out["audit"] = recs
	}
	return c.JSON(out)
}

// ExplainResponse is the body of GET /api/v1/explain.
type ExplainResponse struct {
	Event        string            `json:"event"`
	Version      string            `json:"version"`
	Constituent  string            `json:"constituent"`
	TLP          gateway.TLP       `json:"tlp"`
	Concern      policy.Concern    `json:"concern"`
	Owned        int               `json:"owned_indicators"`
	Subscribed   bool              `json:"subscribed"`
	Subscription string            `json:"subscription,omitempty"`
	Channels     []policy.Decision `json:"channels"`
}

func (s *Server) explain(c *fiber.Ctx) error {
	evID, cid := c.Query("event"), c.Query("constituent")
	if evID == "" || cid == "" {
		return fail(c, fiber.StatusBadRequest, "invalid query", gateway.FieldError{Field: "event", Message: "event and constituent are both required"})
	}
	ev, err := s.o.Store.Event(c.UserContext(), evID)
	if err != nil {
		return err
	}
	snap := s.o.Registry.Current()
	k, ok := snap.Get(cid)
	if !ok {
		return fail(c, fiber.StatusNotFound, "no constituent "+cid)
	}
	a := policy.Assess(ev, snap)
	sub, why := policy.Subscribed(ev, k)
	var push policy.Push
	if s.o.Pipeline != nil {
		push = s.o.Pipeline.Push()
	}
	return c.JSON(ExplainResponse{
		Event: ev.ID, Version: ev.Version(), Constituent: k.ID, TLP: ev.TLP, Concern: a.Concern(k),
		Owned: len(a.OwnedBy(k.ID)), Subscribed: sub, Subscription: why, Channels: a.Explain(k, push),
	})
}

func (s *Server) listHeld(c *fiber.Ctx) error {
	items, err := s.o.Store.HeldItems(c.UserContext(), c.QueryBool("released", false))
	if err != nil {
		return err
	}
	if items == nil {
		items = []store.HeldItem{}
	}
	return c.JSON(fiber.Map{"held": items})
}

func (s *Server) release(c *fiber.Ctx) error {
	var body struct {
		Recipients []gateway.Addressee `json:"recipients"`
	}
	data, err := RequestBody(c, s.o.BodyLimit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return fail(c, fiber.StatusBadRequest, "invalid input", DecodeError(err))
	}
	caller, _ := CallerOf(c)
	h, n, err := s.o.Pipeline.Release(c.UserContext(), c.Params("id"), caller.Actor(), body.Recipients)
	if errors.Is(err, pipeline.ErrRelease) {
		return fail(c, fiber.StatusUnprocessableEntity, err.Error())
	}
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"held": h, "deliveries": n})
}

func (s *Server) deadLetters(c *fiber.Ctx) error {
	ch := gateway.Channel(c.Query("channel"))
	n, bad := queryLimit(c, 100, 1000)
	if bad != nil {
		return fail(c, fiber.StatusBadRequest, "invalid query", *bad)
	}
	items, err := s.o.Outbox.DeadLetters(c.UserContext(), ch, n)
	if err != nil {
		return err
	}
	type item struct {
		ID       string           `json:"id"`
		Delivery gateway.Delivery `json:"delivery"`
		Reason   string           `json:"reason"`
		Attempts int              `json:"attempts"`
		FailedAt time.Time        `json:"failed_at"`
	}
	out := make([]item, 0, len(items))
	for _, d := range items {
		out = append(out, item{ID: d.Delivery.ID, Delivery: d.Delivery, Reason: d.Reason, Attempts: d.Attempts, FailedAt: d.FailedAt})
	}
	return c.JSON(fiber.Map{"dead_letters": out})
}

func (s *Server) retryDead(c *fiber.Ctx) error {
	d, err := s.o.Outbox.RetryDead(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	s.auditAdmin(c, audit.Record{Action: "deadletter.retry", EventID: d.EventID, Version: d.Version, DeliveryID: d.ID,
		Recipient: d.Recipient.String(), Channel: d.Channel, TLP: d.TLP})
	return c.JSON(fiber.Map{"status": "requeued", "delivery": d, "attempts_before": strconv.Itoa(d.Attempt)})
}

// discardDead removes a dead letter an analyst decided not to deliver; the
// decision is audited with the delivery it concerned.
func (s *Server) discardDead(c *fiber.Ctx) error {
	d, err := s.o.Outbox.DiscardDead(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	s.auditAdmin(c, audit.Record{Action: "deadletter.discarded", EventID: d.EventID, Version: d.Version, DeliveryID: d.ID,
		Recipient: d.Recipient.String(), Channel: d.Channel, TLP: d.TLP})
	return c.JSON(fiber.Map{"status": "discarded", "delivery": d})
}
