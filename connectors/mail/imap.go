package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	netmail "net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/poll"
)

// Cursors keeps poll cursors (store.Store).
type Cursors interface {
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, v string) error
}

// IMAPOptions configure a mailbox source (config `type: imap`).
type IMAPOptions struct {
	Name               string
	Address            string // host:port
	TLS                TLSMode
	TLSConfig          *tls.Config // nil: system roots, server name from Address
	Username, Password string
	Mailbox            string // default INBOX
	// Quarantine is the folder unreadable messages are moved to (created
	// when missing); default "Quarantine".
	Quarantine string
	// Interval is the poll interval when the server has no IDLE, and the
	// longest IDLE before a safety poll; default 1m.
	Interval time.Duration
	// MaxSize: larger messages are quarantined without being read; default
	// 25 MiB.
	MaxSize    int64
	DefaultTLP gateway.TLP
	// Own: the relay's own analysts author this source (config own: true).
	Own      bool
	Pipeline gateway.Ingester
	Decode   Decoder
	Cursors  Cursors
	Audit    Auditor
	// Redis and Prefix give one replica at a time the mailbox; without
	// Redis no lease is taken.
	Redis  redis.UniversalClient
	Prefix string
	Log    *slog.Logger
}

// IMAPSource reads advisories from a mailbox. Each message is processed once:
// the highest processed UID is kept in Redis (store cursor "<uidvalidity>:<uid>")
// and advanced after the message's events are stored, or after it was moved
// to quarantine; a new UIDVALIDITY starts over (the pipeline reports the
// events it already has as duplicates). Messages stay in the mailbox, unread
// flags untouched (BODY.PEEK), so people reading the same mailbox are not
// disturbed. New mail is noticed with IDLE when the server has it, else by
// polling; a lost connection is re-opened with back-off.
type IMAPSource struct {
	o        IMAPOptions
	in       *intake
	lease    *leader
	log      *slog.Logger
	retryMin time.Duration
	retryMax time.Duration
}

