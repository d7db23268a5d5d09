package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/redisconn"
	"github.com/schakel/schakel/gateway/redistest"
)

// clusterConfig is harnessConfig with limits high enough that the test
// measures sharing, not rate limiting.
func clusterConfig(t *testing.T, dir, redisURL string, a, b *webhooktest.Receiver) string {
	t.Helper()
	path := harnessConfig(t, dir, redisURL, "schakel", "127.0.0.1:0", a, b, harnessOpts{})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "schakel.yaml", string(data)+"limits: {webhook_per_minute: 1000000, ingest_per_minute: 1000000}\n")
}

// deliveredBy reads a replica's own delivery counter from its /metrics: each
// replica has its own Prometheus registry, so this counts the deliveries
// that replica's outbox consumer made.
func deliveredBy(t *testing.T, h *harness) float64 {
	t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "schakel_deliveries_total{") ||
			!strings.Contains(line, `channel="webhook"`) || !strings.Contains(line, `outcome="delivered"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		n += v
	}
	return n
}

// postEvent ingests ev through the canonical API and wants 202.
func postEvent(h *harness, ev map[string]any) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", h.base+"/api/v1/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", h.sourceKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ingest %v: %w", ev["id"], err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("ingest %v: status %d: %s", ev["id"], resp.StatusCode, msg)
	}
	return nil
}

func TestClusterTwoReplicas(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster")
	}
	url := redistest.Cluster(t)
	a, b := webhooktest.New(t, ""), webhooktest.New(t, "")
	dir := t.TempDir()
	path := clusterConfig(t, dir, url, a, b)
	r1 := startFromConfig(t, path)
	r2 := startFromConfig(t, path)

	const n = 500
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c0000000-0000-4000-8000-%012d", i)
	}
	// B refuses some first tries (503, or 429 with Retry-After), so
	// retries go through the delayed set and back into the stream on the
	// cluster too.
	b.Respond(func(i int) (int, int) {
		switch {
		case i < 300 && i%25 == 0:
			return http.StatusServiceUnavailable, 0
		case i < 300 && i%25 == 1:
			return http.StatusTooManyRequests, 1
		}
		return 0, 0
	})

	// GREEN advisories go to both constituents: 2n deliveries.
	began := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan string)
	for range 8 {
		wg.Go(func() {
			for id := range jobs {
				// Not r1.ingest: it calls Fatal, which only the test goroutine may.
				if err := postEvent(r1, event(id, "advisory", "GREEN", nil)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()

	// Policy on the cluster: RED is held, never pushed; AMBER+STRICT
	// reaches its addressee only.
	const (
		red    = "c1000000-0000-4000-8000-000000000001"
		strict = "c1000000-0000-4000-8000-000000000002"
	)
	if res := r1.ingest(event(red, "incident", "RED", nil), 202); !res.Held {
		t.Errorf("RED event not held: %+v", res)
	}
	r1.ingest(event(strict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}), 202)

	// An id that starts with '}' would give its keys an empty hash tag and
	// scatter them over slots: refused with the field named, on any Redis.
	body := r1.do("POST", "/api/v1/events", r1.sourceKey, event("}odd", "advisory", "GREEN", nil), 400, nil)
	if !strings.Contains(string(body), "/id") {
		t.Errorf("id starting with '}': %s", body)
	}

	if err := a.WaitFor(n+1, 40*time.Second); err != nil {
		t.Fatalf("A: %v", err)
	}
	if err := b.WaitFor(n, 40*time.Second); err != nil {
		t.Fatalf("B: %v", err)
	}
	took := time.Since(began)
	settle(a, b)

	for _, rc := range []struct {
		name string
		r    *webhooktest.Receiver
		want int
	}{{"A", a, n + 1}, {"B", b, n}} {
		perEvent := map[string]int{}
		perDelivery := map[string]string{}
		for _, x := range rc.r.Received() {
			if prev, ok := perDelivery[x.DeliveryID]; ok {
				if prev != x.Event.ID {
					t.Errorf("%s: delivery_id %s carried events %s and %s", rc.name, x.DeliveryID, prev, x.Event.ID)
				}
				continue // a redelivery under the same id is at-least-once, allowed
			}
			perDelivery[x.DeliveryID] = x.Event.ID
			perEvent[x.Event.ID]++
		}
		if len(perDelivery) != rc.want {
			t.Errorf("%s: %d distinct deliveries, want %d", rc.name, len(perDelivery), rc.want)
		}
		for _, id := range ids {
			switch perEvent[id] {
			case 1:
			case 0:
				t.Errorf("%s: event %s lost", rc.name, id)
			default:
				t.Errorf("%s: event %s delivered under %d different delivery ids", rc.name, id, perEvent[id])
			}
		}
		if perEvent[red] != 0 {
			t.Errorf("%s received the RED event", rc.name)
		}
		if rc.r.Rejected() != 0 {
			t.Errorf("%s rejected %d signatures", rc.name, rc.r.Rejected())
		}
	}
	if refused := b.Requests() - len(b.Received()); refused < 20 {
		t.Errorf("B refused %d requests; the retry path was not exercised", refused)
	}
	if len(byEvent(a, strict)) != 1 || len(byEvent(b, strict)) != 0 {
		t.Errorf("AMBER+STRICT: A %d, B %d", len(byEvent(a, strict)), len(byEvent(b, strict)))
	}

	d1, d2 := deliveredBy(t, r1), deliveredBy(t, r2)
	t.Logf("%d deliveries in %v; made by replica 1: %.0f, replica 2: %.0f; duplicates at receivers: A %d, B %d",
		2*n+1, took.Round(time.Millisecond), d1, d2, len(a.Received())-(n+1), len(b.Received())-n)
	if d1 == 0 || d2 == 0 {
		t.Errorf("deliveries not shared: replica 1 made %.0f, replica 2 made %.0f", d1, d2)
	}
	if d1+d2 < 2*n+1 {
		t.Errorf("replicas count %.0f deliveries, receivers got %d", d1+d2, 2*n+1)
	}

	// State must have spread over every node: otherwise the cluster proved
	// nothing about cross-slot operations.
	ctx := context.Background()
	rdb, err := redisconn.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	var mu sync.Mutex
	var sizes []int64
	err = rdb.(*redis.ClusterClient).ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 || slices.Contains(sizes, 0) {
		t.Errorf("keys per node %v: want keys on all three nodes", sizes)
	}

	// Pull paths read the same state through either replica.
	body = r2.do("GET", "/api/v1/held", testAdminKey, nil, 200, nil)
	if !strings.Contains(string(body), red) {
		t.Errorf("RED event not listed as held on replica 2: %s", body)
	}
	var list struct {
		Events []struct{ ID string } `json:"events"`
	}
	r2.do("GET", "/api/v1/events?limit=1000", testAdminKey, nil, 200, &list)
	if len(list.Events) != n+2 {
		t.Errorf("replica 2 lists %d events, want %d", len(list.Events), n+2)
	}
}
