package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/schakel/schakel/connectors/mail"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/mappings/csaf"
	mailmap "github.com/schakel/schakel/mappings/mail"
	"github.com/schakel/schakel/mappings/misp"
	"github.com/schakel/schakel/mappings/stix"
)

// setupMail wires the mailbox (type: imap) and SMTP (type: smtp) sources.
func setupMail(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	opts := mailmap.Options{CSAF: csaf.Decode, MISP: misp.Decode, STIX: stix.Decode}
	decode := func(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
		return mailmap.DecodeMessage(data, opts)
	}
	for i, s := range cfg.Sources {
		switch s.Type {
		case "imap":
			mode, err := mail.ParseTLSMode(s.TLS, mail.TLSImplicit)
			if err != nil {
				return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
			}
			src, err := mail.NewIMAPSource(mail.IMAPOptions{
				Name: s.Name, Address: s.Address, TLS: mode, Username: s.Username, Password: s.Password,
				Mailbox: s.Mailbox, Interval: s.Interval.Duration, DefaultTLP: s.DefaultTLP, Own: s.Own,
				Pipeline: g.Pipeline, Decode: decode, Cursors: g.Store, Audit: g.Audit,
				Redis: g.rdb, Prefix: cfg.Redis.Prefix, Log: g.log,
			})
			if err != nil {
				return fmt.Errorf("sources[%d]: %w", i, err)
			}
			w.run("source "+s.Name, src)
			w.claim(s.Name)
		case "smtp":
			if mode, err := mail.ParseTLSMode(s.TLS, mail.TLSNone); err != nil || mode != mail.TLSNone {
				return fmt.Errorf("sources[%d] (%s): tls: the SMTP intake has no certificate setting yet; use tls: none and let a TLS-terminating MTA relay to it", i, s.Name)
			}
			in, err := mail.NewSMTPIntake(mail.SMTPIntakeOptions{
				Name: s.Name, Listen: s.Listen, Recipients: s.Recipients, DefaultTLP: s.DefaultTLP, Own: s.Own,
				Pipeline: g.Pipeline, Decode: decode, Log: g.log,
			})
			if err != nil {
				return fmt.Errorf("sources[%d]: %w", i, err)
			}
			// Listen now, so a taken port stops the start-up instead of a worker.
			if err := in.Listen(); err != nil {
				return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
			}
			w.run("source "+s.Name, in)
			w.claim(s.Name)
		}
	}
	return nil
}

// emailChannel adds the e-mail channel when channels.email.relay is set.
func emailChannel(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	e := cfg.Channels.Email
	if e.Relay == "" {
		return nil
	}
	if e.From == "" {
		return errors.New("channels.email.from: is required when channels.email.relay is set")
	}
	mode, err := mail.ParseTLSMode(e.TLS, mail.TLSStartTLS)
	if err != nil {
		return fmt.Errorf("channels.email.%w", err)
	}
	var signer *mail.PGPSigner
	if e.PGPKey != "" {
		if signer, err = mail.NewPGPSigner([]byte(e.PGPKey), []byte(e.PGPPassphrase)); err != nil {
			return fmt.Errorf("channels.email.pgp_key_file %s: %w", e.PGPKeyFile, err)
		}
		g.log.Info("warnings are PGP/MIME signed", "fingerprint", signer.Fingerprint())
	}
	sink, err := mail.NewSink(mail.SinkOptions{
		Relay: mail.Relay{Address: e.Relay, TLS: mode, Username: e.Username, Password: e.Password},
		From:  e.From, PublicURL: cfg.PublicURL, Signer: signer,
		Encrypt:  mail.EncryptPolicy{Required: e.Encrypt.RequiredFor, Preferred: e.Encrypt.PreferredFor},
		Contacts: registryContacts{g},
		Redis:    g.rdb, Prefix: cfg.Redis.Prefix, Versions: g.Store, Log: g.log.With("channel", "email"),
	})
	if err != nil {
		return err
	}
	w.sinks[gateway.ChannelEmail] = sink
	// Idle relay sessions end at shutdown, after the deliveries stopped.
	w.cleanup.push("channel email", sink.Close)
	return nil
}

// registryContacts finds a named person's key among the constituents'
// contacts, read at send time from the current registry snapshot.
type registryContacts struct{ g *Gateway }

func (r registryContacts) Contact(email string) (gateway.Contact, bool) {
	if r.g.Registry == nil {
		return gateway.Contact{}, false
	}
	var found gateway.Contact
	ok := false
	for _, c := range r.g.Registry.Current().Constituents {
		for _, ct := range c.Contacts {
			if strings.EqualFold(ct.Email, email) && (!ok || !found.HasKey()) {
				found, ok = ct, true
			}
		}
	}
	return found, ok
}
