package misp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/store"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// pusher returns the MISP source a push comes from, or writes the refusal:
// only keys of a configured `type: misp` source may push.
func (s *Server) pusher(c *fiber.Ctx) (Source, bool, error) {
	caller, _ := httpapi.CallerOf(c)
	if caller.Scope.Role != store.RoleSource {
		return Source{}, false, fail(c, fiber.StatusForbidden, "Only a key of a MISP source may push events to this server")
	}
	src, ok := s.sources[caller.Scope.Name]
	if !ok {
		return Source{}, false, fail(c, fiber.StatusForbidden, fmt.Sprintf("Source %s is not a MISP source (type: misp)", caller.Scope.Name))
	}
	return src, true, nil
}

// filterForPush is POST /events/filterEventIdsForPush: of the offered
// [{"Event":{"uuid","timestamp"}}], the uuids this server does not have or
// has only in an older version.
func (s *Server) filterForPush(c *fiber.Ctx) error {
	src, ok, err := s.pusher(c)
	if !ok {
		return err
	}
	body, err := s.body(c)
	if err != nil {
		return s.reply(c, err)
	}
	var offers []struct {
		Event struct {
			UUID      string          `json:"uuid"`
			Timestamp json.RawMessage `json:"timestamp"`
		} `json:"Event"`
	}
	if err := json.Unmarshal(body, &offers); err != nil {
		return fail(c, fiber.StatusBadRequest, "body: expected a JSON array of {\"Event\":{\"uuid\",\"timestamp\"}}: "+httpapi.PlainError(err))
	}
	want := make([]string, 0, len(offers))
	for i, o := range offers {
		u, err := uuid.Parse(o.Event.UUID)
		if err != nil {
			return fail(c, fiber.StatusBadRequest, fmt.Sprintf("body[%d].Event.uuid: %q is not a uuid", i, o.Event.UUID))
		}
		tsText, err := scalar(o.Event.Timestamp)
		ts, perr := strconv.ParseInt(tsText, 10, 64)
		if err != nil || perr != nil {
			return fail(c, fiber.StatusBadRequest, fmt.Sprintf("body[%d].Event.timestamp: not an epoch", i))
		}
		id := u.String()
		vs, err := s.o.Store.Versions(c.UserContext(), id)
		if errors.Is(err, gateway.ErrNotFound) {
			want = append(want, o.Event.UUID)
			continue
		}
		if err != nil {
			return s.reply(c, err)
		}
		local, err := time.Parse(time.RFC3339Nano, vs[len(vs)-1])
		if err == nil && ts <= local.Unix() {
			continue
		}
		// Newer, but only the source that delivered it may update it.
		if owner, err := ownerOf(c.UserContext(), s.o.Store, id); err != nil {
			return s.reply(c, err)
		} else if owner == "" || owner == src.Name {
			want = append(want, o.Event.UUID)
		}
	}
	return c.JSON(want)
}

// EventLoader loads the current version of an event.
type EventLoader interface {
	Event(ctx context.Context, id string) (*gateway.Event, error)
}

// ownerOf names the source event id is stored under ("" when unknown).
// A source speaks only for itself: an event another source delivered is
// never overwritten by a push or a pull with the same uuid.
func ownerOf(ctx context.Context, st EventLoader, id string) (string, error) {
	ev, err := st.Event(ctx, id)
	if errors.Is(err, gateway.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return ev.Source.Name, nil
}

func (s *Server) add(c *fiber.Ctx) error { return s.save(c, "") }

func (s *Server) edit(c *fiber.Ctx) error {
	arg, _ := splitPath(c.Params("*"))
	if arg == "" {
		return fail(c, fiber.StatusBadRequest, "path: the event uuid to edit is missing")
	}
	return s.save(c, arg)
}

// pushReply is what MISP answers a saved push with (metadata:1 form).
type pushReply struct {
	Event struct {
		ID             string `json:"id"`
		UUID           string `json:"uuid"`
		Info           string `json:"info"`
		Timestamp      string `json:"timestamp"`
		Published      bool   `json:"published"`
		Locked         bool   `json:"locked"`
		AttributeCount string `json:"attribute_count"`
	} `json:"Event"`
}

// save is POST /events/add and /events/edit/{uuid}: the pushed event goes
// through the mapping into the pipeline like any ingest. A version that is
// not newer than the stored one gets MISP's benign 403.
func (s *Server) save(c *fiber.Ctx, target string) error {
	src, ok, err := s.pusher(c)
	if !ok {
		return err
	}
	what := "Could not add Event"
	if target != "" {
		what = "Could not edit Event"
	}
	body, err := s.body(c)
	if err != nil {
		return s.reply(c, err)
	}
	evs, problems, err := mispmap.Decode(body)
	if err != nil {
		return fail(c, fiber.StatusBadRequest, "body: "+httpapi.PlainError(err))
	}
	if len(evs) != 1 {
		return saveFailed(c, fiber.StatusForbidden, what, fmt.Sprintf("Event could not be saved: expected one event, got %d", len(evs)))
	}
	ev := evs[0]
	if target != "" {
		r, err := s.metas.resolve(c.UserContext(), target)
		if err != nil && !errors.Is(err, gateway.ErrNotFound) {
			return s.reply(c, err)
		}
		if !strings.EqualFold(r.id, ev.ID) {
			return saveFailed(c, fiber.StatusForbidden, what, fmt.Sprintf("Event could not be saved: the path names %s but the body is event %s", target, ev.ID))
		}
	}
	if ev.ID != "" {
		owner, err := ownerOf(c.UserContext(), s.o.Store, ev.ID)
		if err != nil {
			return s.reply(c, err)
		}
		if owner != "" && owner != src.Name {
			// MISP's benign wording, so the pushing MISP does not retry.
			s.o.Log.WarnContext(c.UserContext(), "misp push of an event another source delivered refused", "source", src.Name, "owner", owner, "event", ev.ID)
			return saveFailed(c, fiber.StatusForbidden, what, errNotNewer+" (The event came from another source; this server keeps that copy.)")
		}
	}
	res, err := s.o.Ingest.Ingest(c.UserContext(), gateway.Source{Name: src.Name, DefaultTLP: src.DefaultTLP, Format: mispmap.Format, Own: src.Own}, ev)
	var ve *gateway.ValidationError
	if errors.As(err, &ve) {
		msgs := make([]string, len(ve.Fields))
		for i, f := range ve.Fields {
			msgs[i] = f.Error()
		}
		return saveFailed(c, fiber.StatusForbidden, what, "Event could not be saved: "+strings.Join(msgs, "; "))
	}
	if err != nil {
		return s.reply(c, err)
	}
	if res.Status == gateway.StatusDuplicate {
		return saveFailed(c, fiber.StatusForbidden, what, errNotNewer)
	}
	if n := len(problems) + len(res.Rejected); n > 0 {
		s.o.Log.WarnContext(c.UserContext(), "misp push: parts of the event were rejected", "source", src.Name, "event", res.ID, "problems", n)
	}
	var out pushReply
	out.Event.UUID = ev.ID
	if u, err := uuid.Parse(ev.ID); err == nil {
		out.Event.UUID = u.String()
	}
	out.Event.ID = numID(out.Event.UUID)
	out.Event.Info = ev.Title
	out.Event.Timestamp = strconv.FormatInt(ev.Modified.Unix(), 10)
	out.Event.Published, out.Event.Locked = true, true
	out.Event.AttributeCount = strconv.Itoa(len(ev.Indicators))
	return c.JSON(out)
}
