package taxii

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway/views"
	"github.com/schakel/schakel/mappings/stix"
)

// readable resolves the collection of a read request and the caller's
// viewer, or the 404/403 TAXII prescribes.
func readable(c *fiber.Ctx) (*collection, views.Viewer, error) {
	col, ok := lookupCollection(c.Params("cid"))
	if !ok {
		return nil, views.Viewer{}, fail(fiber.StatusNotFound, "no collection "+c.Params("cid"))
	}
	sc := scope(c)
	if r, _ := col.access(sc); !r {
		return nil, views.Viewer{}, fail(fiber.StatusForbidden, "this key may not read collection "+col.Title)
	}
	return col, col.viewer(sc), nil
}

// setDateHeaders writes X-TAXII-Date-Added-First/Last; TAXII wants them on
// every 200 of the paged endpoints, and an empty page has no dates.
func setDateHeaders(c *fiber.Ctx, first, last int64) {
	c.Set("X-TAXII-Date-Added-First", Timestamp(time.UnixMicro(first)))
	c.Set("X-TAXII-Date-Added-Last", Timestamp(time.UnixMicro(last)))
}

type envelope struct {
	More    bool          `json:"more"`
	Next    string        `json:"next,omitempty"`
	Objects []stix.Object `json:"objects,omitempty"`
}

func (s *Server) readPage(c *fiber.Ctx) (page, error) {
	_, who, err := readable(c)
	if err != nil {
		return page{}, err
	}
	p, err := readParams(c)
	if err != nil {
		return page{}, err
	}
	q, err := p.pageQuery()
	if err != nil {
		return page{}, err
	}
	return s.page(c.UserContext(), who, q)
}

func (s *Server) objects(c *fiber.Ctx) error {
	pg, err := s.readPage(c)
	if err != nil {
		return err
	}
	next := ""
	if pg.more {
		next = pg.next.encode()
	}
	if len(pg.items) > 0 {
		setDateHeaders(c, pg.items[0].dateAdded, pg.items[len(pg.items)-1].dateAdded)
	}
	// Written by hand: the objects are encoded JSON already, and
	// encoding/json would re-validate every byte of them.
	size := 64
	for _, it := range pg.items {
		size += len(it.obj.JSON) + 1
	}
	buf := make([]byte, 0, size)
	buf = append(buf, `{"more":`...)
	buf = strconv.AppendBool(buf, pg.more)
	if next != "" {
		buf = append(buf, `,"next":`...)
		buf = strconv.AppendQuote(buf, next)
	}
	if len(pg.items) > 0 {
		buf = append(buf, `,"objects":[`...)
		for i, it := range pg.items {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, it.obj.JSON...)
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '}')
	c.Status(fiber.StatusOK)
	c.Set(fiber.HeaderContentType, MediaTAXII)
	return c.Send(buf)
}

type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

func (s *Server) manifest(c *fiber.Ctx) error {
	pg, err := s.readPage(c)
	if err != nil {
		return err
	}
	// next is not in the manifest resource of the 2.1 text (erratum
	// cti-taxii2#110); clients that page it need it, so it is added.
	out := struct {
		More    bool             `json:"more"`
		Next    string           `json:"next,omitempty"`
		Objects []manifestRecord `json:"objects,omitempty"`
	}{More: pg.more}
	if pg.more {
		out.Next = pg.next.encode()
	}
	for _, it := range pg.items {
		out.Objects = append(out.Objects, manifestRecord{ID: it.obj.ID, DateAdded: Timestamp(time.UnixMicro(it.dateAdded)), Version: it.version, MediaType: MediaSTIX})
	}
	if len(pg.items) > 0 {
		setDateHeaders(c, pg.items[0].dateAdded, pg.items[len(pg.items)-1].dateAdded)
	}
	return writeJSON(c, fiber.StatusOK, out)
}

// occurrences finds the versions of object oid the viewer may see, one per
// version (the earliest added), ordered by date_added.
func (s *Server) occurrences(ctx context.Context, who views.Viewer, oid string) ([]item, error) {
	typ, _, _ := strings.Cut(oid, "--")
	byVersion := map[string]item{}
	for attempt := 0; attempt < 2 && len(byVersion) == 0; attempt++ {
		if attempt == 1 {
			// Not found among the entries served so far: index the
			// viewer's newer entries and look again.
			if err := s.catchUp(ctx, who); err != nil {
				return nil, err
			}
		}
		cands, err := s.index.candidates(ctx, oid)
		if err != nil {
			return nil, err
		}
		for _, occ := range cands {
			it, ok, err := s.objectAt(ctx, who, occ, oid)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if prev, seen := byVersion[it.version]; !seen || it.dateAdded < prev.dateAdded {
				byVersion[it.version] = it
			}
			if shared(typ) {
				break // the same object in every event that carries it
			}
		}
	}
	if len(byVersion) == 0 && shared(typ) {
		// The definitions and identities every event carries may have
		// been indexed only from events this viewer cannot see: look in
		// the viewer's own collection.
		pg, err := s.page(ctx, who, pageQuery{limit: 1, match: match{ids: map[string]bool{oid: true}}})
		if err != nil {
			return nil, err
		}
		for _, it := range pg.items {
			byVersion[it.version] = it
		}
	}
	out := make([]item, 0, len(byVersion))
	for _, it := range byVersion {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.dateAdded, b.dateAdded), strings.Compare(a.version, b.version))
	})
	return out, nil
}

