package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
)

// Auditor records quarantined messages.
type Auditor interface {
	Append(ctx context.Context, recs ...audit.Record) error
}

// Decoder maps one raw message to events: mappings/mail.DecodeMessage with
// the attachment decoders wired in. err means the message is unreadable.
type Decoder func(data []byte) ([]*gateway.Event, []gateway.FieldError, error)

// ActionQuarantined is the audit action of a message moved to quarantine.
const ActionQuarantined = "mail.quarantined"

// intake turns one received message into ingested events; the IMAP and SMTP
// sources share it.
type intake struct {
	src    gateway.Source
	ingest gateway.Ingester
	decode Decoder
	log    *slog.Logger
}

// outcome of one message.
type outcome struct {
	ids                  []string // events stored or already known
	accepted, duplicates int
	// refused says why the message yields nothing (unreadable, or no event
	// valid); empty when at least one event was taken.
	refused string
}

// take decodes raw and ingests its events. A returned error is temporary
// (the store did not answer): nothing about the message is decided and it
// must be offered again. A message that yields no valid event is refused,
// with the reason, and no error.
func (in *intake) take(ctx context.Context, raw []byte) (outcome, error) {
	var out outcome
	evs, problems, err := in.decode(raw)
	if err != nil {
		out.refused = "unreadable: " + err.Error()
		return out, nil
	}
	var invalid []string
	for i, ev := range evs {
		res, err := in.ingest.Ingest(ctx, in.src, ev)
		var ve *gateway.ValidationError
		switch {
		case errors.As(err, &ve):
			invalid = append(invalid, fmt.Sprintf("event %d: %v", i, ve))
			continue
		case err != nil:
			return out, fmt.Errorf("ingest event %d of the message: %w", i, err)
		case res.Status == gateway.StatusDuplicate:
			out.duplicates++
		default:
			out.accepted++
		}
		out.ids = append(out.ids, res.ID)
	}
	if len(out.ids) == 0 {
		reasons := invalid
		if len(reasons) == 0 {
			reasons = []string{"it holds no event"}
		}
		for _, p := range problems[:min(len(problems), 3)] {
			reasons = append(reasons, p.Error())
		}
		out.refused = "no event could be accepted: " + strings.Join(reasons, "; ")
		return out, nil
	}
	if len(invalid) > 0 || len(problems) > 0 {
		in.log.WarnContext(ctx, "message taken in part", "source", in.src.Name, "events", len(out.ids),
			"invalid", strings.Join(invalid, "; "), "problems", len(problems))
	}
	return out, nil
}

// oneLine makes a reason fit an SMTP reply or a log line.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
