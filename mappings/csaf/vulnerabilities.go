package csaf

import (
	"strconv"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// affectedStatuses are the product_status lists whose products a
// vulnerability's Products name: the ones that are (or were) affected.
var affectedStatuses = []string{"first_affected", "known_affected", "last_affected"}

// scoreVersions are the score objects whose baseScore counts: CSAF 2.0
// scores[] hold cvss_v2 and cvss_v3, CSAF 2.1 metrics[].content adds cvss_v4.
var scoreVersions = []string{"cvss_v2", "cvss_v3", "cvss_v4"}

// vulnerabilities maps /vulnerabilities to one entry per CVE with the
// highest base score and the names of the affected products. Entries
// without a CVE (CSAF allows ids[] instead) cannot be represented and are
// left out; a CVE listed twice is merged.
func (m *mapper) vulnerabilities(root map[string]any, names map[string]string) []gateway.Vulnerability {
	list := arr(root, "vulnerabilities")
	if len(list) == 0 {
		return nil
	}
	var out []gateway.Vulnerability
	first := map[string]int{} // CVE → index in out
	firstPtr := map[string]string{}
	for i, item := range list {
		v, ok := item.(map[string]any)
		if !ok {
			continue
		}
		ptr := "/vulnerabilities/" + strconv.Itoa(i)
		raw := str(v, "cve")
		if raw == "" {
			continue
		}
		cve, err := normalize.CVE(raw)
		if err != nil {
			m.add(ptr+"/cve", "%s", err.Error())
			continue
		}
		vuln := gateway.Vulnerability{CVE: cve, CVSS: m.score(v, ptr)}
		vuln.Products = m.affected(v, ptr, names)
		if j, dup := first[cve]; dup {
			m.add(ptr+"/cve", "%s is listed again (first at %s); the entries are merged", cve, firstPtr[cve])
			out[j].CVSS = max(out[j].CVSS, vuln.CVSS)
			out[j].Products = appendNew(out[j].Products, vuln.Products...)
			continue
		}
		first[cve], firstPtr[cve] = len(out), ptr
		out = append(out, vuln)
	}
	return out
}

// score returns the highest base score in scores[] (CSAF 2.0) and
// metrics[].content (CSAF 2.1); 0 when there is none.
func (m *mapper) score(v map[string]any, ptr string) float64 {
	var best float64
	look := func(holder map[string]any, at string) {
		for _, ver := range scoreVersions {
			s, ok := obj(holder, ver)["baseScore"].(float64)
			if !ok {
				continue
			}
			if s < 0 || s > 10 {
				m.add(at+"/"+ver+"/baseScore", "base score %v is outside 0..10", s)
				continue
			}
			best = max(best, s)
		}
	}
	for j, s := range arr(v, "scores") {
		if o, ok := s.(map[string]any); ok {
			look(o, ptr+"/scores/"+strconv.Itoa(j))
		}
	}
	for j, s := range arr(v, "metrics") {
		if o, ok := s.(map[string]any); ok {
			look(obj(o, "content"), ptr+"/metrics/"+strconv.Itoa(j)+"/content")
		}
	}
	return best
}

// affected resolves the product ids in the affected statuses to names, in
// order, without duplicates. An id that product_tree does not define
// (CSAF mandatory test 6.1.1) is reported and kept as the bare id so the
// product is not lost.
func (m *mapper) affected(v map[string]any, ptr string, names map[string]string) []string {
	status := obj(v, "product_status")
	var out []string
	seen := map[string]bool{}
	for _, st := range affectedStatuses {
		for k, id := range arr(status, st) {
			s, ok := id.(string)
			if !ok || s == "" {
				continue
			}
			name, ok := names[s]
			if !ok {
				m.add(ptr+"/product_status/"+st+"/"+strconv.Itoa(k), "product id %q is not defined in /product_tree", s)
				name = s
			}
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// products maps every product id that /product_tree defines to its full
// product name: full_product_names, the products at the leaves of branches
// (to MaxBranchDepth) and the full_product_names of relationships. The
// first definition of an id wins (a second one breaks CSAF mandatory test
// 6.1.2 and is reported).
func (m *mapper) products(tree map[string]any) map[string]string {
	names := map[string]string{}
	where := map[string]string{}
	define := func(p map[string]any, ptr string) {
		id, name := str(p, "product_id"), str(p, "name")
		if id == "" {
			return
		}
		if at, dup := where[id]; dup {
			m.add(ptr+"/product_id", "product id %q is defined again (first at %s)", id, at)
			return
		}
		where[id] = ptr
		if name == "" {
			name = id
		}
		names[id] = name
	}
	for i, p := range arr(tree, "full_product_names") {
		if o, ok := p.(map[string]any); ok {
			define(o, "/product_tree/full_product_names/"+strconv.Itoa(i))
		}
	}
	var walk func(branches []any, ptr string, depth int)
	walk = func(branches []any, ptr string, depth int) {
		if len(branches) > 0 && depth > MaxBranchDepth {
			m.add(ptr, "branches nested deeper than %d levels are not read", MaxBranchDepth)
			return
		}
		for i, b := range branches {
			o, ok := b.(map[string]any)
			if !ok {
				continue
			}
			at := ptr + "/" + strconv.Itoa(i)
			if p, ok := o["product"].(map[string]any); ok {
				define(p, at+"/product")
			}
			walk(arr(o, "branches"), at+"/branches", depth+1)
		}
	}
	walk(arr(tree, "branches"), "/product_tree/branches", 1)
	// CSAF 2.0 relationships; CSAF 2.1 replaced them with product_paths.
	for _, key := range []string{"relationships", "product_paths"} {
		for i, r := range arr(tree, key) {
			if o, ok := r.(map[string]any); ok {
				if p, ok := o["full_product_name"].(map[string]any); ok {
					define(p, "/product_tree/"+key+"/"+strconv.Itoa(i)+"/full_product_name")
				}
			}
		}
	}
	return names
}

// appendNew appends the values not yet in list.
func appendNew(list []string, vals ...string) []string {
	seen := make(map[string]bool, len(list))
	for _, x := range list {
		seen[x] = true
	}
	for _, v := range vals {
		if !seen[v] {
			seen[v] = true
			list = append(list, v)
		}
	}
	return list
}
