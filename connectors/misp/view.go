package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// servedEvent is a MISP event as this server writes it: the mapping's event
// plus the bookkeeping fields MISP's own output carries.
type servedEvent struct {
	*mispmap.Event
	OrgID             string `json:"org_id"`
	OrgcID            string `json:"orgc_id"`
	Locked            bool   `json:"locked"`
	ProposalEmailLock bool   `json:"proposal_email_lock"`
	SightingTimestamp string `json:"sighting_timestamp"`
	Protected         *bool  `json:"protected"`
}

func served(p *mispmap.Event, withID bool) servedEvent {
	if withID {
		p.ID = numID(p.UUID)
	} else {
		p.ID = ""
	}
	out := servedEvent{Event: p, OrgID: "1", OrgcID: "1", Locked: true, SightingTimestamp: "0"}
	// Org is always this server; Orgc differs when the event came with
	// its originator (the pass-through Orgc).
	if p.Orgc != p.Org {
		out.OrgcID = orgNum(p.Orgc.Name, p.Orgc.UUID)
		p.Orgc.ID = out.OrgcID
	}
	return out
}

// marshalEvent writes {"Event":{…}} without HTML escaping, so values reach
// MISP byte for byte.
func marshalEvent(e any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Event any `json:"Event"`
	}{e}); err != nil {
		return nil, fmt.Errorf("marshal misp event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodedEvent is a viewer's projection of one event, encoded and cut.
type encodedEvent struct {
	e    *mispmap.Event
	cuts []cut
}

func (x encodedEvent) part(n int) *mispmap.Event { return part(x.e, x.cuts, n-1) }

// encodeFor loads event id as who may see it and encodes it. An event that
// cannot be served over MISP (RED, or one the mapping refuses) is reported
// as not found, exactly like one the viewer may not see.
func (s *Server) encodeFor(ctx context.Context, who views.Viewer, id string) (encodedEvent, error) {
	ev, err := s.o.Views.Event(ctx, who, id)
	if err != nil {
		return encodedEvent{}, err
	}
	e, err := mispmap.EncodeEvent(ev, s.enc)
	if err != nil {
		return encodedEvent{}, fmt.Errorf("%w: %v", gateway.ErrNotFound, err)
	}
	return encodedEvent{e: e, cuts: plan(e, PartSize)}, nil
}

// lookup resolves a uuid or numeric id and encodes the part it names.
func (s *Server) lookup(ctx context.Context, who views.Viewer, key string) (*mispmap.Event, error) {
	r, err := s.metas.resolve(ctx, key)
	if err != nil {
		return nil, err
	}
	x, err := s.encodeFor(ctx, who, r.id)
	if err != nil {
		return nil, err
	}
	if r.part > len(x.cuts) {
		return nil, fmt.Errorf("event %s part %d: %w", r.id, r.part, gateway.ErrNotFound)
	}
	return x.part(r.part), nil
}

// view is GET|HEAD /events/view/{uuid|id}[/named:params][.json]. Source
// keys asking HEAD learn only whether their own source already delivered
// the event (MISP's push asks before add or edit).
func (s *Server) view(c *fiber.Ctx) error {
	arg, _ := splitPath(c.Params("*"))
	who, caller := viewerOf(c)
	ctx := c.UserContext()
	if c.Method() == fiber.MethodHead && caller.Scope.Role == store.RoleSource {
		ok, err := s.ownEvent(ctx, caller.Scope.Name, arg)
		if err != nil {
			return s.reply(c, err)
		}
		if !ok {
			return c.SendStatus(fiber.StatusNotFound)
		}
		return c.SendStatus(fiber.StatusOK)
	}
	p, err := s.lookup(ctx, who, arg)
	if errors.Is(err, gateway.ErrNotFound) {
		if c.Method() == fiber.MethodHead {
			return c.SendStatus(fiber.StatusNotFound)
		}
		return fail(c, fiber.StatusNotFound, "Invalid event")
	}
	if err != nil {
		return s.reply(c, err)
	}
	if c.Method() == fiber.MethodHead {
		return c.SendStatus(fiber.StatusOK)
	}
	body, err := marshalEvent(served(p, true))
	if err != nil {
		return s.reply(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(body)
}

// ownEvent reports whether the store holds event key and it came from
// source name.
func (s *Server) ownEvent(ctx context.Context, source, key string) (bool, error) {
	r, err := s.metas.resolve(ctx, key)
	if errors.Is(err, gateway.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ev, err := s.o.Store.Event(ctx, r.id)
	if errors.Is(err, gateway.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ev.Source.Name == source, nil
}
