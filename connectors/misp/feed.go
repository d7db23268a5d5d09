package misp

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// The MISP feed (/feeds/misp/) is the same view as the server API in the
// layout PyMISP's feed generator writes: manifest.json (an object keyed by
// event uuid), hashes.csv and one {uuid}.json per event (or part). With a
// constituent key in a header it is that constituent's view; without a key
// it is TLP:CLEAR only. Every file carries an ETag and answers 304.

type manifestOrg struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

func manifestOrgOf(o orgRef) manifestOrg { return manifestOrg{Name: o.Name, UUID: o.UUID} }

type manifestTag struct {
	Name   string `json:"name"`
	Colour string `json:"colour"`
}

type manifestEntry struct {
	Info          string        `json:"info"`
	Orgc          manifestOrg   `json:"Orgc"`
	Tag           []manifestTag `json:"Tag"`
	Date          string        `json:"date"`
	Analysis      string        `json:"analysis"`
	ThreatLevelID string        `json:"threat_level_id"`
	Timestamp     string        `json:"timestamp"`
}

// feedList lists the feed for the caller and sets the ETag; done is true
// when the caller's copy is current (304 sent).
func (s *Server) feedList(c *fiber.Ctx, form string) (views.Viewer, []listed, bool, error) {
	who, _ := viewerOf(c)
	rows, err := s.list(c.UserContext(), who, &eventFilter{}, false)
	if err != nil {
		return who, nil, false, err
	}
	etag := etagOf("feed:"+form, rows)
	c.Set(fiber.HeaderETag, etag)
	if notModified(c, etag) {
		return who, nil, true, c.SendStatus(fiber.StatusNotModified)
	}
	return who, rows, false, nil
}

// manifest is GET /feeds/misp/manifest.json.
func (s *Server) manifest(c *fiber.Ctx) error {
	_, rows, done, err := s.feedList(c, "manifest")
	if err != nil || done {
		return s.feedError(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		w.WriteByte('{')
		for i, r := range rows {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(`"` + r.uuid() + `":`)
			tags := make([]manifestTag, len(r.m.Tags))
			for j, t := range r.m.Tags {
				tags[j] = manifestTag{Name: t.Name, Colour: t.Colour}
			}
			if err := enc.Encode(manifestEntry{
				Info: partInfo(r.m.Info, r.part, r.parts), Orgc: manifestOrgOf(r.m.creator(s.o.Org)), Tag: tags, Date: r.m.Date,
				Analysis: r.m.Analysis, ThreatLevelID: r.m.Threat, Timestamp: strconv.FormatInt(r.ts, 10),
			}); err != nil {
				s.o.Log.Warn("misp feed manifest stream failed", "error", err)
				break
			}
		}
		w.WriteByte('}')
		_ = w.Flush()
	})
	return nil
}

// hashes is GET /feeds/misp/hashes.csv: md5(value),event_uuid per
// attribute value, composite values split, as MISP's feed cache reads it.
// It reads every listed event, streaming; clients revalidate with ETag.
func (s *Server) hashes(c *fiber.Ctx) error {
	who, rows, done, err := s.feedList(c, "hashes")
	if err != nil || done {
		return s.feedError(c, err)
	}
	ctx, cancel := streamCtx(c)
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		if err := s.writeHashes(ctx, w, who, rows); err != nil {
			s.o.Log.Warn("misp feed hashes stream failed", "error", err)
		}
		_ = w.Flush()
	})
	return nil
}

func (s *Server) writeHashes(ctx context.Context, w *bufio.Writer, who views.Viewer, rows []listed) error {
	var line []byte
	var werr error
	write := func(value, u string) {
		sum := md5.Sum([]byte(value))
		line = hex.AppendEncode(line[:0], sum[:])
		line = append(line, ',')
		line = append(line, u...)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			werr = err
		}
	}
	each := func(a *mispmap.Attribute, u string) {
		if strings.Contains(a.Type, "|") {
			for _, v := range strings.SplitN(a.Value, "|", 2) {
				write(v, u)
			}
			return
		}
		write(a.Value, u)
	}
	return s.eachPart(ctx, who, rows, func(r listed, e *mispmap.Event) (bool, error) {
		for i := range e.Attribute {
			each(&e.Attribute[i], e.UUID)
		}
		for _, o := range e.Object {
			for i := range o.Attribute {
				each(&o.Attribute[i], e.UUID)
			}
		}
		// A client that went away stops the reading of events.
		return werr == nil, werr
	})
}

// feedEvent is GET /feeds/misp/{uuid}.json.
func (s *Server) feedEvent(c *fiber.Ctx) error {
	name := c.Params("file")
	u, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return fail(c, fiber.StatusNotFound, "Not Found")
	}
	who, _ := viewerOf(c)
	p, err := s.lookup(c.UserContext(), who, u)
	if err != nil {
		return s.feedError(c, err)
	}
	h := sha1.Sum([]byte("feed-event:" + p.UUID + ":" + p.Timestamp + ":" + p.AttributeCount))
	etag := `"` + hex.EncodeToString(h[:]) + `"`
	c.Set(fiber.HeaderETag, etag)
	if notModified(c, etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	// The feed form is PyMISP's to_feed: the event without server ids.
	p.ID = ""
	body, err := marshalEvent(p)
	if err != nil {
		return s.feedError(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(body)
}

func (s *Server) feedError(c *fiber.Ctx, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gateway.ErrNotFound) {
		return fail(c, fiber.StatusNotFound, "Not Found")
	}
	return s.reply(c, err)
}
