package misp

import (
	"context"
	_ "embed"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// The read API a PyMISP user calls beside sync: every answer is built from
// the caller's pull view, the same projection /events/view and restSearch
// serve, so nothing here can show more than those do.

// describeTypes is MISP's own type/category table (PyMISP's bundled copy,
// see testdata/SOURCES.txt).
//
//go:embed testdata/describeTypes.json
var describeTypes []byte

func (s *Server) describeTypes(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(describeTypes)
}

// scanView calls fn for every event (part) the viewer can see, in the
// order the index lists them; fn returns false to stop.
func (s *Server) scanView(ctx context.Context, who views.Viewer, fn func(e *mispmap.Event) bool) error {
	rows, err := s.list(ctx, who, &eventFilter{}, false)
	if err != nil {
		return err
	}
	return s.eachPart(ctx, who, rows, func(_ listed, e *mispmap.Event) (bool, error) {
		return fn(e), ctx.Err()
	})
}

// tagEntry is a tag as MISP's /tags/index lists it, with its usage in the
// caller's view.
type tagEntry struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Colour         string `json:"colour"`
	Exportable     bool   `json:"exportable"`
	OrgID          string `json:"org_id"`
	UserID         string `json:"user_id"`
	HideTag        bool   `json:"hide_tag"`
	NumericalValue *int   `json:"numerical_value"`
	IsGalaxy       bool   `json:"is_galaxy"`
	IsCustomGalaxy bool   `json:"is_custom_galaxy"`
	LocalOnly      bool   `json:"local_only"`
	Count          int    `json:"count"`
	AttributeCount int    `json:"attribute_count"`
	Favourite      bool   `json:"favourite"`
}

