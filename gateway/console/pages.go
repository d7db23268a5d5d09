package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/mail"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/store"
)

// tlpClass is the style each label is shown in.
var tlpClass = map[gateway.TLP]string{
	gateway.TLPRed: "tlp-red", gateway.TLPAmberStrict: "tlp-amber", gateway.TLPAmber: "tlp-amber",
	gateway.TLPGreen: "tlp-green", gateway.TLPClear: "tlp-clear",
}

var funcs = template.FuncMap{
	"tlpclass": func(t gateway.TLP) string {
		if c, ok := tlpClass[t]; ok {
			return c
		}
		return "tlp-clear"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"base": func() string { return Base },
	// Text from sources may carry bidi overrides or terminal controls that
	// make it read as something else; show them escaped.
	"visible":     normalize.Visible,
	"visibletext": normalize.VisibleText,
}

// pushChannels are the channels with an outbox queue worth showing.
var pushChannels = []gateway.Channel{gateway.ChannelWebhook, gateway.ChannelEmail, gateway.ChannelMISPPush}

type channelStats struct {
	Channel gateway.Channel
	outbox.Stats
}

type sourceCount struct {
	Source string
	Type   string
	Count  int
	Cursor string // a poller's stored position ("" for push sources or before the first poll)
}

type bar struct {
	X, Y, H int
	Hour    string
	Count   int
}

type overviewData struct {
	Since    time.Time
	Total    int
	Capped   bool
	Sources  []sourceCount
	Channels []channelStats
	Dead     int64
	Held     int
	Bars     []bar
	Max      int
	// ExpiringKeys are contact keys that expire within KeyExpiryWarning.
	ExpiringKeys []expiringKey
}

// recent returns summaries received since since, newest first, at most
// ScanLimit; capped reports that the limit cut the list.
func (c *Console) recent(ctx *fiber.Ctx, since time.Time) ([]store.Summary, bool, error) {
	var out []store.Summary
	cursor := ""
	for len(out) < ScanLimit {
		items, next, err := c.o.Store.ListEvents(ctx.UserContext(), store.ListQuery{Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, false, fmt.Errorf("list events: %w", err)
		}
		for _, s := range items {
			if s.Received.Before(since) {
				return out, false, nil
			}
			out = append(out, s)
		}
		if next == "" {
			return out, false, nil
		}
		cursor = next
	}
	return out[:ScanLimit], true, nil
}

func (c *Console) overview(ctx *fiber.Ctx) error {
	now := c.o.Now().UTC()
	d := overviewData{Since: now.Add(-24 * time.Hour)}
	evs, capped, err := c.recent(ctx, d.Since)
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	d.Total, d.Capped = len(evs), capped
	bySource := map[string]int{}
	hours := make([]int, 24)
	for _, s := range evs {
		bySource[s.Source]++
		if i := 23 - int(now.Sub(s.Received)/time.Hour); i >= 0 && i < 24 {
			hours[i]++
		}
	}
	for _, src := range c.o.Sources {
		cur, err := c.o.Store.Cursor(ctx.UserContext(), src.Name)
		if err != nil {
			return c.fail(ctx, fiber.StatusServiceUnavailable, err)
		}
		d.Sources = append(d.Sources, sourceCount{Source: src.Name, Type: src.Type, Count: bySource[src.Name], Cursor: cur})
		delete(bySource, src.Name)
	}
	for src, n := range bySource { // events from sources no longer configured
		d.Sources = append(d.Sources, sourceCount{Source: src, Count: n})
	}
	sort.Slice(d.Sources, func(i, j int) bool { return d.Sources[i].Source < d.Sources[j].Source })
	for _, ch := range pushChannels {
		st, err := c.o.Outbox.Stats(ctx.UserContext(), ch)
		if err != nil {
			return c.fail(ctx, fiber.StatusServiceUnavailable, err)
		}
		d.Channels = append(d.Channels, channelStats{ch, st})
		d.Dead += st.Dead
	}
	held, err := c.o.Store.HeldItems(ctx.UserContext(), false)
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	d.Held = len(held)
	snap := c.o.Registry.Current()
	d.ExpiringKeys = c.contactKeys.expiring(snap.Version, snap.Constituents, now)
	d.Max = max(1, slices.Max(hours))
	const chartH = 100
	for i, n := range hours {
		h := n * chartH / d.Max
		d.Bars = append(d.Bars, bar{X: i * 20, Y: chartH - h, H: h, Count: n,
			Hour: now.Add(time.Duration(i-23) * time.Hour).Format("15:00")})
	}
	return c.render(ctx, "overview", page{Title: "Overview", Nav: "overview", Data: d})
}

type eventFilter struct {
	TLP, Kind, Source, Priority, Constituent, Value string
}

type eventsData struct {
	F         eventFilter
	TLPs      []gateway.TLP
	Kinds     []gateway.Kind
	Prios     []gateway.Priority
	Events    []store.Summary
	Scanned   int
	ScanLimit int
	Capped    bool
}

func (c *Console) events(ctx *fiber.Ctx) error {
	f := eventFilter{TLP: ctx.Query("tlp"), Kind: ctx.Query("kind"), Source: strings.TrimSpace(ctx.Query("source")),
		Priority: ctx.Query("priority"), Constituent: strings.TrimSpace(ctx.Query("constituent")), Value: strings.TrimSpace(ctx.Query("value"))}
	d := eventsData{F: f, TLPs: gateway.TLPs, ScanLimit: ScanLimit,
		Kinds: []gateway.Kind{gateway.KindAdvisory, gateway.KindIntel, gateway.KindNotification, gateway.KindIncident},
		Prios: []gateway.Priority{gateway.PriorityCritical, gateway.PriorityHigh, gateway.PriorityNormal, gateway.PriorityLow}}
	p := page{Title: "Events", Nav: "events", Data: &d}
	q := store.ListQuery{Limit: 1000, Source: f.Source}
	if f.TLP != "" {
		t, _, err := gateway.ParseTLP(f.TLP)
		if err != nil {
			p.Error = "tlp: " + err.Error()
			return c.render(ctx.Status(fiber.StatusBadRequest), "events", p)
		}
		q.TLP = t
	}
	if f.Kind != "" && !gateway.Kind(f.Kind).Valid() {
		p.Error = "kind: unknown kind " + f.Kind
		return c.render(ctx.Status(fiber.StatusBadRequest), "events", p)
	}
	if f.Priority != "" && !gateway.Priority(f.Priority).Valid() {
		p.Error = "priority: unknown priority " + f.Priority
		return c.render(ctx.Status(fiber.StatusBadRequest), "events", p)
	}
	var only map[string]bool
	if f.Constituent != "" {
		states, err := c.o.Store.Deliveries(ctx.UserContext(), "", f.Constituent)
		if err != nil {
			return c.fail(ctx, fiber.StatusServiceUnavailable, err)
		}
		only = map[string]bool{}
		for _, s := range states {
			only[s.Delivery.EventID] = true
		}
	}
	const shown = 200
	for d.Scanned < ScanLimit && len(d.Events) < shown {
		items, next, err := c.o.Store.ListEvents(ctx.UserContext(), q)
		if err != nil {
			return c.fail(ctx, fiber.StatusServiceUnavailable, err)
		}
		for _, s := range items {
			d.Scanned++
			if d.Scanned > ScanLimit {
				d.Capped = true
				break
			}
			if (f.Kind != "" && string(s.Kind) != f.Kind) || (f.Priority != "" && string(s.Priority) != f.Priority) ||
				(only != nil && !only[s.ID]) {
				continue
			}
			if f.Value != "" {
				ok, err := c.hasValue(ctx, s.ID, f.Value)
				if err != nil {
					return c.fail(ctx, fiber.StatusServiceUnavailable, err)
				}
				if !ok {
					continue
				}
			}
			d.Events = append(d.Events, s)
			if len(d.Events) == shown {
				break
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	d.Scanned = min(d.Scanned, ScanLimit)
	return c.render(ctx, "events", p)
}

// hasValue reports whether the stored event id has an indicator whose value
// contains v (case-insensitive), or v appears in its title or a CVE.
func (c *Console) hasValue(ctx *fiber.Ctx, id, v string) (bool, error) {
	ev, err := c.o.Store.Event(ctx.UserContext(), id)
	if errors.Is(err, gateway.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v = strings.ToLower(v)
	for _, ind := range ev.Indicators {
		if strings.Contains(strings.ToLower(ind.Value), v) {
			return true, nil
		}
	}
	for _, vu := range ev.Vulnerabilities {
		if strings.EqualFold(vu.CVE, v) {
			return true, nil
		}
	}
	return false, nil
}

type explainRow struct {
	Constituent *gateway.Constituent
	Concern     policy.Concern
	Owned       int
	Subscribed  bool
	Why         string
	Channels    []policy.Decision
	Selected    bool
}

type eventData struct {
	Event      *gateway.Event
	Held       *store.HeldItem
	Explain    []explainRow
	Hidden     int
	Deliveries []store.DeliveryState
	Audit      []audit.Record
}

// maxExplain bounds the explain rows on one page; a selected constituent is
// always shown.
const maxExplain = 100

func (c *Console) event(ctx *fiber.Ctx) error {
	rctx := ctx.UserContext()
	ev, err := c.o.Store.Event(rctx, ctx.Params("id"))
	if errors.Is(err, gateway.ErrNotFound) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "no event " + ctx.Params("id")})
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	d := eventData{Event: ev}
	if h, err := c.o.Store.Held(rctx, ev.ID); err == nil {
		d.Held = &h
	} else if !errors.Is(err, gateway.ErrNotFound) {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	snap := c.o.Registry.Current()
	cs, err := c.o.Store.Constituents(rctx)
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	a := policy.Assess(ev, snap)
	sel := ctx.Query("constituent")
	var rows []explainRow
	for _, k := range cs {
		kp, ok := snap.Get(k.ID)
		if !ok {
			continue // not yet in the registry snapshot
		}
		sub, why := policy.Subscribed(ev, kp)
		rows = append(rows, explainRow{Constituent: kp, Concern: a.Concern(kp), Owned: len(a.OwnedBy(kp.ID)), Subscribed: sub,
			Why: why, Channels: a.Explain(kp, c.o.Push), Selected: kp.ID == sel})
	}
	// Most concerned first, so the constituents the event is about lead.
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Selected != rows[j].Selected {
			return rows[i].Selected
		}
		return rows[i].Concern > rows[j].Concern
	})
	if len(rows) > maxExplain {
		d.Hidden = len(rows) - maxExplain
		rows = rows[:maxExplain]
	}
	d.Explain = rows
	if d.Deliveries, err = c.o.Store.Deliveries(rctx, ev.ID, ""); err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	if d.Audit, err = c.o.Audit.ForEvent(rctx, ev.ID, 500); err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	return c.render(ctx, "event", page{Title: "Event " + ev.Title, Nav: "events", Data: d})
}

type heldData struct {
	Items    []store.HeldItem
	Released []store.HeldItem
}

func (c *Console) held(ctx *fiber.Ctx) error {
	all, err := c.o.Store.HeldItems(ctx.UserContext(), true)
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	var d heldData
	for _, h := range all {
		if h.Released {
			d.Released = append(d.Released, h)
		} else {
			d.Items = append(d.Items, h)
		}
	}
	p := page{Title: "Held", Nav: "held", Data: d}
	switch ctx.Query("released") {
	case "":
	default:
		p.Notice = "Released " + ctx.Query("released") + " to the named recipients."
	}
	return c.render(ctx, "held", p)
}

// ParseRecipients reads a release form's recipients: one per line or comma
// separated, each an e-mail address (optionally "Name <addr>") or a
// constituent id.
func ParseRecipients(s string) ([]gateway.Addressee, error) {
	var out []gateway.Addressee
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == ';' })
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "@") {
			a, err := mail.ParseAddress(f)
			if err != nil {
				return nil, fmt.Errorf("recipients: %q is not an e-mail address: %w", f, err)
			}
			out = append(out, gateway.Addressee{Email: a.Address, Name: a.Name})
			continue
		}
		if strings.ContainsAny(f, " \t<>\"") {
			return nil, fmt.Errorf("recipients: %q is neither an e-mail address nor a constituent id", f)
		}
		out = append(out, gateway.Addressee{Constituent: f})
	}
	if len(out) == 0 {
		return nil, errors.New("recipients: name at least one e-mail address or constituent id")
	}
	return out, nil
}

