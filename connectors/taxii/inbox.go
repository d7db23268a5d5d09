package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/mappings/stix"
)

// statusDetail and statusResource are TAXII §4.3.1.
type statusDetail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

type statusResource struct {
	ID               string         `json:"id"`
	Status           string         `json:"status"`
	RequestTimestamp string         `json:"request_timestamp,omitempty"`
	TotalCount       int            `json:"total_count"`
	SuccessCount     int            `json:"success_count"`
	Successes        []statusDetail `json:"successes,omitempty"`
	FailureCount     int            `json:"failure_count"`
	Failures         []statusDetail `json:"failures,omitempty"`
	PendingCount     int            `json:"pending_count"`
	Pendings         []statusDetail `json:"pendings,omitempty"`
}

// statusRecord is what Redis keeps: the resource and who may read it.
type statusRecord struct {
	Owner  string         `json:"owner"`
	Status statusResource `json:"status"`
}

// maxStatusDetails bounds the lists kept in a status; larger adds keep only
// the counts (taxii2-client checks that a list, when present, is complete).
const maxStatusDetails = 10000

func (s *Server) statusKey(id string) string { return s.prefix + ":taxii:status:{" + id + "}" }

// addObjects is the inbox: the envelope (or bundle) is mapped to canonical
// events and ingested as the posting source, synchronously, so the status
// answered is already complete.
func (s *Server) addObjects(c *fiber.Ctx) error {
	col, ok := lookupCollection(c.Params("cid"))
	if !ok {
		return fail(fiber.StatusNotFound, "no collection "+c.Params("cid"))
	}
	sc := scope(c)
	if _, w := col.access(sc); !w {
		return fail(fiber.StatusForbidden, "this key may not add objects to collection "+col.Title)
	}
	if !postable(c.Get(fiber.HeaderContentType)) {
		return fail(fiber.StatusUnsupportedMediaType, "Content-Type must be "+MediaTAXII+" (an envelope) or "+MediaSTIX+" (a bundle)")
	}
	// Not c.Body(): it inflates a compressed body without a bound.
	body, err := httpapi.RequestBody(c, s.o.MaxContentLength)
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fail(fe.Code, fe.Message)
	}
	if len(body) > s.o.MaxContentLength {
		return fail(fiber.StatusRequestEntityTooLarge, "body is larger than max_content_length "+strconv.Itoa(s.o.MaxContentLength))
	}
	src, ok := s.o.Sources[sc.Name]
	if !ok {
		return fail(fiber.StatusForbidden, fmt.Sprintf("source %q is not configured", sc.Name))
	}
	if src.Format == "" {
		src.Format = "stix"
	}
	if s.ingest == nil {
		return fail(fiber.StatusServiceUnavailable, "ingest is not available")
	}
	if !json.Valid(body) {
		return fail(fiber.StatusBadRequest, "body is not JSON")
	}
	objs, err := readPosted(body)
	if err != nil {
		return fail(fiber.StatusUnprocessableEntity, httpapi.PlainError(err))
	}
	dec, err := stix.DecodeAll(body)
	if err != nil {
		return &httpError{status: fiber.StatusUnprocessableEntity, desc: "the body cannot be mapped: " + httpapi.PlainError(err)}
	}
	events := dec.Events
	now := s.now().UTC()
	b := newBook(objs, Timestamp(now))
	b.fieldErrors(dec.Errors)
	b.unused(dec.Unused)
	ctx := c.UserContext()
	// Until the events are in, the status says pending: a client that
	// learns the id (a retry, a log) sees the envelope is being worked on.
	id := uuid.NewString()
	if err := s.keepStatus(ctx, sc.Name, b.pending(id, Timestamp(now))); err != nil {
		return err
	}
	for _, ev := range events {
		orig := ev.Clone()
		res, err := s.ingest.Ingest(ctx, src, ev)
		var ve *gateway.ValidationError
		if errors.As(err, &ve) {
			b.eventFailed(orig, ve.Error())
			continue
		}
		if err != nil {
			return fmt.Errorf("ingest posted objects: %w", err)
		}
		b.eventDone(orig, res)
	}
	st := b.status(id, Timestamp(now))
	if err := s.keepStatus(ctx, sc.Name, st); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "taxii objects added", "source", sc.Name, "status", st.ID, "objects", st.TotalCount,
		"failed", st.FailureCount, "events", len(events))
	return writeJSON(c, fiber.StatusAccepted, st)
}

