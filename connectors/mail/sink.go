package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	mailmap "github.com/schakel/schakel/mappings/mail"
)

// Versions lists an event's stored versions, oldest first (store.Store), so
// an update threads under the message that announced the event.
type Versions interface {
	Versions(ctx context.Context, id string) ([]string, error)
}

// SinkOptions configure the e-mail channel.
type SinkOptions struct {
	Relay Relay
	// From is the envelope sender and From header (channels.email.from).
	From string
	// PublicURL is named in message footers.
	PublicURL string
	// MaxConns bounds the connections to the relay (default 4); MaxPerConn
	// the messages sent over one before it is replaced (default 100).
	MaxConns, MaxPerConn int
	// Redis and Prefix keep deferred deliveries for digests. Without Redis
	// every delivery is sent on its own.
	Redis  redis.UniversalClient
	Prefix string
	// MaxDigest bounds the warnings in one digest (default 100); the rest
	// wait for the next message to the same target.
	MaxDigest int
	Versions  Versions
	Log       *slog.Logger
	Now       func() time.Time
	// Signer, when set, PGP/MIME-signs every message (warnings and digests).
	// An encrypted message is signed first, then encrypted.
	Signer *PGPSigner
	// Encrypt says which TLPs go encrypted to contacts with a key; the zero
	// value encrypts nothing.
	Encrypt EncryptPolicy
	// Contacts finds named persons' keys (their deliveries carry no
	// constituent); nil means named persons have none.
	Contacts Contacts
}

// Sink is the e-mail channel (gateway.ChannelEmail): it renders a projected
// event as a TLP-labelled message (mappings/mail) and hands it to the relay
// over a small pool of authenticated SMTP sessions.
//
// Digests: the dispatcher calls Hold for a delivery the recipient's rate
// limit defers. When a held delivery's turn comes (the limiter lets it
// through), Deliver sends it together with every other delivery held for the
// same target as one digest, and remembers their ids; when those come back
// through the outbox, Digested tells the dispatcher they already went out,
// so they are acknowledged without a message and without spending the
// recipient's limit. A delivery that was never deferred goes out on its own.
type Sink struct {
	pool      *pool
	from      string
	domain    string
	publicURL string
	signer    *PGPSigner
	encrypt   EncryptPolicy
	contacts  Contacts
	keys      keyCache
	digests   *digests
	maxDigest int
	versions  Versions
	log       *slog.Logger
	now       func() time.Time
}

