package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/egress"
	"github.com/schakel/schakel/gateway/httpstatus"
)

// failing answers every delivery with err.
type failing struct{ err error }

func (f failing) Deliver(context.Context, gateway.Delivery, *gateway.Constituent, *gateway.Event, string) error {
	return f.err
}

// TestSinkErrorsAreClassifiedOnce checks that the handler maps every sink's
// error through the one classifier: the same status gives the same outcome
// whichever channel it came from.
func TestSinkErrorsAreClassifiedOnce(t *testing.T) {
	st, _, d := setup(t, 0)
	status := func(op string, code int, after time.Duration) error {
		return fmt.Errorf("deliver: %w", &httpstatus.StatusError{Op: op, Code: code, RetryAfter: after})
	}
	tests := []struct {
		name      string
		ch        gateway.Channel
		err       error
		want      string
		wantAfter time.Duration
	}{
		{"webhook 410", gateway.ChannelWebhook, status("POST https://a.example/hook", 410, 0), "dead", 0},
		{"misp_push 410", gateway.ChannelMISPPush, status("misp POST /events/add", 410, 0), "dead", 0},
		{"webhook 429 with Retry-After", gateway.ChannelWebhook, status("POST https://a.example/hook", 429, 30*time.Second), "retry", 30 * time.Second},
		{"misp_push 429 with Retry-After", gateway.ChannelMISPPush, status("misp POST /events/add", 429, 30*time.Second), "retry", 30 * time.Second},
		{"redirect", gateway.ChannelWebhook, status("POST https://a.example/hook", 301, 0), "dead", 0},
		{"503", gateway.ChannelWebhook, status("POST https://a.example/hook", 503, 0), "retry", 0},
		{"408", gateway.ChannelMISPPush, status("misp POST /events/add", 408, 0), "retry", 0},
		{"non-HTTP sink marks permanent (SMTP 5xx)", gateway.ChannelWebhook, gateway.Permanent(errors.New("550 no such user")), "dead", 0},
		{"non-HTTP sink marks retry (SMTP 4xx)", gateway.ChannelWebhook, gateway.RetryAfter(errors.New("451 try later"), 0), "retry", 0},
		{"egress block", gateway.ChannelWebhook, fmt.Errorf("post: %w", egress.ErrBlocked), "dead", 0},
		{"network error", gateway.ChannelWebhook, errors.New("connection refused"), "retry", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := notification(t, st, fmt.Sprintf("c%d", i), gateway.PriorityNormal)
			dl.Channel = tt.ch
			res := d.Handler(tt.ch, failing{tt.err})(t.Context(), dl)
			if string(res.Status()) != tt.want || res.After() != tt.wantAfter {
				t.Errorf("%v → %s after %s, want %s after %s", tt.err, res.Status(), res.After(), tt.want, tt.wantAfter)
			}
		})
	}
}