func (s *Server) keepStatus(ctx context.Context, owner string, st statusResource) error {
	rec, err := json.Marshal(statusRecord{Owner: owner, Status: st})
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.statusKey(st.ID), rec, s.o.StatusTTL).Err(); err != nil {
		return fmt.Errorf("keep status %s: %w", st.ID, err)
	}
	return nil
}

// status answers a status resource to the source that created it (and to
// admin keys); to anyone else it does not exist.
func (s *Server) status(c *fiber.Ctx) error {
	id := c.Params("sid")
	raw, err := s.rdb.Get(c.UserContext(), s.statusKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return fail(fiber.StatusNotFound, "no status "+id+" (statuses are kept "+s.o.StatusTTL.String()+")")
	}
	if err != nil {
		return err
	}
	var rec statusRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return fmt.Errorf("read status %s: %w", id, err)
	}
	sc := scope(c)
	if sc.Role != store.RoleAdmin && !(sc.Role == store.RoleSource && sc.Name == rec.Owner) {
		return fail(fiber.StatusNotFound, "no status "+id)
	}
	return writeJSON(c, fiber.StatusOK, rec.Status)
}

// posted is what the status needs of one posted object.
type posted struct {
	ID         string   `json:"id"`
	Type       string   `json:"type"`
	Modified   string   `json:"modified"`
	Created    string   `json:"created"`
	ObjectRefs []string `json:"object_refs"`
}

// readPosted lists the posted objects: those of an envelope or bundle, or a
// single object. Objects that do not read are kept as blanks so the
// positions stay those of the body.
func readPosted(body []byte) ([]posted, error) {
	var head struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, fmt.Errorf("body is not a TAXII envelope or STIX bundle: %w", err)
	}
	if head.Objects == nil && head.Type != "" && head.Type != "bundle" {
		head.Objects = []json.RawMessage{body}
	}
	out := make([]posted, len(head.Objects))
	for i, raw := range head.Objects {
		_ = json.Unmarshal(raw, &out[i])
	}
	return out, nil
}

// book keeps the outcome of every posted object.
type book struct {
	objs     []posted
	failed   []string // message when failed
	note     []string // message when succeeded with a remark
	byID     map[string][]int
	refd     map[string]bool // ids some report or grouping refers to
	fallback string          // version for objects without one (SCOs)
}

func newBook(objs []posted, now string) *book {
	b := &book{objs: objs, failed: make([]string, len(objs)), note: make([]string, len(objs)),
		byID: map[string][]int{}, refd: map[string]bool{}, fallback: now}
	for i, o := range objs {
		b.byID[o.ID] = append(b.byID[o.ID], i)
		if o.Type == "report" || o.Type == "grouping" {
			for _, r := range o.ObjectRefs {
				b.refd[r] = true
			}
		}
	}
	return b
}

var objectPointer = regexp.MustCompile(`^/objects/(\d+)(/.*)?$`)

// fieldErrors applies the mapper's problems: an unreadable object, or one
// without type or id, failed; anything else was mapped with a remark.
func (b *book) fieldErrors(ferrs []gateway.FieldError) {
	for _, fe := range ferrs {
		i, rest := 0, fe.Field
		if m := objectPointer.FindStringSubmatch(fe.Field); m != nil {
			i, _ = strconv.Atoi(m[1])
			rest = m[2]
		}
		if i >= len(b.objs) {
			continue
		}
		if rest == "" || rest == "/type" || rest == "/id" {
			b.failed[i] = fe.Message
		} else {
			b.note[i] = joinMsg(b.note[i], strings.TrimPrefix(rest, "/")+": "+fe.Message)
		}
	}
}

