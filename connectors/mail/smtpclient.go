package mail

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

// TLSMode is how a connection to a mail server is protected (config `tls`).
type TLSMode string

const (
	TLSNone     TLSMode = "none"     // plain text; credentials only to a loopback server
	TLSStartTLS TLSMode = "starttls" // upgrade with STARTTLS, refuse to go on without it
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (SMTPS 465, IMAPS 993)
)

// ParseTLSMode reads a config value; empty means def.
func ParseTLSMode(s string, def TLSMode) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return def, nil
	case TLSNone, TLSStartTLS, TLSImplicit:
		return m, nil
	}
	return "", fmt.Errorf("tls: unknown mode %q (want none, starttls or tls)", s)
}

// Relay says how to reach the SMTP relay warnings are sent through.
type Relay struct {
	Address string // host:port
	TLS     TLSMode
	// TLSConfig overrides the default (system roots, server name from
	// Address); tests use it to trust their own certificate.
	TLSConfig          *tls.Config
	Username, Password string
	// LocalName is the EHLO name; default the host name.
	LocalName string
	// Timeout bounds each command round trip; default 30s.
	Timeout time.Duration
}

func (r Relay) host() string {
	h, _, err := net.SplitHostPort(r.Address)
	if err != nil {
		return r.Address
	}
	return h
}

func (r Relay) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.TLSConfig != nil {
		c = r.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = r.host()
	}
	return c
}

// ReplyError is a negative SMTP reply: 4xx is temporary, 5xx permanent.
type ReplyError struct {
	Command  string // the command answered, e.g. "RCPT TO"
	Code     int
	Enhanced string // "5.1.1", when the server sent one
	Message  string
}

func (e *ReplyError) Error() string {
	msg := e.Message
	if e.Enhanced != "" {
		msg = e.Enhanced + " " + msg
	}
	return fmt.Sprintf("smtp %s: %d %s", e.Command, e.Code, msg)
}

// Temporary reports whether the server asked to try again later.
func (e *ReplyError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// reply is one (possibly multi-line) server reply.
type reply struct {
	code  int
	lines []string
}

func (r reply) text() string { return strings.Join(r.lines, " ") }

// Limits on what a server may send back, so a hostile or broken relay cannot
// make the sink buffer without bound.
const (
	maxReplyLine  = 2048
	maxReplyLines = 128
)

var errReplyTooLong = errors.New("smtp reply is too long")

// readReply reads one reply: lines "ddd-text" continued until "ddd text".
// Every line must carry the same code.
func readReply(br *bufio.Reader) (reply, error) {
	var r reply
	for {
		line, err := readLine(br)
		if err != nil {
			return reply{}, err
		}
		if len(line) < 3 {
			return reply{}, fmt.Errorf("smtp reply %q: too short", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 || line[0] == '+' || line[0] == '-' {
			return reply{}, fmt.Errorf("smtp reply %q: no status code", clip(line))
		}
		if r.code != 0 && code != r.code {
			return reply{}, fmt.Errorf("smtp reply: code changed from %d to %d within one reply", r.code, code)
		}
		r.code = code
		more := false
		text := ""
		if len(line) > 3 {
			switch line[3] {
			case '-':
				more = true
			case ' ':
			default:
				return reply{}, fmt.Errorf("smtp reply %q: bad separator", clip(line))
			}
			text = line[4:]
		}
		if len(r.lines) == maxReplyLines {
			return reply{}, errReplyTooLong
		}
		// Reply text ends up in logs and errors: no control characters.
		r.lines = append(r.lines, strings.Map(func(c rune) rune {
			if c < 0x20 || c == 0x7f {
				return ' '
			}
			return c
		}, text))
		if !more {
			return r, nil
		}
	}
}

// readLine reads one CRLF- (or LF-) terminated line of at most maxReplyLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		buf = append(buf, chunk...)
		if len(buf) > maxReplyLine {
			return "", errReplyTooLong
		}
		if !isPrefix {
			return string(buf), nil
		}
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// enhanced splits an RFC 3463 enhanced status code off a reply text.
func enhanced(code int, text string) (string, string) {
	first, rest, _ := strings.Cut(text, " ")
	parts := strings.Split(first, ".")
	if len(parts) != 3 || parts[0] != strconv.Itoa(code/100) {
		return "", text
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 999 {
			return "", text
		}
	}
	return first, rest
}

func (r reply) err(cmd string) *ReplyError {
	enh, msg := enhanced(r.code, r.text())
	return &ReplyError{Command: cmd, Code: r.code, Enhanced: enh, Message: clip(msg)}
}

// client is one SMTP connection to the relay: greeting, EHLO, STARTTLS and
// AUTH done, ready for transactions. Not safe for concurrent use; the pool
// hands it to one sender at a time.
type client struct {
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	ext     map[string]string // EHLO keywords (upper case) → parameters
	timeout time.Duration
	// dirty means a transaction was cut short: RSET before the next one.
	dirty bool
	// broken means the connection state is unknown: never reuse it.
	broken bool
	sent   int
	idle   time.Time // when it was last returned to the pool
}

// dial connects and prepares a client: TLS as configured, EHLO, AUTH.
func dial(ctx context.Context, r Relay) (*client, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if r.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: r.tlsConfig()}).DialContext(ctx, "tcp", r.Address)
	} else {
		conn, err = d.DialContext(ctx, "tcp", r.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to relay %s: %w", r.Address, err)
	}
	c := &client{conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn), timeout: timeout}
	if err := c.setup(ctx, r); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("relay %s: %w", r.Address, err)
	}
	return c, nil
}

