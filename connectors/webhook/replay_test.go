package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/redistest"
)

// countingIngester passes events to the real pipeline and counts them; fail
// makes the next call fail, as a broken store would.
type countingIngester struct {
	next gateway.Ingester
	mu   sync.Mutex
	n    int
	fail bool
}

func (c *countingIngester) Ingest(ctx context.Context, src gateway.Source, ev *gateway.Event) (gateway.Result, error) {
	c.mu.Lock()
	fail := c.fail
	c.fail = false
	if !fail {
		c.n++
	}
	c.mu.Unlock()
	if fail {
		return gateway.Result{}, errors.New("store unavailable")
	}
	return c.next.Ingest(ctx, src, ev)
}

func (c *countingIngester) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type guarded struct {
	api     *httpapi.Server
	ing     *countingIngester
	redis   *redistest.Redis
	metrics *metrics.Metrics
}

// guardedApp mounts webhook ingest with replay protection in Redis and the
// per-source ingest limit, the way cmd/schakel wires them.
func guardedApp(t *testing.T, perMinute int) *guarded {
	t.Helper()
	c := newCore(t)
	api, pl, m, r, log := c.api, c.pl, c.m, c.r, c.log
	ing := &countingIngester{next: pl}
	in := webhook.NewIngest(webhook.IngestOptions{
		Ingest: ing, Metrics: m, Log: log,
		Sources: []webhook.IngestSource{{Name: "hook", Secret: hookSecret}, {Name: "other", Secret: hookSecret}},
		Redis:   r.Client, Prefix: r.Prefix,
		Limiter: limit.NewLeasing(limit.New(r.Client, r.Prefix)), IngestPerMinute: perMinute,
	})
	api.Mount(in.Mount)
	return &guarded{api: api, ing: ing, redis: r, metrics: m}
}

// post sends body to source signed with secret as message msgID.
func (g *guarded) post(t *testing.T, source, secret, msgID, body string) (int, http.Header, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/ingest/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	now := time.Now()
	sig, err := webhook.Sign(secret, msgID, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhook.HeaderID, msgID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := g.api.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestIngestRefusesReplays(t *testing.T) {
	type step struct {
		source, secret, msgID, body string
		failIngest                  bool
		wantStatus                  int
		wantBody                    string
		wantIngested                int // calls the Ingester saw so far
	}
	ev1 := canonical("33333333-0000-4000-8000-000000000001")
	ev2 := canonical("33333333-0000-4000-8000-000000000002")
	cases := []struct {
		name  string
		steps []step
	}{
		{"same signed request twice is ingested once", []step{
			{"hook", hookSecret, "msg_a", ev1, false, 202, `"status":"accepted"`, 1},
			{"hook", hookSecret, "msg_a", ev1, false, 200, `{"status":"duplicate"}`, 1},
		}},
		{"same body under another id reaches the pipeline", []step{
			{"hook", hookSecret, "msg_a", ev1, false, 202, `"status":"accepted"`, 1},
			{"hook", hookSecret, "msg_b", ev1, false, 200, `"id":"33333333-0000-4000-8000-000000000001"`, 2},
		}},
		{"a bad signature does not record the id", []step{
			{"hook", otherSecret, "msg_a", ev1, false, 401, `webhook signature`, 0},
			{"hook", hookSecret, "msg_a", ev1, false, 202, `"status":"accepted"`, 1},
		}},
		{"a failed ingest may be retried with the same id", []step{
			{"hook", hookSecret, "msg_a", ev1, true, 500, `"error"`, 0},
			{"hook", hookSecret, "msg_a", ev1, false, 202, `"status":"accepted"`, 1},
			{"hook", hookSecret, "msg_a", ev1, false, 200, `{"status":"duplicate"}`, 1},
		}},
		{"ids are remembered per source", []step{
			{"hook", hookSecret, "msg_a", ev1, false, 202, `"status":"accepted"`, 1},
			{"other", hookSecret, "msg_a", ev2, false, 202, `"status":"accepted"`, 2},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := guardedApp(t, 0)
			for i, s := range c.steps {
				g.ing.mu.Lock()
				g.ing.fail = s.failIngest
				g.ing.mu.Unlock()
				status, _, body := g.post(t, s.source, s.secret, s.msgID, s.body)
				if status != s.wantStatus || !strings.Contains(body, s.wantBody) {
					t.Fatalf("step %d: %d %s, want %d with %s", i, status, body, s.wantStatus, s.wantBody)
				}
				if n := g.ing.count(); n != s.wantIngested {
					t.Fatalf("step %d: the Ingester saw %d events, want %d", i, n, s.wantIngested)
				}
			}
		})
	}
}

// The id is kept in Redis, under the gateway's prefix and the source, for
// longer than a message stays acceptable: twice the tolerance, as the
// timestamp may lie up to the tolerance in the future.
func TestIngestRemembersIDsInRedis(t *testing.T) {
	g := guardedApp(t, 0)
	if status, _, body := g.post(t, "hook", hookSecret, "msg_a", canonical("33333333-0000-4000-8000-000000000001")); status != 202 {
		t.Fatalf("%d %s", status, body)
	}
	keys, err := g.redis.Client.Keys(context.Background(), g.redis.Prefix+":webhook:{hook}:seen:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("seen keys %v, want one", keys)
	}
	ttl, err := g.redis.Client.TTL(context.Background(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 2*webhook.DefaultTolerance || ttl > 2*webhook.DefaultTolerance+5*time.Minute {
		t.Fatalf("seen key TTL %s, want a little over %s", ttl, 2*webhook.DefaultTolerance)
	}
}

func TestIngestLimitPerSource(t *testing.T) {
	g := guardedApp(t, 2)
	for i := range 2 {
		id := "33333333-0000-4000-8000-00000000001" + strconv.Itoa(i)
		if status, _, body := g.post(t, "hook", hookSecret, "msg_"+strconv.Itoa(i), canonical(id)); status != 202 {
			t.Fatalf("request %d within the limit: %d %s", i, status, body)
		}
	}
	// Unsigned requests do not use up the source's budget.
	if status, _, _ := g.post(t, "other", otherSecret, "msg_x", canonical("33333333-0000-4000-8000-000000000020")); status != 401 {
		t.Fatalf("bad signature: %d, want 401", status)
	}
	status, hdr, body := g.post(t, "hook", hookSecret, "msg_3", canonical("33333333-0000-4000-8000-000000000013"))
	if status != http.StatusTooManyRequests || !strings.Contains(body, `"error":"ingest rate limit exceeded for webhook source hook"`) {
		t.Fatalf("over the limit: %d %s, want 429", status, body)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want whole seconds >= 1", hdr.Get("Retry-After"))
	}
	if n := g.ing.count(); n != 2 {
		t.Fatalf("the Ingester saw %d events, want 2", n)
	}
	if v := testutil.ToFloat64(g.metrics.Rejected.WithLabelValues("hook", "limit")); v != 1 {
		t.Fatalf("rejected{hook,limit} = %v, want 1", v)
	}
	// The budget is per source: another source is not held back.
	if status, _, body := g.post(t, "other", hookSecret, "msg_4", canonical("33333333-0000-4000-8000-000000000021")); status != 202 {
		t.Fatalf("other source: %d %s, want 202", status, body)
	}
}
