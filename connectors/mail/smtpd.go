package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/schakel/schakel/gateway"
)

// SMTPIntakeOptions configure an SMTP source (config `type: smtp`).
type SMTPIntakeOptions struct {
	Name string
	// Listen is host:port (used by ListenAndServe).
	Listen string
	// Recipients are the only addresses mail is accepted for.
	Recipients []string
	// MaxSize bounds a message in bytes; default 25 MiB.
	MaxSize int64
	// Domain is named in the greeting; default the first recipient's domain.
	Domain     string
	DefaultTLP gateway.TLP
	// Own: the relay's own analysts author this source (config own: true).
	Own      bool
	Pipeline gateway.Ingester
	Decode   Decoder
	// Timeout bounds reading a command or the message, and storing it;
	// default 60s.
	Timeout time.Duration
	Log     *slog.Logger
}

// SMTPIntake accepts advisories sent to Schakel by SMTP. It answers 250 to a
// message only after the pipeline stored its events, 451 when storing failed
// for now (the sender's MTA tries again), and 5xx when the message can never
// be taken: an unknown recipient (550), too large (552) or no valid event
// in it (554).
type SMTPIntake struct {
	o     SMTPIntakeOptions
	rcpts map[string]bool
	in    *intake
	srv   *smtp.Server
	log   *slog.Logger
	base  context.Context
	ln    net.Listener // set by Listen
}

// NewSMTPIntake checks the options.
func NewSMTPIntake(o SMTPIntakeOptions) (*SMTPIntake, error) {
	if o.Name == "" {
		return nil, errors.New("smtp source: name is required")
	}
	at := "sources " + o.Name + ": "
	if len(o.Recipients) == 0 {
		return nil, errors.New(at + "recipients: name at least one address to accept mail for")
	}
	rcpts := map[string]bool{}
	for i, r := range o.Recipients {
		a, err := bareAddress(r)
		if err != nil {
			return nil, fmt.Errorf("%srecipients[%d]: %w", at, i, err)
		}
		rcpts[strings.ToLower(a)] = true
	}
	if o.Pipeline == nil || o.Decode == nil {
		return nil, errors.New(at + "pipeline and decoder are required")
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 25 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	log := o.Log.With("source", o.Name, "connector", "smtp")
	s := &SMTPIntake{o: o, rcpts: rcpts, log: log,
		in: &intake{src: gateway.Source{Name: o.Name, DefaultTLP: o.DefaultTLP, Format: "mail", Own: o.Own}, ingest: o.Pipeline, decode: o.Decode, log: log}}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = o.Domain
	if srv.Domain == "" {
		srv.Domain = o.Recipients[0][strings.LastIndexByte(o.Recipients[0], '@')+1:]
	}
	srv.MaxMessageBytes = o.MaxSize
	// RFC 5321 caps lines at 1,000 octets, but alert mailers send unwrapped
	// HTML and headers far longer, and over go-smtp's default (2,000) the
	// server answers mid-DATA and hangs up, so the sender only sees a reset
	// and retries for days. Lines as long as a whole message cost no more
	// memory than the message itself, which is already buffered up to MaxSize.
	srv.MaxLineLength = int(o.MaxSize)
	srv.MaxRecipients = 50
	srv.ReadTimeout, srv.WriteTimeout = o.Timeout, o.Timeout
	srv.ErrorLog = slogPrinter{log}
	s.srv = srv
	return s, nil
}

// ListenAndServe listens on Listen and serves until ctx is done.
func (s *SMTPIntake) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("sources %s: listen %s: %w", s.o.Name, s.o.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Listen binds the Listen address now, so a taken port stops the start-up
// instead of a background worker; Run then serves on it.
func (s *SMTPIntake) Listen() error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.o.Listen, err)
	}
	s.ln = ln
	return nil
}

// Run serves on the address Listen bound until ctx is done
// (gateway.Runner); without Listen it binds first.
func (s *SMTPIntake) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return fmt.Errorf("sources %s: %w", s.o.Name, err)
		}
	}
	return s.Serve(ctx, s.ln)
}

// Close stops serving and releases the listener, whether or not Run ran.
func (s *SMTPIntake) Close() error {
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if s.ln != nil {
		if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
			err = lerr
		}
	}
	return err
}

// Serve accepts connections on ln until ctx is done. A message being stored
// when ctx ends is answered 451, so the sender keeps it and tries again.
func (s *SMTPIntake) Serve(ctx context.Context, ln net.Listener) error {
	s.base = ctx
	s.log.InfoContext(ctx, "smtp intake listening", "listen", ln.Addr().String())
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	defer stop()
	err := s.srv.Serve(ln)
	if ctx.Err() != nil || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *SMTPIntake) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, remote: c.Conn().RemoteAddr().String()}, nil
}

type session struct {
	s      *SMTPIntake
	remote string
	from   string
	to     []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !x.s.rcpts[strings.ToLower(strings.TrimSpace(to))] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such recipient here"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // 552 too large
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			return &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "line too long"}
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "message not received completely; try again"}
	}
	ctx, cancel := context.WithTimeout(x.s.base, x.s.o.Timeout)
	defer cancel()
	out, err := x.s.in.take(ctx, raw)
	if err != nil {
		x.s.log.WarnContext(ctx, "message not stored; asked the sender to try again", "from", x.from, "remote", x.remote, "error", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure storing the message; try again later"}
	}
	msgID := headerMessageID(raw)
	if out.refused != "" {
		x.s.log.WarnContext(ctx, "message refused", "from", x.from, "remote", x.remote, "message_id", msgID, "reason", out.refused)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: replyText(out.refused)}
	}
	x.s.log.InfoContext(ctx, "message taken", "from", x.from, "remote", x.remote, "message_id", msgID,
		"accepted", out.accepted, "duplicates", out.duplicates)
	return nil
}

// replyText makes a reason safe for one SMTP reply line: printable ASCII,
// at most 300 characters.
func replyText(s string) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, s)), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

// slogPrinter adapts slog to go-smtp's server error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.log.Warn(fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.log.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }
