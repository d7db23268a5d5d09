// Package mailtest runs real mail servers for tests: a go-smtp server that
// keeps what it is sent (the relay the e-mail channel talks to) and a go-imap
// server with an in-memory mailbox (what the IMAP source reads).
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the relay accepted.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Header returns the message's header.
func (m Message) Header() mail.Header {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return mail.Header{}
	}
	return msg.Header
}

// Subject is the decoded Subject header.
func (m Message) Subject() string {
	s := m.Header().Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// Text returns the decoded body part of the given media type ("text/plain",
// "text/html"), searching nested multiparts; "" when there is none.
func (m Message) Text(mediaType string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	body, _ := io.ReadAll(msg.Body)
	return findPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), body, mediaType, 0)
}

func findPart(ct, cte string, body []byte, want string, depth int) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") && depth < 5 {
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err != nil {
				return ""
			}
			b, _ := io.ReadAll(p)
			if s := findPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), b, want, depth+1); s != "" {
				return s
			}
		}
	}
	if mt != want {
		return ""
	}
	if strings.EqualFold(cte, "quoted-printable") {
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err == nil {
			body = b
		}
	}
	return string(body)
}

// RelayOptions configure a Relay.
type RelayOptions struct {
	// Username and Password, when set, make the relay require AUTH PLAIN.
	Username, Password string
	// TLS is "" (plain), "starttls" (offers STARTTLS) or "tls" (implicit TLS).
	TLS string
	// MaxSize is the relay's SIZE limit; 0 for none.
	MaxSize int64
}

// Relay is a go-smtp server that keeps every message it accepts.
type Relay struct {
	Addr string
	// ClientTLS trusts the relay's certificate (for TLS modes).
	ClientTLS *tls.Config

	srv *smtp.Server

	mu       sync.Mutex
	msgs     []Message
	rejects  map[string]*reject
	conns    int
	open     []net.Conn
	logins   int
	batched  int
	notify   chan struct{}
	received int
}

type reject struct {
	code  int
	times int // < 0: always
}

