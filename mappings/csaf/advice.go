package csaf

import (
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// LabelCWEPrefix starts the label carrying a weakness a vulnerability of
// the advisory has: "cwe:CWE-787".
const LabelCWEPrefix = "cwe:"

// advice carries what a recipient acts on (ARCHITECTURE §11.5):
//
//   - /vulnerabilities[]/remediations → ev.Remediations: category, details
//     as text, url, and the names of the products in product_ids and
//     group_ids (group ids and unknown ids are kept as they are); the same
//     remediation under several vulnerabilities (CSAF repeats it per CVE)
//     is one entry with the products merged;
//   - /document/references and /vulnerabilities[]/references →
//     ev.References (url, summary), once per url;
//   - /vulnerabilities[]/cwe (CSAF 2.0) and cwes[] (CSAF 2.1) → labels
//     "cwe:<id>", once each;
//   - /vulnerabilities[]/threats → a "Threats" section appended to the
//     description, one line per threat: "<CVE> <category>: <details>".
func (m *mapper) advice(root map[string]any, ev *gateway.Event, names map[string]string) {
	refSeen := map[string]bool{}
	addRefs := func(list []any) {
		for _, r := range list {
			o, ok := r.(map[string]any)
			if !ok {
				continue
			}
			u := strings.TrimSpace(str(o, "url"))
			if u == "" || refSeen[u] {
				continue
			}
			refSeen[u] = true
			ev.References = append(ev.References, gateway.Reference{URL: u, Summary: strings.TrimSpace(str(o, "summary"))})
		}
	}
	addRefs(arr(obj(root, "document"), "references"))

	type remKey struct{ category, text, url string }
	remIdx := map[remKey]int{}
	cweSeen := map[string]bool{}
	addCWE := func(o map[string]any) {
		id := strings.TrimSpace(str(o, "id"))
		if id == "" || cweSeen[strings.ToUpper(id)] {
			return
		}
		cweSeen[strings.ToUpper(id)] = true
		ev.Labels = append(ev.Labels, LabelCWEPrefix+id)
	}
	var threats []string
	for i, item := range arr(root, "vulnerabilities") {
		v, ok := item.(map[string]any)
		if !ok {
			continue
		}
		ptr := "/vulnerabilities/" + strconv.Itoa(i)
		if c, ok := v["cwe"].(map[string]any); ok {
			addCWE(c)
		}
		for _, c := range arr(v, "cwes") {
			if o, ok := c.(map[string]any); ok {
				addCWE(o)
			}
		}
		addRefs(arr(v, "references"))
		for j, r := range arr(v, "remediations") {
			o, ok := r.(map[string]any)
			if !ok {
				continue
			}
			rem := gateway.Remediation{
				Category: strings.TrimSpace(str(o, "category")),
				Text:     strings.TrimSpace(str(o, "details")),
				URL:      strings.TrimSpace(str(o, "url")),
			}
			if rem.Text == "" && rem.URL == "" {
				m.add(ptr+"/remediations/"+strconv.Itoa(j)+"/details", "remediation has no details and no url; left out")
				continue
			}
			rem.Products = productNames(o, names)
			k := remKey{rem.Category, rem.Text, rem.URL}
			if at, dup := remIdx[k]; dup {
				ev.Remediations[at].Products = appendNew(ev.Remediations[at].Products, rem.Products...)
				continue
			}
			remIdx[k] = len(ev.Remediations)
			ev.Remediations = append(ev.Remediations, rem)
		}
		name := strings.TrimSpace(str(v, "cve"))
		if name == "" {
			name = strings.TrimSpace(str(v, "title"))
		}
		for _, t := range arr(v, "threats") {
			o, ok := t.(map[string]any)
			if !ok {
				continue
			}
			details := strings.TrimSpace(str(o, "details"))
			if details == "" {
				continue
			}
			line := strings.TrimSpace(name + " " + str(o, "category"))
			threats = append(threats, "- "+line+": "+details)
		}
	}
	if len(threats) > 0 {
		if ev.Description != "" {
			ev.Description += "\n\n"
		}
		ev.Description += "Threats\n" + strings.Join(threats, "\n")
	}
}

// productNames resolves a remediation's product_ids to product names and
// adds its group_ids as they are.
func productNames(o map[string]any, names map[string]string) []string {
	var out []string
	for _, key := range []string{"product_ids", "group_ids"} {
		for _, id := range arr(o, key) {
			s, ok := id.(string)
			if !ok || s == "" {
				continue
			}
			if n, ok := names[s]; ok {
				s = n
			}
			out = appendNew(out, s)
		}
	}
	return out
}
