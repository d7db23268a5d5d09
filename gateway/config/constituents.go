package config

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/schemas"
)

// ParseConstituents reads a constituents file: YAML (a list, or a mapping
// {constituents: [...]}) or JSON, each entry validated against
// schemas.Constituent. Errors name the entry's index, its id and the field
// with its line; all of them are reported, joined with errors.Join.
func ParseConstituents(data []byte) ([]gateway.Constituent, error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	doc, errs, fatal := toValue(root)
	if fatal {
		return nil, errors.Join(errs...)
	}
	listPtr := ""
	list, ok := doc.([]any)
	if m, isMap := doc.(map[string]any); isMap {
		for k := range m {
			if k != "constituents" {
				return nil, &Error{Path: displayPath(doc, "/"+escapeToken(k), ""), Line: locate(root, "/"+escapeToken(k)),
					Message: `unexpected key; a constituents file is a list, or a mapping with the one key "constituents"`}
			}
		}
		list, ok = m["constituents"].([]any)
		listPtr = "/constituents"
	}
	if !ok {
		return nil, &Error{Line: locate(root, listPtr), Message: "expected a list of constituents"}
	}

	out := make([]gateway.Constituent, 0, len(list))
	ids := map[string]int{}
	all := errs
	for i, item := range list {
		ptr := listPtr + "/" + strconv.Itoa(i)
		base := fmt.Sprintf("constituents[%d]", i)
		id := itemID(item)
		fail := func(sub, msg string) {
			all = append(all, &Error{Path: displayPath(item, sub, base), Line: locate(root, ptr+sub), ID: id, Message: msg})
		}
		c, problems := decodeConstituent(item)
		for _, p := range problems {
			fail(p.Field, p.Message)
		}
		if len(problems) > 0 {
			continue
		}
		if first, dup := ids[c.ID]; dup {
			fail("/id", fmt.Sprintf("id is already used by constituents[%d]", first))
			continue
		}
		ids[c.ID] = i
		out = append(out, c)
	}
	if len(all) > 0 {
		return nil, errors.Join(all...)
	}
	return out, nil
}

// RefuseGenerate reports constituents whose webhook secret is "generate",
// for callers that store constituents directly (constituents_file, the
// console import): only the admin API creates a secret and shows it once.
func RefuseGenerate(cs []gateway.Constituent) error {
	var errs []error
	for i := range cs {
		for _, fe := range cs[i].SecretProblems(false) {
			errs = append(errs, fmt.Errorf("constituent %s: %s", cs[i].ID, fe.Error()))
		}
	}
	return errors.Join(errs...)
}

func itemID(item any) string {
	m, _ := item.(map[string]any)
	id, _ := m["id"].(string)
	return id
}

// decodeConstituent validates one entry and decodes it; problems carry
// JSON pointers relative to the entry.
func decodeConstituent(item any) (gateway.Constituent, []gateway.FieldError) {
	var c gateway.Constituent
	if errs := schemas.Validate(schemas.Constituent, item); errs != nil {
		return c, errs
	}
	data, err := json.Marshal(item)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return c, []gateway.FieldError{{Message: "cannot decode: " + err.Error()}}
	}
	var errs []gateway.FieldError
	for i, ct := range c.Contacts {
		for _, f := range contactKeyFields(ct) {
			if _, err := f.parse(f.value); err != nil {
				errs = append(errs, gateway.FieldError{Field: fmt.Sprintf("/contacts/%d/%s", i, f.name), Message: err.Error()})
			}
		}
	}
	// "generate" passes: schakel constituents import sends it to the admin
	// API, which creates the secret; callers that store directly refuse it.
	for _, fe := range c.SecretProblems(true) {
		errs = append(errs, gateway.FieldError{Field: fe.Field, Message: fe.Message})
	}
	for i, p := range c.Assets.Prefixes {
		if !validPrefix(p) {
			errs = append(errs, gateway.FieldError{Field: fmt.Sprintf("/assets/prefixes/%d", i),
				Message: fmt.Sprintf("%q is not an IP prefix (192.0.2.0/24, 2001:db8::/32) or address", p)})
		}
	}
	return c, errs
}