type confirmData struct {
	Item       store.HeldItem
	Raw        string
	Recipients []gateway.Addressee
}

// release shows a confirmation first; only a POST with confirm=yes releases.
func (c *Console) release(ctx *fiber.Ctx) error {
	rctx := ctx.UserContext()
	id := ctx.Params("id")
	h, err := c.o.Store.Held(rctx, id)
	if errors.Is(err, gateway.ErrNotFound) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "no held item for event " + id})
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	raw := ctx.FormValue("recipients")
	to, err := ParseRecipients(raw)
	p := page{Title: "Release " + h.Title, Nav: "held", Data: confirmData{Item: h, Raw: raw, Recipients: to}}
	if err != nil {
		p.Error = err.Error()
		return c.render(ctx.Status(fiber.StatusUnprocessableEntity), "release", p)
	}
	if ctx.FormValue("confirm") != "yes" {
		return c.render(ctx, "release", p)
	}
	_, n, err := c.o.Releaser.Release(rctx, id, sessionOf(ctx).Actor, to)
	if errors.Is(err, pipeline.ErrRelease) || errors.Is(err, gateway.ErrNotFound) {
		p.Error = err.Error()
		return c.render(ctx.Status(fiber.StatusUnprocessableEntity), "release", p)
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	// Pipeline.Release audits every delivery it creates under our actor.
	c.o.Log.InfoContext(rctx, "held event released from the console", "event_id", id, "deliveries", n, "actor", sessionOf(ctx).Actor)
	return ctx.Redirect(Base+"/held?released="+url.QueryEscape(id), fiber.StatusSeeOther)
}