func (c *client) setup(ctx context.Context, r Relay) error {
	defer c.guard(ctx)()
	greet, err := readReply(c.br)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greet.code != 220 {
		return greet.err("greeting")
	}
	name := r.LocalName
	if name == "" {
		name, _ = os.Hostname()
		if name == "" || strings.ContainsAny(name, " \r\n") {
			name = "localhost"
		}
	}
	if err := c.hello(name); err != nil {
		return err
	}
	if r.TLS == TLSStartTLS {
		if _, ok := c.ext["STARTTLS"]; !ok {
			return errors.New("the relay does not offer STARTTLS (tls: starttls)")
		}
		if err := c.cmd("STARTTLS", 220, "STARTTLS"); err != nil {
			return err
		}
		tc := tls.Client(c.conn, r.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("starttls handshake: %w", err)
		}
		c.conn, c.br, c.bw = tc, bufio.NewReader(tc), bufio.NewWriter(tc)
		if err := c.hello(name); err != nil {
			return err
		}
	}
	if r.Username == "" {
		return nil
	}
	if _, isTLS := c.conn.(*tls.Conn); !isTLS && !loopback(r.host()) {
		return fmt.Errorf("refusing to send the password in clear to %s: set tls to starttls or tls", r.host())
	}
	return c.auth(r.Username, r.Password)
}

// guard sets the connection deadline for one exchange and aborts it when ctx
// is cancelled; call the returned function when the exchange is over.
func (c *client) guard(ctx context.Context) func() {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	return func() { stop() }
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *client) hello(name string) error {
	if err := c.write("EHLO " + name); err != nil {
		return err
	}
	r, err := c.read()
	if err != nil {
		return err
	}
	if r.code != 250 {
		// A server without ESMTP: HELO, and no extensions.
		if err := c.cmd("HELO", 250, "HELO "+name); err != nil {
			return err
		}
		c.ext = map[string]string{}
		return nil
	}
	c.ext = parseEHLO(r)
	return nil
}

// parseEHLO maps the keywords of an EHLO reply (all lines but the first) to
// their parameters.
func parseEHLO(r reply) map[string]string {
	ext := make(map[string]string, len(r.lines))
	for _, l := range r.lines[min(1, len(r.lines)):] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			ext[strings.ToUpper(k)] = v
		}
	}
	return ext
}

func (c *client) auth(user, pass string) error {
	mechs := strings.Fields(strings.ToUpper(c.ext["AUTH"]))
	has := func(m string) bool {
		for _, x := range mechs {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		return c.cmd("AUTH", 235, "AUTH PLAIN "+resp)
	case has("LOGIN"):
		if err := c.cmd("AUTH", 334, "AUTH LOGIN"); err != nil {
			return err
		}
		if err := c.cmd("AUTH", 334, base64.StdEncoding.EncodeToString([]byte(user))); err != nil {
			return err
		}
		return c.cmd("AUTH", 235, base64.StdEncoding.EncodeToString([]byte(pass)))
	}
	return fmt.Errorf("the relay offers no AUTH mechanism Schakel speaks (PLAIN, LOGIN); it offers %q", c.ext["AUTH"])
}

func (c *client) write(lines ...string) error {
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("smtp command contains a line break")
		}
		c.bw.WriteString(l)
		c.bw.WriteString("\r\n")
	}
	if err := c.bw.Flush(); err != nil {
		c.broken = true
		return fmt.Errorf("write to relay: %w", err)
	}
	return nil
}