// NewIMAPSource checks the options.
func NewIMAPSource(o IMAPOptions) (*IMAPSource, error) {
	if o.Name == "" {
		return nil, errors.New("imap source: name is required")
	}
	at := "sources " + o.Name + ": "
	if o.Address == "" {
		return nil, errors.New(at + "address is required")
	}
	if _, _, err := net.SplitHostPort(o.Address); err != nil {
		return nil, fmt.Errorf("%saddress: %w", at, err)
	}
	if o.Username == "" {
		return nil, errors.New(at + "username is required")
	}
	mode, err := ParseTLSMode(string(o.TLS), TLSImplicit)
	if err != nil {
		return nil, errors.New(at + err.Error())
	}
	o.TLS = mode
	if o.Pipeline == nil || o.Decode == nil || o.Cursors == nil {
		return nil, errors.New(at + "pipeline, decoder and cursor store are required")
	}
	if o.Mailbox == "" {
		o.Mailbox = "INBOX"
	}
	if o.Quarantine == "" {
		o.Quarantine = "Quarantine"
	}
	if o.Quarantine == o.Mailbox {
		return nil, errors.New(at + "the quarantine folder must differ from the mailbox read")
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 25 << 20
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	log := o.Log.With("source", o.Name, "connector", "imap")
	s := &IMAPSource{o: o, log: log, retryMin: time.Second, retryMax: 2 * time.Minute,
		in: &intake{src: gateway.Source{Name: o.Name, DefaultTLP: o.DefaultTLP, Format: "mail", Own: o.Own}, ingest: o.Pipeline, decode: o.Decode, log: log}}
	if o.Redis != nil {
		prefix := o.Prefix
		if prefix == "" {
			prefix = "schakel"
		}
		s.lease = &leader{rdb: o.Redis, key: prefix + ":mail:{imap:" + o.Name + "}:lease", ttl: 30 * time.Second}
	}
	return s, nil
}

// Run reads the mailbox until ctx is done, reconnecting with back-off
// (gateway.Runner).
func (s *IMAPSource) Run(ctx context.Context) error {
	wait := s.retryMin
	for ctx.Err() == nil {
		start := time.Now()
		err := s.leased(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 30*time.Second {
			wait = s.retryMin // it worked for a while: a fresh failure starts over
		}
		pause := wait/2 + rand.N(wait/2+1)
		s.log.WarnContext(ctx, "mailbox session ended; reconnecting", "error", err, "retry_in", pause.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		wait = min(wait*2, s.retryMax)
	}
	return nil
}

func (s *IMAPSource) leased(ctx context.Context) error {
	if s.lease == nil {
		return s.session(ctx)
	}
	lctx, release, err := s.lease.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = s.session(lctx)
	if err != nil && lctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("mailbox lease lost: %w", err)
	}
	return err
}

// session is one connection: log in, select, then alternate between taking
// new messages and waiting for more, until something fails.
func (s *IMAPSource) session(ctx context.Context) error {
	newMail := make(chan struct{}, 1)
	opts := &imapclient.Options{
		TLSConfig: s.tlsConfig(),
		Dialer:    &net.Dialer{Timeout: 30 * time.Second},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var c *imapclient.Client
	var err error
	switch s.o.TLS {
	case TLSImplicit:
		c, err = imapclient.DialTLS(s.o.Address, opts)
	case TLSStartTLS:
		c, err = imapclient.DialStartTLS(s.o.Address, opts)
	default:
		c, err = imapclient.DialInsecure(s.o.Address, opts)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.o.Address, err)
	}
	// go-imap commands take no context: closing the client ends any wait.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()

	if s.o.TLS == TLSNone && !loopback(s.host()) {
		return fmt.Errorf("refusing to send the password in clear to %s: set tls to starttls or tls", s.host())
	}
	if err := c.Login(s.o.Username, s.o.Password).Wait(); err != nil {
		return fmt.Errorf("login as %s: %w", s.o.Username, err)
	}
	if err := s.ensureFolder(c, s.o.Quarantine); err != nil {
		return err
	}
	sel, err := c.Select(s.o.Mailbox, nil).Wait()
	if err != nil {
		return fmt.Errorf("select %s: %w", s.o.Mailbox, err)
	}
	s.log.InfoContext(ctx, "mailbox opened", "mailbox", s.o.Mailbox, "messages", sel.NumMessages, "uidvalidity", sel.UIDValidity)
	if caps := c.Caps(); !caps.Has(imap.CapIdle) && !caps.Has(imap.CapIMAP4rev2) {
		return s.poll(ctx, c, sel.UIDValidity)
	}
	for {
		if err := s.drain(ctx, c, sel.UIDValidity); err != nil {
			return err
		}
		if err := s.wait(ctx, c, newMail); err != nil {
			return err
		}
	}
}

func (s *IMAPSource) host() string {
	h, _, _ := net.SplitHostPort(s.o.Address)
	return h
}

func (s *IMAPSource) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.o.TLSConfig != nil {
		c = s.o.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = s.host()
	}
	return c
}

// ensureFolder creates the folder when it does not exist.
func (s *IMAPSource) ensureFolder(c *imapclient.Client, name string) error {
	found, err := c.List("", name, nil).Collect()
	if err != nil {
		return fmt.Errorf("look for folder %s: %w", name, err)
	}
	if len(found) > 0 {
		return nil
	}
	if err := c.Create(name, nil).Wait(); err != nil {
		return fmt.Errorf("create folder %s: %w", name, err)
	}
	s.log.Info("quarantine folder created", "folder", name)
	return nil
}

// maxIdle is how long one IDLE lasts at most.
const maxIdle = 25 * time.Minute

// poll takes new messages now and then every interval, for servers without
// IDLE, until the session fails: any error ends the session, and Run
// reconnects with back-off.
func (s *IMAPSource) poll(ctx context.Context, c *imapclient.Client, validity uint32) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.Closed():
			cancel()
		case <-pctx.Done():
		}
	}()
	err := poll.Run(pctx, poll.Options{Interval: s.o.Interval, Log: s.log}, func(ctx context.Context) error {
		if err := s.drain(ctx, c, validity); err != nil {
			return poll.Stop(err)
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return errors.New("server closed the connection")
	}
}

// wait returns when new mail may have arrived: an IDLE notification, or the
// poll interval.
func (s *IMAPSource) wait(ctx context.Context, c *imapclient.Client, newMail <-chan struct{}) error {
	timer := time.NewTimer(s.o.Interval)
	defer timer.Stop()
	idle, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	// RFC 2177: servers may drop a client idle for 30 minutes; renew
	// before that whatever the poll interval.
	if s.o.Interval > maxIdle {
		timer.Reset(maxIdle)
	}
	select {
	case <-newMail:
	case <-timer.C:
	case <-ctx.Done():
	case <-c.Closed():
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("end idle: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return ctx.Err()
}

// cursor is the last processed UID under the current UIDVALIDITY.
func (s *IMAPSource) cursor(ctx context.Context, validity uint32) (imap.UID, error) {
	v, err := s.o.Cursors.Cursor(ctx, s.o.Name)
	if err != nil {
		return 0, err
	}
	if v == "" {
		return 0, nil
	}
	vs, us, ok := strings.Cut(v, ":")
	val, err1 := strconv.ParseUint(vs, 10, 32)
	uid, err2 := strconv.ParseUint(us, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		s.log.WarnContext(ctx, "cursor unreadable; reading the mailbox from the start", "cursor", v)
		return 0, nil
	}
	if uint32(val) != validity {
		s.log.WarnContext(ctx, "mailbox UIDVALIDITY changed; reading it from the start (known events come back as duplicates)",
			"old", val, "new", validity)
		return 0, nil
	}
	return imap.UID(uid), nil
}

func (s *IMAPSource) setCursor(ctx context.Context, validity uint32, uid imap.UID) error {
	return s.o.Cursors.SetCursor(ctx, s.o.Name, strconv.FormatUint(uint64(validity), 10)+":"+strconv.FormatUint(uint64(uid), 10))
}

// drain processes every message above the cursor, in UID order.
func (s *IMAPSource) drain(ctx context.Context, c *imapclient.Client, validity uint32) error {
	last, err := s.cursor(ctx, validity)
	if err != nil {
		return err
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{{{Start: last + 1, Stop: 0}}}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("search new messages: %w", err)
	}
	var uids []imap.UID
	for _, u := range found.AllUIDs() {
		if u > last { // "n:*" always matches the newest message, even below n
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	const chunk = 50
	for len(uids) > 0 {
		n := min(len(uids), chunk)
		if err := s.takeChunk(ctx, c, validity, uids[:n]); err != nil {
			return err
		}
		uids = uids[n:]
	}
	return nil
}

func (s *IMAPSource) takeChunk(ctx context.Context, c *imapclient.Client, validity uint32, uids []imap.UID) error {
	heads, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true, Envelope: true}).Collect()
	if err != nil {
		return fmt.Errorf("fetch sizes: %w", err)
	}
	size := map[imap.UID]int64{}
	msgID := map[imap.UID]string{}
	for _, h := range heads {
		size[h.UID] = h.RFC822Size
		if h.Envelope != nil {
			msgID[h.UID] = h.Envelope.MessageID
		}
	}
	for _, uid := range uids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sz, ok := size[uid]
		if !ok {
			continue // expunged meanwhile by someone else
		}
		if sz > s.o.MaxSize {
			s.quarantine(ctx, c, uid, msgID[uid], fmt.Sprintf("message of %d bytes exceeds the limit of %d", sz, s.o.MaxSize))
		} else if err := s.takeOne(ctx, c, uid, msgID[uid]); err != nil {
			return err
		}
		if err := s.setCursor(ctx, validity, uid); err != nil {
			return err
		}
	}
	return nil
}

func (s *IMAPSource) takeOne(ctx context.Context, c *imapclient.Client, uid imap.UID, msgID string) error {
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return fmt.Errorf("fetch message uid %d: %w", uid, err)
	}
	if len(msgs) == 0 {
		return nil // expunged meanwhile
	}
	raw := msgs[0].FindBodySection(section)
	out, err := s.in.take(ctx, raw)
	if err != nil {
		return err
	}
	if msgID == "" {
		msgID = headerMessageID(raw)
	}
	if out.refused != "" {
		s.quarantine(ctx, c, uid, msgID, out.refused)
		return nil
	}
	s.log.InfoContext(ctx, "message taken", "uid", uint32(uid), "message_id", msgID, "accepted", out.accepted, "duplicates", out.duplicates)
	return nil
}

// quarantine moves a message it cannot take to the quarantine folder and
// records why. If the move fails the message stays where it is; the cursor
// still passes it, so one bad message never blocks the mailbox.
func (s *IMAPSource) quarantine(ctx context.Context, c *imapclient.Client, uid imap.UID, msgID, reason string) {
	reason = oneLine(reason, 500)
	details := map[string]string{"source": s.o.Name, "mailbox": s.o.Mailbox, "folder": s.o.Quarantine,
		"uid": strconv.FormatUint(uint64(uid), 10), "message_id": msgID}
	outcome := "quarantined"
	if _, err := c.Move(imap.UIDSetNum(uid), s.o.Quarantine).Wait(); err != nil {
		outcome = "left in place"
		details["move_error"] = err.Error()
		s.log.ErrorContext(ctx, "message not moved to quarantine", "uid", uint32(uid), "message_id", msgID, "reason", reason, "error", err)
	} else {
		s.log.WarnContext(ctx, "message quarantined", "uid", uint32(uid), "message_id", msgID, "folder", s.o.Quarantine, "reason", reason)
	}
	if s.o.Audit == nil {
		return
	}
	rec := audit.Record{Time: time.Now().UTC(), Actor: audit.ActorSystem, Action: ActionQuarantined, Outcome: outcome, Error: reason, Details: details}
	if err := s.o.Audit.Append(ctx, rec); err != nil {
		s.log.WarnContext(ctx, "audit record of a quarantined message not written", "uid", uint32(uid), "error", err)
	}
}

func headerMessageID(raw []byte) string {
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return oneLine(m.Header.Get("Message-Id"), 200)
}