// viewTags collects the event and attribute tags of the viewer's events.
func (s *Server) viewTags(ctx context.Context, who views.Viewer) ([]*tagEntry, error) {
	byName := map[string]*tagEntry{}
	get := func(t mispmap.Tag) *tagEntry {
		x := byName[t.Name]
		if x == nil {
			x = &tagEntry{ID: strconv.FormatUint(numIDValue("tag:"+t.Name), 10), Name: t.Name, Colour: t.Colour,
				Exportable: true, OrgID: "0", UserID: "0", IsGalaxy: strings.HasPrefix(t.Name, "misp-galaxy:")}
			byName[t.Name] = x
		}
		return x
	}
	attrs := func(as []mispmap.Attribute) {
		for _, a := range as {
			for _, t := range a.Tag {
				get(t).AttributeCount++
			}
		}
	}
	err := s.scanView(ctx, who, func(e *mispmap.Event) bool {
		for _, t := range e.Tag {
			get(t).Count++
		}
		attrs(e.Attribute)
		for _, o := range e.Object {
			attrs(o.Attribute)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]*tagEntry, 0, len(byName))
	for _, x := range byName {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b *tagEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// tagsIndex is GET /tags/index: {"Tag":[…]} of the tags in the caller's view.
func (s *Server) tagsIndex(c *fiber.Ctx) error {
	who, _ := viewerOf(c)
	tags, err := s.viewTags(c.UserContext(), who)
	if err != nil {
		return s.reply(c, err)
	}
	return c.JSON(fiber.Map{"Tag": tags})
}

// tagsSearch is GET /tags/search/{name} and PyMISP's POST /tags/search
// {"tagname": …}: the view's tags whose name matches, "%" as wildcard,
// case-insensitive, as [{"Tag":{…}}].
func (s *Server) tagsSearch(c *fiber.Ctx) error {
	term := strings.TrimPrefix(c.Params("*"), "/")
	term = strings.TrimSuffix(term, ".json")
	if u, err := url.PathUnescape(term); err == nil {
		term = u
	}
	// PyMISP writes spaces in paths as "+".
	term = strings.ReplaceAll(term, "+", " ")
	if c.Method() == fiber.MethodPost {
		p, err := s.requestParams(c)
		if err != nil {
			return s.reply(c, badRequest{err})
		}
		for _, k := range []string{"tagname", "tag", "value"} {
			if raw, ok := p[k]; ok {
				if v, err := scalar(raw); err == nil && v != "" {
					term = v
					break
				}
			}
		}
	}
	if strings.TrimSpace(term) == "" {
		return fail(c, fiber.StatusBadRequest, "No tag name given (tagname)")
	}
	who, _ := viewerOf(c)
	tags, err := s.viewTags(c.UserContext(), who)
	if err != nil {
		return s.reply(c, err)
	}
	out := []fiber.Map{}
	for _, t := range tags {
		if like(term, t.Name) {
			out = append(out, fiber.Map{"Tag": t})
		}
	}
	return c.JSON(out)
}

// attributeView is GET|HEAD|POST /attributes/view/{id|uuid}: the attribute
// as /attributes/restSearch writes it, found only among the caller's view.
func (s *Server) attributeView(c *fiber.Ctx) error {
	arg, _ := splitPath(c.Params("*"))
	arg = strings.ToLower(strings.TrimSpace(arg))
	who, _ := viewerOf(c)
	var found []byte
	err := error(nil)
	if arg != "" {
		err = s.scanView(c.UserContext(), who, func(e *mispmap.Event) bool {
			num := numID(e.UUID)
			match := func(a *mispmap.Attribute, objectID string) bool {
				if a.UUID != arg && numID(a.UUID) != arg {
					return false
				}
				found = append([]byte(`{"Attribute":`), appendAttribute(nil, a, num, objectID, appendEventSummary(nil, e, num), "", nil)...)
				found = append(found, '}')
				return true
			}
			for i := range e.Attribute {
				if match(&e.Attribute[i], "0") {
					return false
				}
			}
			for _, o := range e.Object {
				for i := range o.Attribute {
					if match(&o.Attribute[i], numID(o.UUID)) {
						return false
					}
				}
			}
			return true
		})
	}
	if err != nil {
		return s.reply(c, err)
	}
	if found == nil {
		if c.Method() == fiber.MethodHead {
			return c.SendStatus(fiber.StatusNotFound)
		}
		return fail(c, fiber.StatusNotFound, "Invalid attribute")
	}
	if c.Method() == fiber.MethodHead {
		return c.SendStatus(fiber.StatusOK)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(found)
}

// orgEntry is an organisation as MISP's /organisations/index lists it.
type orgEntry struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	UUID        string `json:"uuid"`
	Description string `json:"description"`
	Type        string `json:"type"`
	Nationality string `json:"nationality"`
	Sector      string `json:"sector"`
	Local       bool   `json:"local"`
	UserCount   int    `json:"user_count"`
}

// organisations is GET /organisations/index[/scope:…]: Schakel's org and
// the creators (Orgc) of the events the caller can see.
func (s *Server) organisations(c *fiber.Ctx) error {
	who, _ := viewerOf(c)
	own := orgEntry{ID: "1", Name: s.o.Org.Name, UUID: s.enc.OrgUUID, Local: true}
	seen := map[string]bool{strings.ToLower(own.UUID): true, own.Name: true}
	var others []orgEntry
	err := s.scanView(c.UserContext(), who, func(e *mispmap.Event) bool {
		o := e.Orgc
		key := strings.ToLower(o.UUID)
		if key == "" {
			key = o.Name
		}
		if key == "" || seen[key] {
			return true
		}
		seen[key] = true
		id := o.ID
		if id == "" || id == "1" {
			id = numID("org:" + key)
		}
		others = append(others, orgEntry{ID: id, Name: o.Name, UUID: o.UUID})
		return true
	})
	if err != nil {
		return s.reply(c, err)
	}
	slices.SortFunc(others, func(a, b orgEntry) int { return strings.Compare(a.Name, b.Name) })
	out := []fiber.Map{{"Organisation": own}}
	for _, o := range others {
		out = append(out, fiber.Map{"Organisation": o})
	}
	return c.JSON(out)
}

// taxonomies is GET /taxonomies/index: the namespaces of the machine tags
// in the caller's view (tlp, admiralty-scale, …), galaxy tags aside.
func (s *Server) taxonomies(c *fiber.Ctx) error {
	who, _ := viewerOf(c)
	tags, err := s.viewTags(c.UserContext(), who)
	if err != nil {
		return s.reply(c, err)
	}
	count := map[string]int{}
	var names []string
	for _, t := range tags {
		ns, _, ok := strings.Cut(t.Name, ":")
		if !ok || ns == "" || ns == "misp-galaxy" || strings.ContainsAny(ns, " \t\"=") {
			continue
		}
		if count[ns] == 0 {
			names = append(names, ns)
		}
		count[ns]++
	}
	slices.Sort(names)
	out := []fiber.Map{}
	for _, ns := range names {
		out = append(out, fiber.Map{
			"Taxonomy": fiber.Map{"id": numID("taxonomy:" + ns), "namespace": ns, "description": "", "version": "1",
				"enabled": true, "exclusive": false, "required": false, "highlighted": false},
			"total_count": count[ns], "current_count": count[ns],
		})
	}
	return c.JSON(out)
}

// galaxies is GET /galaxies/index: the galaxy types of the misp-galaxy
// tags in the caller's view.
func (s *Server) galaxies(c *fiber.Ctx) error {
	who, _ := viewerOf(c)
	tags, err := s.viewTags(c.UserContext(), who)
	if err != nil {
		return s.reply(c, err)
	}
	seen := map[string]bool{}
	var types []string
	for _, t := range tags {
		rest, ok := strings.CutPrefix(t.Name, "misp-galaxy:")
		if !ok {
			continue
		}
		typ, _, _ := strings.Cut(rest, "=")
		if typ == "" || seen[typ] {
			continue
		}
		seen[typ] = true
		types = append(types, typ)
	}
	slices.Sort(types)
	out := []fiber.Map{}
	for _, typ := range types {
		out = append(out, fiber.Map{"Galaxy": fiber.Map{
			"id": numID("galaxy:" + typ), "uuid": uuid.NewSHA1(uuid.MustParse(s.enc.OrgUUID), []byte("galaxy:"+typ)).String(),
			"name": typ, "type": typ, "description": "", "version": "1", "icon": "", "namespace": "misp",
			"enabled": true, "local_only": false, "kill_chain_order": nil,
		}})
	}
	return c.JSON(out)
}

// sharingGroups is GET /sharing_groups/index: Schakel serves no sharing
// groups; MISP answers an empty index as {"response":[]}.
func sharingGroups(c *fiber.Ctx) error { return c.JSON(fiber.Map{"response": []any{}}) }

// mispControllers are the first path segments of MISP's API. Paths under
// them that no route serves answer in MISP's error shape; other prefixes
// (TAXII, /api/v1, the console, feeds) are left to their own routes.
var mispControllers = []string{"events", "attributes", "objects", "tags", "servers", "users", "organisations",
	"taxonomies", "galaxies", "galaxy_clusters", "sharing_groups", "sharingGroups", "shadow_attributes", "sightings"}

type route struct{ method, path string }

// matches reports whether route r (a fiber pattern as Mount registers it)
// serves path.
func (r route) matches(path string) bool {
	p := strings.ToLower(path)
	pat := strings.ToLower(r.path)
	switch {
	case strings.HasSuffix(pat, "/*"):
		base := strings.TrimSuffix(pat, "/*")
		return strings.HasPrefix(p, base+"/")
	case strings.HasSuffix(pat, "*"):
		base := strings.TrimSuffix(pat, "*")
		return p == base || p == base+".json" || strings.HasPrefix(p, base+"/")
	}
	return p == pat
}

// unrouted answers a MISP path no route served: 405 when another method
// serves it, 404 otherwise, both as MISP exceptions.
func unrouted(routes []route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var allow []string
		for _, r := range routes {
			if r.matches(c.Path()) && !slices.Contains(allow, r.method) {
				allow = append(allow, r.method)
			}
		}
		if len(allow) > 0 {
			if slices.Contains(allow, fiber.MethodGet) && !slices.Contains(allow, fiber.MethodHead) {
				allow = append(allow, fiber.MethodHead)
			}
			c.Set(fiber.HeaderAllow, strings.Join(allow, ", "))
			return fail(c, fiber.StatusMethodNotAllowed, "Method Not Allowed")
		}
		return fail(c, fiber.StatusNotFound, "Not Found")
	}
}