// NewSink checks the options and returns the sink. It opens no connection.
func NewSink(o SinkOptions) (*Sink, error) {
	if o.Relay.Address == "" {
		return nil, errors.New("channels.email.relay: is required")
	}
	mode, err := ParseTLSMode(string(o.Relay.TLS), TLSStartTLS)
	if err != nil {
		return nil, fmt.Errorf("channels.email.%w", err)
	}
	o.Relay.TLS = mode
	from, err := bareAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("channels.email.from: %w", err)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	if o.MaxPerConn <= 0 {
		o.MaxPerConn = 100
	}
	if o.MaxDigest <= 0 {
		o.MaxDigest = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Sink{
		pool: newPool(o.Relay, o.MaxConns, o.MaxPerConn, 15*time.Second),
		from: from, domain: from[strings.LastIndexByte(from, '@')+1:], publicURL: o.PublicURL,
		signer: o.Signer, encrypt: o.Encrypt, contacts: o.Contacts,
		maxDigest: o.MaxDigest, versions: o.Versions, log: o.Log, now: o.Now,
	}
	if o.Redis != nil {
		prefix := o.Prefix
		if prefix == "" {
			prefix = "schakel"
		}
		s.digests = &digests{rdb: o.Redis, prefix: prefix, keep: 7 * 24 * time.Hour, lockTTL: 2 * time.Minute, lockWait: 30 * time.Second}
	}
	return s, nil
}

// Close ends the idle relay sessions; sessions in use end when their
// delivery is done.
func (s *Sink) Close() error {
	s.pool.close()
	return nil
}

// Deliver sends ev to d.Target: alone, or as a digest with the deliveries
// held for the same target when d itself was deferred before.
func (s *Sink) Deliver(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, ev *gateway.Event, handling string) error {
	to, err := targetAddress(d)
	if err != nil {
		return gateway.Permanent(err)
	}
	if s.digests != nil {
		done, isHeld, err := s.digests.state(ctx, d)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if isHeld {
			return s.drain(ctx, d, c, to, ev, handling)
		}
	}
	return s.sendOne(ctx, d, c, to, ev, handling)
}

// Hold keeps a delivery the rate limit deferred for the next message to its
// target. The dispatcher calls it with the event already authorised and
// projected for the recipient.
func (s *Sink) Hold(ctx context.Context, d gateway.Delivery, _ *gateway.Constituent, ev *gateway.Event, handling string) error {
	if s.digests == nil {
		return nil
	}
	if _, err := targetAddress(d); err != nil {
		return err
	}
	return s.digests.hold(ctx, held{Delivery: d, Event: ev, Handling: handling, HeldAt: s.now().UTC()})
}

// Digested reports whether d already went out inside a digest.
func (s *Sink) Digested(ctx context.Context, d gateway.Delivery) (bool, error) {
	if s.digests == nil {
		return false, nil
	}
	return s.digests.done(ctx, d)
}

// Holding counts the deliveries waiting for the next message to target
// (the e-mail address) of recipient.
func (s *Sink) Holding(ctx context.Context, recipient gateway.Recipient, target string) (int, error) {
	if s.digests == nil {
		return 0, nil
	}
	n, err := s.digests.rdb.HLen(ctx, s.digests.keys(gateway.Delivery{Recipient: recipient, Target: target}).hold).Result()
	if err != nil {
		return 0, fmt.Errorf("count held deliveries: %w", err)
	}
	return int(n), nil
}

func (s *Sink) sendOne(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, to string, ev *gateway.Event, handling string) error {
	prot, key := s.protectionFor(c, to, ev.TLP)
	if prot == protNotice {
		return s.sendNotice(ctx, d, to, ev.TLP, ev.Priority == gateway.PriorityCritical)
	}
	env := s.envelope(d, to)
	env.MessageID = s.messageID(d.ID)
	env.InReplyTo = s.thread(ctx, d)
	env.Handling = handling
	msg, err := mailmap.Encode(ev, env)
	if err != nil {
		return gateway.Permanent(fmt.Errorf("render delivery %s: %w", d.ID, err))
	}
	if msg, err = s.protect(msg, prot, key, d); err != nil {
		return err
	}
	return classify(s.pool.send(ctx, s.from, to, msg))
}

// protect encrypts msg when prot says so.
func (s *Sink) protect(msg []byte, prot protection, key recipientKey, d gateway.Delivery) ([]byte, error) {
	if prot == protClear {
		return msg, nil
	}
	out, err := encryptMessage(msg, prot, key, s.now())
	if err != nil {
		// Never fall back to clear: a key that cannot be used needs the
		// operator, and the dead letter tells them.
		return nil, gateway.Permanent(fmt.Errorf("delivery %s: %w", d.ID, err))
	}
	return out, nil
}

// sendNotice tells a recipient without a key that a warning waits, and
// logs it: the operator should obtain the recipient's key.
func (s *Sink) sendNotice(ctx context.Context, d gateway.Delivery, to string, tlp gateway.TLP, critical bool) error {
	s.log.WarnContext(ctx, "no encryption key for a recipient of an encrypt-only warning; sent a notice without content",
		"delivery_id", d.ID, "recipient", d.Recipient, "target", to, "tlp", string(tlp))
	return classify(s.pool.send(ctx, s.from, to, s.notice(d, to, tlp, critical)))
}

// drain sends d with everything held for its target, under the target's
// lock so two deliveries let through together never send the same warning twice.
func (s *Sink) drain(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, to string, ev *gateway.Event, handling string) error {
	unlock, err := s.digests.lock(ctx, d)
	if err != nil {
		return err
	}
	defer unlock()
	if done, err := s.digests.done(ctx, d); err != nil || done {
		return err
	}
	pending, err := s.digests.pending(ctx, d)
	if err != nil {
		return err
	}
	// d first, with the projection the dispatcher just made for it.
	batch := []held{{Delivery: d, Event: ev, Handling: handling}}
	for _, h := range pending {
		if h.Delivery.ID != d.ID && len(batch) < s.maxDigest {
			batch = append(batch, h)
		}
	}
	slices.SortStableFunc(batch, func(a, b held) int { return a.Delivery.Created.Compare(b.Delivery.Created) })
	ids := make([]string, len(batch))
	for i, h := range batch {
		ids[i] = h.Delivery.ID
	}
	evs, handlings := latestPerEvent(batch)
	if len(evs) == 1 {
		err = s.sendOne(ctx, d, c, to, evs[0], handlings[0])
	} else {
		err = s.sendDigest(ctx, d, c, to, ids, evs, handlings)
	}
	if err != nil {
		return err
	}
	if err := s.digests.mark(ctx, d, s.now(), ids); err != nil {
		// The mail went out; at worst a held warning is sent again later.
		s.log.WarnContext(ctx, "digested deliveries not recorded", "delivery_id", d.ID, "count", len(ids), "error", err)
	}
	if len(ids) > 1 {
		s.log.InfoContext(ctx, "digest sent", "delivery_id", d.ID, "recipient", d.Recipient, "warnings", len(evs), "deliveries", len(ids))
	}
	return nil
}

// latestPerEvent keeps the newest version of each event, in delivery order.
func latestPerEvent(batch []held) ([]*gateway.Event, []string) {
	at := map[string]int{}
	var evs []*gateway.Event
	var hs []string
	for _, h := range batch {
		i, seen := at[h.Event.ID]
		switch {
		case !seen:
			at[h.Event.ID] = len(evs)
			evs = append(evs, h.Event)
			hs = append(hs, h.Handling)
		case h.Event.Modified.After(evs[i].Modified):
			evs[i], hs[i] = h.Event, h.Handling
		}
	}
	return evs, hs
}

func (s *Sink) sendDigest(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, to string, ids []string, evs []*gateway.Event, handlings []string) error {
	// The digest is protected as its strictest warning requires.
	var top gateway.TLP
	critical := false
	for _, ev := range evs {
		top = gateway.Stricter(top, ev.TLP)
		critical = critical || ev.Priority == gateway.PriorityCritical
	}
	prot, key := s.protectionFor(c, to, top)
	if prot == protNotice {
		return s.sendNotice(ctx, d, to, top, critical)
	}
	env := s.envelope(d, to)
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, ",")))
	env.MessageID = "digest." + hex.EncodeToString(sum[:16]) + "@" + s.domain
	// One caveat for all sections only when all share it; otherwise each
	// label carries its own default (AMBER+STRICT: recipient organisation only).
	if !slices.ContainsFunc(handlings, func(h string) bool { return h != handlings[0] }) {
		env.Handling = handlings[0]
	}
	msg, err := mailmap.EncodeDigest(evs, env)
	if err != nil {
		return gateway.Permanent(fmt.Errorf("render digest for %s: %w", d.ID, err))
	}
	if msg, err = s.protect(msg, prot, key, d); err != nil {
		return err
	}
	return classify(s.pool.send(ctx, s.from, to, msg))
}