// unused fails the objects that became part of no event (neither mapped
// nor kept as pass-through), with the mapper's reason.
func (b *book) unused(why map[string]string) {
	for ptr, msg := range why {
		i := 0
		if ptr != "" {
			m := objectPointer.FindStringSubmatch(ptr)
			if m == nil || m[2] != "" {
				continue
			}
			i, _ = strconv.Atoi(m[1])
		}
		if i < len(b.objs) && b.failed[i] == "" {
			b.failed[i] = "not relayed: " + msg
		}
	}
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// eventFailed marks the objects an event came from: its report or grouping
// and what that refers to, or, for the event of unreferenced objects, those.
func (b *book) eventFailed(ev *gateway.Event, msg string) {
	msg = "not ingested: " + msg
	if idx, ok := b.byID[ev.Source.Ref]; ok && ev.Source.Ref != "" {
		for _, i := range idx {
			b.failed[i] = msg
			for _, r := range b.objs[i].ObjectRefs {
				for _, j := range b.byID[r] {
					b.failed[j] = msg
				}
			}
		}
		return
	}
	for i, o := range b.objs {
		if !b.refd[o.ID] && o.Type != "report" && o.Type != "grouping" && o.Type != "marking-definition" && o.Type != "identity" && o.Type != "extension-definition" {
			b.failed[i] = msg
		}
	}
}

// eventDone notes a duplicate on the event's report and fails the
// indicators the gateway rejected, found by the STIX id they were read from.
func (b *book) eventDone(ev *gateway.Event, res gateway.Result) {
	if res.Status == gateway.StatusDuplicate {
		for _, i := range b.byID[ev.Source.Ref] {
			b.note[i] = joinMsg(b.note[i], "already present")
		}
	}
	for _, fe := range res.Rejected {
		rest, ok := strings.CutPrefix(fe.Field, "/indicators/")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(rest, "/", 2)[0])
		if err != nil || n >= len(ev.Indicators) {
			continue
		}
		for _, i := range b.byID[ev.Indicators[n].Attributes[stix.AttrID]] {
			b.failed[i] = "indicator rejected: " + fe.Message
		}
	}
}

// pending is the status while the envelope is processed: every object
// pending.
func (b *book) pending(id, now string) statusResource {
	st := statusResource{ID: id, Status: "pending", RequestTimestamp: now, TotalCount: len(b.objs), PendingCount: len(b.objs)}
	if len(b.objs) <= maxStatusDetails {
		for i := range b.objs {
			st.Pendings = append(st.Pendings, b.detail(i))
		}
	}
	return st
}

func (b *book) detail(i int) statusDetail {
	o := b.objs[i]
	d := statusDetail{ID: o.ID, Version: o.Modified}
	if d.ID == "" {
		d.ID = "/objects/" + strconv.Itoa(i)
	}
	if d.Version == "" {
		d.Version = o.Created
	}
	if d.Version == "" {
		d.Version = b.fallback
	}
	return d
}

func (b *book) status(id, now string) statusResource {
	st := statusResource{ID: id, Status: "complete", RequestTimestamp: now, TotalCount: len(b.objs)}
	for i := range b.objs {
		d := b.detail(i)
		if b.failed[i] != "" {
			d.Message = b.failed[i]
			st.Failures = append(st.Failures, d)
			continue
		}
		d.Message = b.note[i]
		st.Successes = append(st.Successes, d)
	}
	st.SuccessCount, st.FailureCount = len(st.Successes), len(st.Failures)
	if len(st.Successes) > maxStatusDetails {
		st.Successes = nil
	}
	if len(st.Failures) > maxStatusDetails {
		st.Failures = nil
	}
	return st
}