func (c *Console) deadLetters(ctx *fiber.Ctx) error {
	items, err := c.o.Outbox.DeadLetters(ctx.UserContext(), "", 200)
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	p := page{Title: "Dead letters", Nav: "dead", Data: items}
	if r := ctx.Query("retried"); r != "" {
		p.Notice = "Delivery " + r + " is queued again."
	}
	if r := ctx.Query("discarded"); r != "" {
		p.Notice = "Dead letter " + r + " discarded; the decision is in the audit trail."
	}
	return c.render(ctx, "dead", p)
}

func (c *Console) retry(ctx *fiber.Ctx) error {
	d, err := c.o.Outbox.RetryDead(ctx.UserContext(), ctx.Params("id"))
	if errors.Is(err, gateway.ErrNotFound) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "no dead letter " + ctx.Params("id")})
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	c.audit(ctx.UserContext(), audit.Record{Actor: sessionOf(ctx).Actor, Action: "deadletter.retry", EventID: d.EventID, Version: d.Version,
		DeliveryID: d.ID, Recipient: d.Recipient.String(), Channel: d.Channel, TLP: d.TLP})
	return ctx.Redirect(Base+"/dead-letters?retried="+url.QueryEscape(d.ID), fiber.StatusSeeOther)
}

// discard removes a dead letter for good, after the analyst confirmed it in
// the form; audited like every console action.
func (c *Console) discard(ctx *fiber.Ctx) error {
	if ctx.FormValue("confirm") != "yes" {
		return c.render(ctx.Status(fiber.StatusUnprocessableEntity), "error", page{Title: "Not discarded",
			Error: "tick \"confirm\" to discard dead letter " + ctx.Params("id")})
	}
	d, err := c.o.Outbox.DiscardDead(ctx.UserContext(), ctx.Params("id"))
	if errors.Is(err, gateway.ErrNotFound) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "no dead letter " + ctx.Params("id")})
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	c.audit(ctx.UserContext(), audit.Record{Actor: sessionOf(ctx).Actor, Action: "deadletter.discarded", EventID: d.EventID, Version: d.Version,
		DeliveryID: d.ID, Recipient: d.Recipient.String(), Channel: d.Channel, TLP: d.TLP})
	return ctx.Redirect(Base+"/dead-letters?discarded="+url.QueryEscape(d.ID), fiber.StatusSeeOther)
}