// selectVersions applies match[version] to one object's versions: last is
// the default, first and exact timestamps add to it, all takes everything.
func selectVersions(items []item, vm versionMatch) []item {
	if len(items) == 0 || vm.all {
		return items
	}
	byTime := slices.Clone(items)
	slices.SortStableFunc(byTime, func(a, b item) int { return versionTime(a.version).Compare(versionTime(b.version)) })
	first, last := byTime[0], byTime[len(byTime)-1]
	var out []item
	for _, it := range items {
		switch {
		case (!vm.set || vm.last) && it.version == last.version,
			vm.first && it.version == first.version,
			len(vm.exact) > 0 && vm.exactly(it.version):
			out = append(out, it)
		}
	}
	return out
}

func versionTime(v string) time.Time {
	t, _ := ParseTimestamp(v)
	return t
}

// offsetCursor pages the short lists of the object endpoints.
const offsetPrefix = "o."

func encodeOffset(n int) string {
	return offsetPrefix + base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(n)))
}

func decodeOffset(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(s, offsetPrefix)
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	n, err2 := strconv.Atoi(string(raw))
	if !ok || err != nil || err2 != nil || n < 0 {
		return 0, badParam("next", errCursor.Error())
	}
	return n, nil
}

// objectItems answers the common part of "get an object" and "versions":
// the visible versions of the object after added_after, one page of them.
func (s *Server) objectItems(c *fiber.Ctx, withVersion bool) (items []item, more bool, next string, err error) {
	_, who, err := readable(c)
	if err != nil {
		return nil, false, "", err
	}
	p, err := readParams(c)
	if err != nil {
		return nil, false, "", err
	}
	limit, err := p.limit()
	if err != nil {
		return nil, false, "", err
	}
	after, err := p.addedAfter()
	if err != nil {
		return nil, false, "", err
	}
	m, err := p.match(false)
	if err != nil {
		return nil, false, "", err
	}
	offset, err := decodeOffset(p["next"])
	if err != nil {
		return nil, false, "", err
	}
	oid := c.Params("oid")
	all, err := s.occurrences(c.UserContext(), who, oid)
	if err != nil {
		return nil, false, "", err
	}
	if len(all) == 0 {
		return nil, false, "", fail(fiber.StatusNotFound, "no object "+oid+" in this collection")
	}
	if m.noSpec {
		return nil, false, "", nil
	}
	if withVersion {
		all = selectVersions(all, m.versions)
	}
	if after != nil {
		us := after.UnixMicro()
		all = slices.DeleteFunc(all, func(it item) bool { return it.dateAdded <= us })
	}
	if offset >= len(all) {
		return nil, false, "", nil
	}
	all = all[offset:]
	if len(all) > limit {
		return all[:limit], true, encodeOffset(offset + limit), nil
	}
	return all, false, "", nil
}

func (s *Server) object(c *fiber.Ctx) error {
	items, more, next, err := s.objectItems(c, true)
	if err != nil {
		return err
	}
	env := envelope{More: more, Next: next}
	for _, it := range items {
		env.Objects = append(env.Objects, it.obj)
	}
	if len(items) > 0 {
		setDateHeaders(c, items[0].dateAdded, items[len(items)-1].dateAdded)
	}
	return writeJSON(c, fiber.StatusOK, env)
}

func (s *Server) versions(c *fiber.Ctx) error {
	items, more, next, err := s.objectItems(c, false)
	if err != nil {
		return err
	}
	out := struct {
		More     bool     `json:"more"`
		Next     string   `json:"next,omitempty"`
		Versions []string `json:"versions,omitempty"`
	}{More: more, Next: next}
	for _, it := range items {
		out.Versions = append(out.Versions, it.version)
	}
	if len(items) > 0 {
		setDateHeaders(c, items[0].dateAdded, items[len(items)-1].dateAdded)
	}
	return writeJSON(c, fiber.StatusOK, out)
}

// deleteObject follows TAXII §5.7: deleting needs read and write access to
// the collection, which no key has here — events are withdrawn by their
// source, not by a reader — so the answer is 404 without either and 403
// with one of them.
func (s *Server) deleteObject(c *fiber.Ctx) error {
	col, ok := lookupCollection(c.Params("cid"))
	if !ok {
		return fail(fiber.StatusNotFound, "no collection "+c.Params("cid"))
	}
	r, w := col.access(scope(c))
	switch {
	case !r && !w:
		return fail(fiber.StatusNotFound, "no collection "+c.Params("cid")+" for this key")
	case !r || !w:
		return fail(fiber.StatusForbidden, "this key may not delete from collection "+col.Title)
	}
	return fail(fiber.StatusForbidden, "objects are withdrawn by their source, not deleted over TAXII")
}
