package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/schakel/schakel/connectors/webhook"
)

// sinkMaxBody bounds one webhook body or mail the sink reads: it is a
// trying-out tool, not a mailbox.
const sinkMaxBody = 16 << 20

// cmdSink runs `schakel sink`: a receiver for trying Schakel out on one
// machine. It verifies the gateway's Standard Webhooks signatures and prints
// each delivery, and/or accepts mail over SMTP and prints each message's
// envelope, so a first user sees what a constituent would receive.
func cmdSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	hookAddr := fs.String("webhook", "", "listen for signed webhooks on host:port, e.g. 127.0.0.1:9090")
	secret := fs.String("secret", "", "the constituent webhook's secret (whsec_…) the signatures are checked with")
	smtpAddr := fs.String("smtp", "", "accept mail over SMTP on host:port, e.g. 127.0.0.1:2526")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *hookAddr == "" && *smtpAddr == "" {
		return usageError{"sink: give --webhook ADDR --secret whsec_…, --smtp ADDR, or both"}
	}
	if *hookAddr != "" && *secret == "" {
		return usageError{"sink: --secret: is required with --webhook (the secret of the constituent's webhook)"}
	}
	if *hookAddr != "" {
		// Signing once checks the secret's form before anything listens.
		if _, err := webhook.Sign(*secret, "msg_check", time.Now(), nil); err != nil {
			return usageError{"sink: --secret: " + err.Error()}
		}
	}
	o := sinkOptions{secret: *secret}
	if *hookAddr != "" {
		ln, err := net.Listen("tcp", *hookAddr)
		if err != nil {
			return fmt.Errorf("sink: --webhook %s: %w", *hookAddr, err)
		}
		o.webhook = ln
		fmt.Fprintf(stdout, "webhook sink on http://%s/ (signatures checked)\n", ln.Addr())
	}
	if *smtpAddr != "" {
		ln, err := net.Listen("tcp", *smtpAddr)
		if err != nil {
			if o.webhook != nil {
				o.webhook.Close()
			}
			return fmt.Errorf("sink: --smtp %s: %w", *smtpAddr, err)
		}
		o.smtp = ln
		fmt.Fprintf(stdout, "smtp sink on %s\n", ln.Addr())
	}
	return serveSink(ctx, o, stdout)
}

// sinkOptions are the listeners serveSink serves; either may be nil.
type sinkOptions struct {
	webhook net.Listener
	secret  string
	smtp    net.Listener
}

// serveSink serves until ctx ends, printing one line per delivery to out.
func serveSink(ctx context.Context, o sinkOptions, out io.Writer) error {
	p := &printer{w: out}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if o.webhook != nil {
		srv := &http.Server{Handler: webhookPrinter(o.secret, p), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(o.webhook); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("webhook sink: %w", err)
			}
		}()
		defer srv.Close()
	}
	if o.smtp != nil {
		srv := smtp.NewServer(smtpPrinter{p})
		srv.Domain = "schakel-sink.localhost"
		srv.MaxMessageBytes = sinkMaxBody
		srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
		srv.AllowInsecureAuth = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(o.smtp); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				errs <- fmt.Errorf("smtp sink: %w", err)
			}
		}()
		defer srv.Close()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// printer serialises lines from concurrent deliveries.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// webhookPrinter verifies each POST with the secret and prints it. A bad
// signature gets 401 and a REJECTED line, so a wrong secret is obvious.
func webhookPrinter(secret string, p *printer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a signed webhook here", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sinkMaxBody))
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get, body, time.Now(), 0); err != nil {
			p.printf("webhook REJECTED from %s: %v", r.RemoteAddr, err)
			http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		var d struct {
			Type       string `json:"type"`
			DeliveryID string `json:"delivery_id"`
			Event      struct {
				ID    string `json:"id"`
				Title string `json:"title"`
				TLP   string `json:"tlp"`
			} `json:"event"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			p.printf("webhook verified but not JSON: %v", err)
			http.Error(w, "body: not JSON", http.StatusBadRequest)
			return
		}
		p.printf("webhook verified type=%s delivery_id=%s event=%s tlp=%s title=%q",
			d.Type, d.DeliveryID, d.Event.ID, d.Event.TLP, d.Event.Title)
		w.WriteHeader(http.StatusNoContent)
	})
}

// smtpPrinter is a go-smtp backend that accepts every message and prints
// its envelope and subject.
type smtpPrinter struct{ p *printer }

func (b smtpPrinter) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSinkSession{p: b.p}, nil
}

type smtpSinkSession struct {
	p     *printer
	from  string
	rcpts []string
}

func (s *smtpSinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *smtpSinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *smtpSinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	subject, from, kind := "(unreadable)", s.from, "clear"
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		dec := new(mime.WordDecoder)
		subject = m.Header.Get("Subject")
		if d, err := dec.DecodeHeader(subject); err == nil {
			subject = d
		}
		if f := m.Header.Get("From"); f != "" {
			from = f
		}
		kind = mailKind(m.Header.Get("Content-Type"))
	}
	s.p.printf("mail from=%s to=%s %s subject=%q", from, strings.Join(s.rcpts, ","), kind, subject)
	return nil
}

// mailKind names how a message is protected, from its top Content-Type.
func mailKind(contentType string) string {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "clear"
	}
	switch {
	case mt == "multipart/encrypted":
		return "pgp-encrypted"
	case mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime":
		return "smime-" + strings.ReplaceAll(params["smime-type"], "-data", "")
	case mt == "multipart/signed":
		return "signed"
	}
	return "clear"
}

func (s *smtpSinkSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *smtpSinkSession) Logout() error { return nil }