// constituentsData is the constituents page: the list, and the red
// contacts without an encryption key.
type constituentsData struct {
	List          []gateway.Constituent
	RedWithoutKey []contactRef
}

func (c *Console) constituents(ctx *fiber.Ctx) error {
	cs, err := c.o.Store.Constituents(ctx.UserContext())
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	p := page{Title: "Constituents", Nav: "constituents", Data: constituentsData{cs, redWithoutKey(cs)}}
	if n := ctx.Query("imported"); n != "" {
		p.Notice = "Imported " + n + " constituents."
	}
	return c.render(ctx, "constituents", p)
}

// maxImport bounds an uploaded constituents file.
const maxImport = 8 << 20

func (c *Console) importConstituents(ctx *fiber.Ctx) error {
	rctx := ctx.UserContext()
	bad := func(msg string) error {
		cs, _ := c.o.Store.Constituents(rctx)
		return c.render(ctx.Status(fiber.StatusUnprocessableEntity), "constituents", page{Title: "Constituents", Nav: "constituents",
			Data: constituentsData{cs, redWithoutKey(cs)}, Error: msg})
	}
	fh, err := ctx.FormFile("file")
	if err != nil {
		return bad("file: choose a YAML or CSV file to import")
	}
	if fh.Size > maxImport {
		return bad(fmt.Sprintf("file: larger than %d MiB", maxImport>>20))
	}
	f, err := fh.Open()
	if err != nil {
		return bad("file: " + err.Error())
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImport))
	if err != nil {
		return bad("file: " + err.Error())
	}
	var cs []gateway.Constituent
	if strings.EqualFold(filepath.Ext(fh.Filename), ".csv") {
		cs, err = config.ParseConstituentsCSV(bytes.NewReader(data))
	} else {
		cs, err = config.ParseConstituents(data)
	}
	if err != nil {
		return bad("file " + fh.Filename + ": " + err.Error())
	}
	if len(cs) == 0 {
		return bad("file " + fh.Filename + ": holds no constituents")
	}
	if err := config.RefuseGenerate(cs); err != nil {
		return bad("file " + fh.Filename + ": " + err.Error())
	}
	if c.o.Destinations != nil {
		// Judge the whole file first: a refused URL imports nothing.
		for i := range cs {
			if fe := c.o.Destinations.CheckConstituent(&cs[i]); len(fe) > 0 {
				return bad(fmt.Sprintf("constituent %s: %s", cs[i].ID, &gateway.ValidationError{Fields: fe}))
			}
		}
	}
	actor := sessionOf(ctx).Actor
	for _, k := range cs {
		created, err := c.o.Store.PutConstituent(rctx, k)
		if err != nil {
			var ve *gateway.ValidationError
			if errors.As(err, &ve) {
				return bad(fmt.Sprintf("constituent %s: %v", k.ID, err))
			}
			return c.fail(ctx, fiber.StatusServiceUnavailable, err)
		}
		c.audit(rctx, audit.Record{Actor: actor, Action: "constituent.put", Recipient: k.ID,
			Details: map[string]string{"via": "console import", "file": fh.Filename, "created": fmt.Sprint(created)}})
	}
	if err := c.o.Registry.Refresh(rctx); err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	return ctx.Redirect(fmt.Sprintf("%s/constituents?imported=%d", Base, len(cs)), fiber.StatusSeeOther)
}