func validPrefix(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func escapeToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// CSV columns of the constituents import form, and the JSON pointer (within
// a constituent) that each one fills.
var csvColumns = map[string]string{
	"id":             "/id",
	"name":           "/name",
	"sectors":        "/sectors",
	"asns":           "/assets/asns",
	"prefixes":       "/assets/prefixes",
	"domains":        "/assets/domains",
	"contacts":       "/contacts",
	"webhook_url":    "/webhooks/0/url",
	"webhook_secret": "/webhooks/0/secret",
	"misp_url":       "/misp_push/url",
	"misp_key":       "/misp_push/key",
}

// ParseConstituentsCSV reads the CSV import form. The header row names the
// columns, in any order: id and name are required; sectors, asns,
// prefixes, domains, contacts, webhook_url, webhook_secret, misp_url and
// misp_key are optional. Multi-valued cells are separated by ";" or
// whitespace; a contact is "Name <email>" or "email", and a trailing "!red"
// marks a contact that may receive TLP:RED ("Jan <jan@a.example>!red").
// A header with ";" and no "," switches the delimiter to ";" (as spreadsheet
// programs in Dutch locales write it); values are then separated by
// whitespace only. Errors name the line and column.
func ParseConstituentsCSV(r io.Reader) ([]gateway.Constituent, error) {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	if first, err := br.Peek(br.Size()); len(first) > 0 && (err == nil || errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull)) {
		head, _, _ := bytes.Cut(first, []byte("\n"))
		if !bytes.ContainsRune(head, ',') && bytes.ContainsRune(head, ';') {
			cr.Comma = ';'
		}
	}

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &Error{Message: "empty CSV: expected a header row naming the columns (id,name,…)"}
	}
	if err != nil {
		return nil, csvError(err)
	}
	cols := make([]string, len(header))
	var all []error
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		cols[i] = h
		line, col := cr.FieldPos(i)
		switch {
		case csvColumns[h] == "":
			all = append(all, &Error{Path: h, Line: line, Column: col, Message: "unknown column; expected id, name, sectors, asns, prefixes, domains, contacts, webhook_url, webhook_secret, misp_url, misp_key"})
		case seen[h]:
			all = append(all, &Error{Path: h, Line: line, Column: col, Message: "column appears twice"})
		}
		seen[h] = true
	}
	for _, req := range []string{"id", "name"} {
		if !seen[req] {
			all = append(all, &Error{Line: 1, Message: fmt.Sprintf("header has no %q column", req)})
		}
	}
	if len(all) > 0 {
		return nil, errors.Join(all...)
	}

	var out []gateway.Constituent
	ids := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			all = append(all, csvError(err))
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue
			}
			break // a broken quote leaves the rest unreadable
		}
		if blank(rec) {
			continue
		}
		row, _ := cr.FieldPos(0)
		item, cellErrs := csvItem(cols, rec)
		id := itemID(item)
		// at names the cell a pointer within the constituent came from.
		at := func(ptr, msg string) error {
			for i, c := range cols {
				if p := csvColumns[c]; ptr == p || strings.HasPrefix(ptr, p+"/") {
					line, col := cr.FieldPos(i)
					path := c + strings.TrimPrefix(displayPath(item, ptr, ""), displayPath(item, p, ""))
					return &Error{Path: path, Line: line, Column: col, ID: id, Message: msg}
				}
			}
			return &Error{Path: displayPath(item, ptr, ""), Line: row, ID: id, Message: msg}
		}
		for _, ce := range cellErrs {
			line, col := cr.FieldPos(ce.col)
			all = append(all, &Error{Path: cols[ce.col], Line: line, Column: col, ID: id, Message: ce.msg})
		}
		if len(cellErrs) > 0 {
			continue
		}
		c, problems := decodeConstituent(item)
		for _, p := range problems {
			all = append(all, at(p.Field, p.Message))
		}
		if len(problems) > 0 {
			continue
		}
		if first, dup := ids[c.ID]; dup {
			all = append(all, at("/id", fmt.Sprintf("id is already used on line %d", first)))
			continue
		}
		ids[c.ID] = row
		out = append(out, c)
	}
	if len(all) > 0 {
		return nil, errors.Join(all...)
	}
	return out, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{Line: pe.Line, Column: pe.Column, Message: "invalid CSV: " + pe.Err.Error(), Err: err}
	}
	return &Error{Message: "read CSV: " + err.Error(), Err: err}
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

