package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// Delivery states.
const (
	StateQueued    = "queued"
	StateDelivered = "delivered"
	StateRetrying  = "retrying"
	StateDeferred  = "deferred"
	StateDead      = "dead"
)

// DeliveryState is the latest known state of one delivery.
type DeliveryState struct {
	Delivery  gateway.Delivery `json:"delivery"`
	State     string           `json:"state"`
	Attempts  int              `json:"attempts"`
	LastError string           `json:"last_error,omitempty"`
	Updated   time.Time        `json:"updated"`
}

func validState(s string) bool {
	switch s {
	case StateQueued, StateDelivered, StateRetrying, StateDeferred, StateDead:
		return true
	}
	return false
}

// SetDeliveryStates records the states in one round trip; each replaces the
// previous state of its delivery. Updated defaults to now.
func (s *Store) SetDeliveryStates(ctx context.Context, states ...DeliveryState) error {
	pipe := s.rdb.Pipeline()
	if err := s.QueueDeliveryStates(ctx, pipe, states...); err != nil {
		return err
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store delivery states: %w", err)
	}
	return nil
}

// QueueDeliveryStates adds the writes of SetDeliveryStates to pipe, so a
// caller can share one round trip with other writes (the audit record of the
// same attempt). The caller executes pipe.
func (s *Store) QueueDeliveryStates(ctx context.Context, pipe redis.Pipeliner, states ...DeliveryState) error {
	var v gateway.ValidationError
	for i, st := range states {
		at := "/" + strconv.Itoa(i)
		if st.Delivery.ID == "" {
			v.Add(at+"/delivery/delivery_id", "is required")
		}
		if st.Delivery.EventID == "" {
			v.Add(at+"/delivery/event_id", "is required")
		}
		if st.Delivery.Recipient.IsZero() {
			v.Add(at+"/delivery/recipient", "is required")
		}
		if !validState(st.State) {
			v.Add(at+"/state", fmt.Sprintf("unknown state %q", st.State))
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if len(states) == 0 {
		return nil
	}
	now := s.now().UTC()
	for _, st := range states {
		if st.Updated.IsZero() {
			st.Updated = now
		}
		blob, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode delivery %s: %w", st.Delivery.ID, err)
		}
		d := st.Delivery
		if st.State == StateQueued {
			// Routing records "queued" after the enqueue, so a fast consumer's
			// outcome may already be there: never overwrite it.
			pipe.HSetNX(ctx, s.eventKey(d.EventID, "dlv"), d.ID, blob)
		} else {
			pipe.HSet(ctx, s.eventKey(d.EventID, "dlv"), d.ID, blob)
		}
		pipe.SAdd(ctx, s.key("recipient", d.Recipient.String(), "events"), d.EventID)
	}
	return nil
}

// Deliveries returns the delivery states of an event, of a recipient, or of
// a recipient for one event; most recently updated first.
func (s *Store) Deliveries(ctx context.Context, eventID, recipient string) ([]DeliveryState, error) {
	if eventID == "" && recipient == "" {
		return nil, invalid("event", "event or constituent is required")
	}
	events := []string{eventID}
	if eventID == "" {
		var err error
		events, err = s.rdb.SMembers(ctx, s.key("recipient", recipient, "events")).Result()
		if err != nil {
			return nil, fmt.Errorf("list events of recipient %q: %w", recipient, err)
		}
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(events))
	for i, id := range events {
		cmds[i] = pipe.HGetAll(ctx, s.eventKey(id, "dlv"))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read delivery states: %w", err)
	}
	var out []DeliveryState
	for _, c := range cmds {
		for id, blob := range c.Val() {
			var st DeliveryState
			if err := json.Unmarshal([]byte(blob), &st); err != nil {
				return nil, fmt.Errorf("decode delivery %s: %w", id, err)
			}
			if recipient != "" && st.Delivery.Recipient.String() != recipient {
				continue
			}
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b DeliveryState) int {
		if c := b.Updated.Compare(a.Updated); c != 0 {
			return c
		}
		return strings.Compare(a.Delivery.ID, b.Delivery.ID)
	})
	return out, nil
}

// Cursor returns the poll cursor of source name, "" when none is stored.
func (s *Store) Cursor(ctx context.Context, name string) (string, error) {
	v, err := s.rdb.HGet(ctx, s.key("cursors"), name).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cursor of %q: %w", name, err)
	}
	return v, nil
}

// SetCursor stores the poll cursor of source name.
func (s *Store) SetCursor(ctx context.Context, name, v string) error {
	if name == "" {
		return invalid("name", "is required")
	}
	if err := s.rdb.HSet(ctx, s.key("cursors"), name, v).Err(); err != nil {
		return fmt.Errorf("store cursor of %q: %w", name, err)
	}
	return nil
}