// envelope holds what every message to d's target carries.
func (s *Sink) envelope(d gateway.Delivery, to string) mailmap.Envelope {
	e := mailmap.Envelope{From: s.from, To: []string{to}, Date: s.now(), PublicURL: s.publicURL}
	if s.signer != nil {
		e.Sign = s.signer.Sign
	}
	if d.Recipient.Kind == gateway.RecipientList {
		e.ListID = listID(to)
		e.ListUnsubscribe = "mailto:" + s.from + "?subject=unsubscribe%20" + to
	}
	return e
}

// messageID is stable per delivery, so a retried delivery carries the same
// Message-ID and receivers can drop the duplicate.
func (s *Sink) messageID(deliveryID string) string {
	return deliveryID + "@" + s.domain
}

// thread returns the Message-ID of the message that announced d's event to
// the same target (the first stored version), or "" for a first version.
func (s *Sink) thread(ctx context.Context, d gateway.Delivery) string {
	if s.versions == nil {
		return ""
	}
	vs, err := s.versions.Versions(ctx, d.EventID)
	if err != nil {
		s.log.DebugContext(ctx, "versions unknown; message not threaded", "event_id", d.EventID, "error", err)
		return ""
	}
	if len(vs) == 0 || vs[0] == d.Version {
		return ""
	}
	return s.messageID(gateway.DeliveryID(d.EventID, vs[0], d.Recipient, gateway.ChannelEmail, d.Target))
}

// listID makes an RFC 2919 list id from the list address:
// members@lists.example → members.lists.example.
func listID(addr string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '@':
			return '.'
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-._", r)):
			return r
		}
		return '-'
	}, strings.ToLower(addr))
}

// targetAddress checks the delivery's address: a bare ASCII address, and for
// lists and named persons the one their recipient names.
func targetAddress(d gateway.Delivery) (string, error) {
	to, err := bareAddress(d.Target)
	if err != nil {
		return "", fmt.Errorf("delivery %s target: %w", d.ID, err)
	}
	switch d.Recipient.Kind {
	case gateway.RecipientList, gateway.RecipientPerson:
		if !strings.EqualFold(d.Recipient.ID, to) {
			return "", fmt.Errorf("delivery %s: target %s is not the address its recipient %s names", d.ID, to, d.Recipient)
		}
	}
	return to, nil
}

// bareAddress accepts "user@example.org" only: no display name, no line
// break, ASCII (the relay may not speak SMTPUTF8).
func bareAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("address is empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) {
		return "", fmt.Errorf("address %q must be ASCII without control characters", s)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, "@") {
		return "", fmt.Errorf("%q is not a bare e-mail address", s)
	}
	return s, nil
}

// classify maps a send error to the dispatcher's terms: a 4xx reply to the
// message is retried, a 5xx one dead-lettered; connection trouble (including
// a refused login) is retried, since it says nothing about the message.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *connectError
	if errors.As(err, &ce) {
		return err
	}
	var re *ReplyError
	if errors.As(err, &re) {
		if re.Temporary() {
			return gateway.RetryAfter(err, 0)
		}
		return gateway.Permanent(err)
	}
	return err
}