type cellError struct {
	col int
	msg string
}

// csvItem builds the JSON form of one row, for the schema to validate.
func csvItem(cols, rec []string) (map[string]any, []cellError) {
	item := map[string]any{}
	var errs []cellError
	sub := func(key string) map[string]any {
		m, ok := item[key].(map[string]any)
		if !ok {
			m = map[string]any{}
			item[key] = m
		}
		return m
	}
	for i, col := range cols {
		cell := strings.TrimSpace(rec[i])
		if cell == "" {
			continue
		}
		switch col {
		case "id", "name":
			item[col] = cell
		case "sectors":
			item[col] = anys(splitValues(cell))
		case "prefixes", "domains":
			sub("assets")[col] = anys(splitValues(cell))
		case "asns":
			var asns []any
			for _, v := range splitValues(cell) {
				n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(v), "AS"), 10, 32)
				if err != nil {
					errs = append(errs, cellError{i, fmt.Sprintf("%q is not an AS number", v)})
					continue
				}
				asns = append(asns, json.Number(strconv.FormatUint(n, 10)))
			}
			sub("assets")["asns"] = asns
		case "contacts":
			contacts, err := parseContacts(cell)
			if err != nil {
				errs = append(errs, cellError{i, err.Error()})
				continue
			}
			item["contacts"] = contacts
		case "webhook_url", "webhook_secret":
			hooks, _ := item["webhooks"].([]any)
			if hooks == nil {
				hooks = []any{map[string]any{}}
				item["webhooks"] = hooks
			}
			hooks[0].(map[string]any)[strings.TrimPrefix(col, "webhook_")] = cell
		case "misp_url", "misp_key":
			sub("misp_push")[strings.TrimPrefix(col, "misp_")] = cell
		}
	}
	return item, errs
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// splitValues splits a multi-valued cell on ";", "," and whitespace.
func splitValues(cell string) []string {
	return strings.FieldsFunc(cell, func(r rune) bool {
		return r == ';' || r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// parseContacts reads "Jan de Vries <jan@a.example>!red; soc@a.example".
// A bare address is one word containing "@"; any other words up to the
// next "<…>" are a name.
func parseContacts(cell string) ([]any, error) {
	var out []any
	rest := cell
	for {
		rest = strings.TrimLeft(rest, " \t\r\n;")
		if rest == "" {
			return out, nil
		}
		word := rest
		if i := strings.IndexAny(rest, " \t\r\n;"); i >= 0 {
			word = rest[:i]
		}
		var name, email string
		if strings.Contains(word, "@") && !strings.ContainsAny(word, "<>") {
			email, rest = word, rest[len(word):]
		} else {
			lt := strings.IndexByte(rest, '<')
			gt := strings.IndexByte(rest, '>')
			if lt < 0 || gt < lt {
				return nil, fmt.Errorf("contact %q has no e-mail address; write \"Name <email>\" or \"email\"", strings.TrimSpace(firstPart(rest)))
			}
			name = strings.Trim(strings.TrimSpace(rest[:lt]), `"`)
			if strings.Contains(name, ";") {
				return nil, fmt.Errorf("contact %q has no e-mail address; write \"Name <email>\" or \"email\"", strings.TrimSpace(firstPart(name)))
			}
			email, rest = strings.TrimSpace(rest[lt+1:gt]), rest[gt+1:]
		}
		red := false
		if strings.HasSuffix(strings.ToLower(email), "!red") {
			email, red = email[:len(email)-4], true
		} else if t := strings.TrimLeft(rest, " \t"); len(t) >= 4 && strings.EqualFold(t[:4], "!red") {
			rest, red = t[4:], true
		}
		c := map[string]any{"email": email}
		if name != "" {
			c["name"] = name
		}
		if red {
			c["red"] = true
		}
		out = append(out, c)
	}
}

func firstPart(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		return s[:i]
	}
	return s
}