type constituentData struct {
	C      gateway.Constituent
	Keys   []store.KeyInfo
	NewKey string
}

func (c *Console) constituent(ctx *fiber.Ctx) error {
	return c.showConstituent(ctx, ctx.Params("id"), "", "")
}

func (c *Console) showConstituent(ctx *fiber.Ctx, id, newKey, notice string) error {
	k, err := c.o.Store.Constituent(ctx.UserContext(), id)
	if errors.Is(err, gateway.ErrNotFound) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "no constituent " + id})
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	keys, err := c.o.Store.Keys(ctx.UserContext(), store.Scope{Role: store.RoleConstituent, Name: id})
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	if notice == "" && ctx.Query("revoked") != "" {
		notice = "Key " + ctx.Query("revoked") + " is revoked."
	}
	return c.render(ctx, "constituent", page{Title: "Constituent " + k.Name, Nav: "constituents", Notice: notice,
		Data: constituentData{C: k, Keys: keys, NewKey: newKey}})
}

// issueKey shows the new key once, in the response to the POST; it is never
// stored in clear and a reload does not show it again.
func (c *Console) issueKey(ctx *fiber.Ctx) error {
	id := ctx.Params("id")
	if _, err := c.o.Store.Constituent(ctx.UserContext(), id); errors.Is(err, gateway.ErrNotFound) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "no constituent " + id})
	} else if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	key, err := c.o.Store.CreateKey(ctx.UserContext(), store.Scope{Role: store.RoleConstituent, Name: id})
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	c.audit(ctx.UserContext(), audit.Record{Actor: sessionOf(ctx).Actor, Action: "key.created", Recipient: id,
		Details: map[string]string{"role": string(store.RoleConstituent), "key_hash": store.KeyHash(key)}})
	return c.showConstituent(ctx, id, key, "")
}

func (c *Console) revokeKey(ctx *fiber.Ctx) error {
	id, hash := ctx.Params("id"), ctx.Params("hash")
	keys, err := c.o.Store.Keys(ctx.UserContext(), store.Scope{Role: store.RoleConstituent, Name: id})
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	// Only a key of this constituent may be revoked from its page.
	if !slices.ContainsFunc(keys, func(k store.KeyInfo) bool { return k.Hash == hash }) {
		return c.render(ctx.Status(fiber.StatusNotFound), "error", page{Title: "Not found", Error: "constituent " + id + " has no key " + hash})
	}
	if err := c.o.Store.RevokeKey(ctx.UserContext(), hash); err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	c.audit(ctx.UserContext(), audit.Record{Actor: sessionOf(ctx).Actor, Action: "key.revoked", Recipient: id,
		Details: map[string]string{"role": string(store.RoleConstituent), "key_hash": hash}})
	return ctx.Redirect(Base+"/constituents/"+url.PathEscape(id)+"?revoked="+url.QueryEscape(hash), fiber.StatusSeeOther)
}