func (c *client) read() (reply, error) {
	r, err := readReply(c.br)
	if err != nil {
		c.broken = true
		return reply{}, fmt.Errorf("read from relay: %w", err)
	}
	return r, nil
}

// cmd sends one command and expects code.
func (c *client) cmd(name string, want int, line string) error {
	if err := c.write(line); err != nil {
		return err
	}
	r, err := c.read()
	if err != nil {
		return err
	}
	if r.code != want {
		return r.err(name)
	}
	return nil
}

// pipelining reports whether the relay accepts MAIL, RCPT and DATA in one
// write (RFC 2920).
func (c *client) pipelining() bool {
	_, ok := c.ext["PIPELINING"]
	return ok
}

// maxSize is the relay's SIZE limit, 0 when it names none.
func (c *client) maxSize() int {
	v, ok := c.ext["SIZE"]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// stageError says whether a failure came after the message was handed
// over: before that, a fresh connection may try again at once without
// risking a duplicate.
type stageError struct {
	err      error
	bodySent bool
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// send runs one mail transaction: MAIL, RCPT and DATA pipelined when the
// relay offers it, then the message. A negative reply is a *ReplyError; the
// connection stays usable after one (RSET runs before the next transaction).
func (c *client) send(ctx context.Context, from, to string, msg []byte) error {
	defer c.guard(ctx)()
	if c.dirty {
		if err := c.cmd("RSET", 250, "RSET"); err != nil {
			c.broken = true
			return &stageError{err: err}
		}
		c.dirty = false
	}
	if max := c.maxSize(); max > 0 && len(msg) > max {
		return &stageError{err: &ReplyError{Command: "MAIL FROM", Code: 552, Enhanced: "5.3.4",
			Message: fmt.Sprintf("message of %d bytes exceeds the relay's SIZE limit of %d", len(msg), max)}}
	}
	mail := "MAIL FROM:<" + from + ">"
	if _, ok := c.ext["SIZE"]; ok {
		mail += " SIZE=" + strconv.Itoa(len(msg))
	}
	cmds := []struct{ name, line string }{{"MAIL FROM", mail}, {"RCPT TO", "RCPT TO:<" + to + ">"}, {"DATA", "DATA"}}
	wants := []int{250, 250, 354}
	c.dirty = true
	var first *ReplyError
	if c.pipelining() {
		if err := c.write(cmds[0].line, cmds[1].line, cmds[2].line); err != nil {
			return &stageError{err: err}
		}
		for i, cm := range cmds {
			r, err := c.read()
			if err != nil {
				return &stageError{err: err}
			}
			if r.code != wants[i] && first == nil {
				first = r.err(cm.name)
			}
			if i == 2 && r.code == 354 && first != nil {
				// The server wants the message although an earlier command
				// failed; the state is unclear, so drop the connection.
				c.broken = true
			}
		}
	} else {
		for i, cm := range cmds {
			if err := c.write(cm.line); err != nil {
				return &stageError{err: err}
			}
			r, err := c.read()
			if err != nil {
				return &stageError{err: err}
			}
			if r.code != wants[i] {
				first = r.err(cm.name)
				break
			}
		}
	}
	if first != nil {
		return &stageError{err: first}
	}
	dw := textproto.NewWriter(c.bw).DotWriter()
	if _, err := dw.Write(msg); err != nil {
		c.broken = true
		return &stageError{err: fmt.Errorf("write message: %w", err), bodySent: true}
	}
	if err := dw.Close(); err != nil {
		c.broken = true
		return &stageError{err: fmt.Errorf("write message: %w", err), bodySent: true}
	}
	if err := c.bw.Flush(); err != nil {
		c.broken = true
		return &stageError{err: fmt.Errorf("write message: %w", err), bodySent: true}
	}
	r, err := c.read()
	if err != nil {
		return &stageError{err: err, bodySent: true}
	}
	// The final reply ends the transaction either way (RFC 5321 §4.1.1.4).
	c.dirty = false
	c.sent++
	if r.code != 250 {
		return &stageError{err: r.err("DATA"), bodySent: true}
	}
	return nil
}

// noop checks that an idle connection still answers.
func (c *client) noop(ctx context.Context) error {
	defer c.guard(ctx)()
	return c.cmd("NOOP", 250, "NOOP")
}

// quit ends the session politely and closes the connection.
func (c *client) quit() {
	_ = c.conn.SetDeadline(time.Now().Add(2 * time.Second))
	if !c.broken {
		_ = c.write("QUIT")
		_, _ = readReply(c.br)
	}
	_ = c.conn.Close()
}
