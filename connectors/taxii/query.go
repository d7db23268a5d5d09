package taxii

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/mappings/stix"
)

// Page sizes: without a limit a page holds DefaultLimit objects; larger
// limits are capped at MaxLimit (TAXII lets the server cap).
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// match holds the match[…] filters of TAXII §3.4.1.
type match struct {
	ids, types map[string]bool // nil: any
	versions   versionMatch
	noSpec     bool // match[spec_version] excludes 2.1, the only version served
}

type versionMatch struct {
	set              bool
	all, first, last bool
	exact            []time.Time
	exactStrings     []string
}

func (m match) none() bool { return m.noSpec }

// ok reports whether object o, at TAXII version v, passes the id, type and
// version filters. The collection holds the latest version of every event,
// so each object it lists is its own first and last version; only exact
// version timestamps narrow the listing.
func (m match) ok(o stix.Object, v string) bool {
	if m.noSpec {
		return false
	}
	if m.ids != nil && !m.ids[o.ID] {
		return false
	}
	if m.types != nil && !m.types[o.Type] {
		return false
	}
	return m.versions.listed(v)
}

func (vm versionMatch) listed(v string) bool {
	if !vm.set || vm.all || vm.first || vm.last {
		return true
	}
	return vm.exactly(v)
}

func (vm versionMatch) exactly(v string) bool {
	t, err := ParseTimestamp(v)
	if err != nil {
		return slices.Contains(vm.exactStrings, v)
	}
	for _, x := range vm.exact {
		if x.Equal(t) {
			return true
		}
	}
	return false
}

// params reads the query string, rejecting a parameter given twice (TAXII
// §3.4: each at most once). An empty value counts as absent: MISP sends
// "next=" on its first request.
type params map[string]string

func readParams(c *fiber.Ctx) (params, error) {
	p := params{}
	var err error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		key := string(k)
		if _, dup := p[key]; dup && err == nil {
			err = badParam(key, "is given more than once")
		}
		p[key] = strings.TrimSpace(string(v))
	})
	return p, err
}

func (p params) limit() (int, error) {
	s := p["limit"]
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, badParam("limit", "must be a positive integer")
	}
	return min(n, MaxLimit), nil
}

func (p params) addedAfter() (*time.Time, error) {
	s := p["added_after"]
	if s == "" {
		return nil, nil
	}
	t, err := ParseTimestamp(s)
	if err != nil {
		return nil, badParam("added_after", httpapi.PlainError(err))
	}
	return &t, nil
}

func (p params) next() (*position, error) {
	s := p["next"]
	if s == "" {
		return nil, nil
	}
	pos, err := decodePosition(s)
	if err != nil {
		return nil, badParam("next", httpapi.PlainError(err))
	}
	return &pos, nil
}

func list(s string) map[string]bool {
	m := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			m[v] = true
		}
	}
	return m
}

// match reads the match filters; withIDType is false on the object
// endpoints, where only version and spec_version apply.
func (p params) match(withIDType bool) (match, error) {
	var m match
	if withIDType {
		if s, ok := p["match[id]"]; ok {
			if m.ids = list(s); len(m.ids) == 0 {
				return m, badParam("match[id]", "must name at least one id")
			}
		}
		if s, ok := p["match[type]"]; ok {
			if m.types = list(s); len(m.types) == 0 {
				return m, badParam("match[type]", "must name at least one type")
			}
		}
	}
	if s, ok := p["match[spec_version]"]; ok {
		vs := list(s)
		if len(vs) == 0 {
			return m, badParam("match[spec_version]", "must name at least one version")
		}
		m.noSpec = !vs["2.1"]
	}
	if s, ok := p["match[version]"]; ok {
		vm := versionMatch{set: true}
		vals := list(s)
		if len(vals) == 0 {
			return m, badParam("match[version]", "must name at least one version")
		}
		for v := range vals {
			switch v {
			case "all":
				vm.all = true
			case "first":
				vm.first = true
			case "last":
				vm.last = true
			default:
				t, err := ParseTimestamp(v)
				if err != nil {
					return m, badParam("match[version]", "values are last, first, all or timestamps; "+strconv.Quote(v)+" is none of them")
				}
				vm.exact = append(vm.exact, t)
				vm.exactStrings = append(vm.exactStrings, v)
			}
		}
		if vm.all && len(vals) > 1 {
			return m, badParam("match[version]", "all must not be combined with other values")
		}
		m.versions = vm
	}
	return m, nil
}

func (p params) pageQuery() (pageQuery, error) {
	var q pageQuery
	var err error
	if q.limit, err = p.limit(); err != nil {
		return q, err
	}
	if q.after, err = p.addedAfter(); err != nil {
		return q, err
	}
	if q.from, err = p.next(); err != nil {
		return q, err
	}
	q.match, err = p.match(true)
	return q, err
}