// NewRelay starts a relay on a free loopback port; it stops when the test ends.
func NewRelay(t testing.TB, o RelayOptions) *Relay {
	t.Helper()
	r := &Relay{rejects: map[string]*reject{}, notify: make(chan struct{}, 1)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, user: o.Username, pass: o.Password}, nil
	}))
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = o.MaxSize
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discard{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS != "" {
		serverTLS, clientTLS := SelfSigned(t)
		r.ClientTLS = clientTLS
		srv.TLSConfig = serverTLS
		if o.TLS == "tls" {
			ln = tls.NewListener(ln, serverTLS)
		}
	}
	r.Addr = ln.Addr().String()
	r.srv = srv
	go func() { _ = srv.Serve(&countingListener{Listener: ln, r: r}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// Reject makes the relay answer RCPT TO for addr with code (e.g. 451, 550),
// times times (< 0: always).
func (r *Relay) Reject(addr string, code, times int) {
	r.mu.Lock()
	r.rejects[strings.ToLower(addr)] = &reject{code: code, times: times}
	r.mu.Unlock()
}

// Messages returns what the relay accepted so far.
func (r *Relay) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// To returns the accepted messages for addr.
func (r *Relay) To(addr string) []Message {
	var out []Message
	for _, m := range r.Messages() {
		for _, t := range m.To {
			if strings.EqualFold(t, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Connections counts the TCP connections the relay accepted.
func (r *Relay) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// DropConnections closes every connection the relay accepted so far, as a
// relay does with sessions it considers idle.
func (r *Relay) DropConnections() {
	r.mu.Lock()
	open := r.open
	r.open = nil
	r.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

// Logins counts successful AUTH exchanges.
func (r *Relay) Logins() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logins
}

// Pipelined counts network reads that carried MAIL FROM, RCPT TO and DATA
// together: evidence that the client pipelined them (plain connections only).
func (r *Relay) Pipelined() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batched
}

// Wait blocks until the relay accepted at least n messages or timeout passed,
// and returns what it has.
func (r *Relay) Wait(n int, timeout time.Duration) []Message {
	deadline := time.After(timeout)
	for {
		if m := r.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-r.notify:
		case <-deadline:
			return r.Messages()
		}
	}
}

// Settle waits until no message arrived for quiet (at most max), so "did not
// receive" checks do not race the outbox.
func (r *Relay) Settle(quiet, max time.Duration) {
	end := time.Now().Add(max)
	last := -1
	for time.Now().Before(end) {
		r.mu.Lock()
		n := r.received
		r.mu.Unlock()
		if n == last {
			return
		}
		last = n
		time.Sleep(quiet)
	}
}

type relaySession struct {
	r          *Relay
	user, pass string
	authed     bool
	from       string
	to         []string
}

func (s *relaySession) AuthMechanisms() []string {
	if s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.user || password != s.pass {
			return errors.New("invalid credentials")
		}
		s.authed = true
		s.r.mu.Lock()
		s.r.logins++
		s.r.mu.Unlock()
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if rj := s.r.rejects[strings.ToLower(to)]; rj != nil && rj.times != 0 {
		if rj.times > 0 {
			rj.times--
		}
		return &smtp.SMTPError{Code: rj.code, EnhancedCode: smtp.EnhancedCode{rj.code / 100, 0, 0}, Message: "rejected by the test relay"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, Message{From: s.from, To: append([]string(nil), s.to...), Data: b})
	s.r.received++
	s.r.mu.Unlock()
	select {
	case s.r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

type countingListener struct {
	net.Listener
	r *Relay
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.r.mu.Lock()
	l.r.conns++
	l.r.open = append(l.r.open, c)
	l.r.mu.Unlock()
	return &watchedConn{Conn: c, r: l.r}, nil
}

// watchedConn notices commands that arrive in one read.
type watchedConn struct {
	net.Conn
	r *Relay
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		s := string(b[:n])
		if strings.Contains(s, "MAIL FROM:") && strings.Contains(s, "RCPT TO:") && strings.Contains(s, "DATA\r\n") {
			c.r.mu.Lock()
			c.r.batched++
			c.r.mu.Unlock()
		}
	}
	return n, err
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// SelfSigned returns a server TLS configuration for 127.0.0.1/localhost and a
// client configuration that trusts it.
func SelfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// MailboxOptions configure a Mailbox.
type MailboxOptions struct {
	// NoIdle makes the server IMAP4rev1 without IDLE, so clients must poll.
	NoIdle bool
	// TLS is "" (plain), "starttls" or "tls".
	TLS string
}

// Mailbox is a go-imap server with one user whose INBOX tests fill.
type Mailbox struct {
	Addr, Username, Password string
	ClientTLS                *tls.Config

	t     testing.TB
	o     MailboxOptions
	user  *imapmemserver.User
	mem   *imapmemserver.Server
	serve *imapserver.Server
	tls   *tls.Config
	mu    sync.Mutex
}

// NewMailbox starts an IMAP server on a free loopback port with user
// "intake" (password "secret") and an empty INBOX.
func NewMailbox(t testing.TB, o MailboxOptions) *Mailbox {
	t.Helper()
	m := &Mailbox{t: t, o: o, Username: "intake", Password: "secret", mem: imapmemserver.New()}
	m.user = imapmemserver.NewUser(m.Username, m.Password)
	if err := m.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	m.mem.AddUser(m.user)
	if o.TLS != "" {
		m.tls, m.ClientTLS = SelfSigned(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Addr = ln.Addr().String()
	m.start(ln)
	t.Cleanup(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		_ = m.serve.Close()
	})
	return m
}

func (m *Mailbox) start(ln net.Listener) {
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	if m.o.NoIdle {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}}
	}
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return flushingSession{m.mem.NewSession()}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discard{},
	}
	if m.o.TLS == "starttls" {
		opts.TLSConfig = m.tls
	}
	if m.o.TLS == "tls" {
		ln = tls.NewListener(ln, m.tls)
	}
	srv := imapserver.New(opts)
	m.mu.Lock()
	m.serve = srv
	m.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Restart drops every connection and listens again on the same address,
// keeping the mailbox contents: a server restart as clients see it.
func (m *Mailbox) Restart() {
	m.t.Helper()
	m.mu.Lock()
	_ = m.serve.Close()
	m.mu.Unlock()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", m.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		m.t.Fatalf("listen again on %s: %v", m.Addr, err)
	}
	m.start(ln)
}

// Append puts a raw message into folder.
func (m *Mailbox) Append(folder string, raw []byte) {
	m.t.Helper()
	if _, err := m.user.Append(folder, literal{Reader: bytes.NewReader(raw), n: int64(len(raw))}, &imap.AppendOptions{}); err != nil {
		m.t.Fatalf("append to %s: %v", folder, err)
	}
}

// Count returns how many messages folder holds, -1 when it does not exist.
func (m *Mailbox) Count(folder string) int {
	st, err := m.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil || st.NumMessages == nil {
		return -1
	}
	return int(*st.NumMessages)
}

type literal struct {
	io.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

// flushingSession makes IDLE start by sending what is already pending, as
// Dovecot and other real servers do. imapmemserver only signals updates
// queued after IDLE began, so mail appended between a client's last
// command and its IDLE would go unnoticed until the IDLE ended.
type flushingSession struct{ imapserver.Session }

func (s flushingSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := s.Session.Poll(w, true); err != nil {
		return err
	}
	return s.Session.Idle(w, stop)
}

// Move keeps MOVE (RFC 6851) available through the wrapper.
func (s flushingSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	mv, ok := s.Session.(imapserver.SessionMove)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "MOVE is not supported"}
	}
	return mv.Move(w, numSet, dest)
}

// Namespace keeps NAMESPACE (required by IMAP4rev2) available.
func (s flushingSession) Namespace() (*imap.NamespaceData, error) {
	if ns, ok := s.Session.(imapserver.SessionNamespace); ok {
		return ns.Namespace()
	}
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Delim: '/'}}}, nil
}
