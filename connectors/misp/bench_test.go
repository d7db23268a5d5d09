package misp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// fill ingests n events built by mk through the pipeline, a few at a time.
func fill(b *testing.B, e *env, n int, mk func(i int) *gateway.Event) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := e.pl.Ingest(context.Background(), gateway.Source{Name: "partner"}, mk(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// post sends a MISP request and returns the body size; the body is read
// to the end, as a client would.
func post(b *testing.B, e *env, path, key, body string, count []byte) (int64, int) {
	req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: %d %.300s", path, resp.StatusCode, data)
	}
	cw := &countWriter{needle: count}
	n, err := io.Copy(cw, resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return n, cw.hits
}

// countWriter counts a needle in what passes through it (never split
// across writes for the needles used here: each is one JSON key).
type countWriter struct {
	needle []byte
	hits   int
	tail   []byte
}

func (c *countWriter) Write(p []byte) (int, error) {
	if len(c.needle) > 0 {
		buf := append(c.tail, p...)
		c.hits += bytes.Count(buf, c.needle)
		keep := min(len(c.needle)-1, len(buf))
		// Avoid counting a needle twice: keep only a tail shorter than it.
		c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
	}
	return len(p), nil
}

// BenchmarkIndex100k: POST /events/index (MISP's minimal pull form) by a
// constituent whose view holds 100,000 events. Reports the median
// latency as misp_index_100k_p50_ms (target < 300 ms).
func BenchmarkIndex100k(b *testing.B) {
	const n = 100_000
	e := newEnv(b)
	start := time.Now()
	fill(b, e, n, func(i int) *gateway.Event {
		tlp := gateway.TLPClear
		if i%2 == 1 {
			tlp = gateway.TLPGreen
		}
		return ev(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i), gateway.KindIntel, tlp, t0.Add(time.Duration(i)*time.Second),
			fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
	})
	b.Logf("ingested %d events in %s", n, time.Since(start).Round(time.Millisecond))
	body := `{"minimal":1,"published":1}`
	start = time.Now()
	if _, got := post(b, e, "/events/index", e.keyA, body, []byte(`"uuid"`)); got != n {
		b.Fatalf("index lists %d events, want %d", got, n)
	}
	b.Logf("first index (computes what the index shows of each event): %s", time.Since(start).Round(time.Millisecond))
	var lat []time.Duration
	for b.Loop() {
		t := time.Now()
		post(b, e, "/events/index", e.keyA, body, nil)
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "misp_index_100k_p50_ms")
}

// BenchmarkAttributesRestSearch250k: POST /attributes/restSearch returning
// 250,000 attributes (25 events of 10,000), read to the end by the client.
// Reports seconds as misp_restsearch_250k_s (target < 3 s).
func BenchmarkAttributesRestSearch250k(b *testing.B) {
	const events, per = 25, 10_000
	e := newEnv(b)
	fill(b, e, events, func(i int) *gateway.Event {
		x := ev(fmt.Sprintf("%08x-0000-4000-8000-000000000250", i), gateway.KindIntel, gateway.TLPClear, t0.Add(time.Duration(i)*time.Minute))
		x.Indicators = make([]gateway.Indicator, per)
		for j := range per {
			x.Indicators[j] = gateway.Indicator{Type: gateway.TypeDomain, Value: fmt.Sprintf("host-%d-%d.bad.example", i, j), Detect: true}
		}
		return x
	})
	body := `{"returnFormat":"json"}`
	var secs float64
	var size int64
	for b.Loop() {
		t := time.Now()
		var got int
		size, got = post(b, e, "/attributes/restSearch", e.keyA, body, []byte(`"event_id":`))
		secs = time.Since(t).Seconds()
		if got != events*per {
			b.Fatalf("restSearch returned %d attributes, want %d", got, events*per)
		}
	}
	b.ReportMetric(secs, "misp_restsearch_250k_s")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

// BenchmarkObjectsRestSearch100k: POST /objects/restSearch returning
// 100,000 ip-port objects of two attributes each (20 events of 5,000),
// read to the end by the client. Reports seconds as
// misp_objects_restsearch_100k_s (target ≤ 2 s).
func BenchmarkObjectsRestSearch100k(b *testing.B) {
	const events, per = 20, 5_000
	e := newEnv(b)
	fill(b, e, events, func(i int) *gateway.Event {
		x := ev(fmt.Sprintf("%08x-0000-4000-8000-000000000100", i), gateway.KindIntel, gateway.TLPClear, t0.Add(time.Duration(i)*time.Minute))
		x.Indicators = make([]gateway.Indicator, 0, 2*per)
		for j := range per {
			obj := fmt.Sprintf("%08x-0000-4000-9000-%012d", i, j)
			in := func(typ gateway.IndicatorType, mispType, rel, v string) gateway.Indicator {
				return gateway.Indicator{Type: typ, Value: v, Detect: true, Attributes: map[string]string{
					mispmap.AttrType: mispType, mispmap.AttrObject: "ip-port", mispmap.AttrObjectUUID: obj, mispmap.AttrObjectRelation: rel,
				}}
			}
			x.Indicators = append(x.Indicators,
				in(gateway.TypeIPv4, "ip-dst", "ip", fmt.Sprintf("10.%d.%d.%d", i, j>>8, j&255)),
				in(gateway.TypeDomain, "domain", "domain", fmt.Sprintf("host-%d-%d.bad.example", i, j)))
		}
		return x
	})
	body := `{"returnFormat":"json"}`
	var secs float64
	var size int64
	for b.Loop() {
		t := time.Now()
		var got int
		size, got = post(b, e, "/objects/restSearch", e.keyA, body, []byte(`{"Object":`))
		secs = time.Since(t).Seconds()
		if got != events*per {
			b.Fatalf("objects/restSearch returned %d objects, want %d", got, events*per)
		}
	}
	b.ReportMetric(secs, "misp_objects_restsearch_100k_s")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

// BenchmarkPush10k: a MISP source pushes a 10,000-attribute event
// (POST /events/add), answered once it is stored and routed. Reports
// seconds per push as misp_push_10k_s (target < 1 s).
func BenchmarkPush10k(b *testing.B) {
	e := newEnv(b)
	const per = 10_000
	attrs := make([][3]string, per)
	for j := range per {
		attrs[j] = [3]string{fmt.Sprintf("30000000-0000-4000-8000-%012d", j), "ip-dst", fmt.Sprintf("10.%d.%d.%d", j>>16, (j>>8)&255, j&255)}
	}
	i := 0
	var total time.Duration
	for b.Loop() {
		doc := mispDoc(fmt.Sprintf("40000000-%04x-4000-8000-000000000000", i), t0.Unix(), []string{"tlp:green"}, attrs...)
		// Attribute uuids are unique across events in MISP.
		doc = bytes.ReplaceAll(doc, []byte(`"uuid":"30000000-0000-4000-8000-`), []byte(fmt.Sprintf(`"uuid":"30000000-%04x-4000-8000-`, i+1)))
		i++
		t := time.Now()
		post(b, e, "/events/add/metadata:1", e.keySrc, string(doc), nil)
		total += time.Since(t)
	}
	b.ReportMetric(total.Seconds()/float64(i), "misp_push_10k_s")
}
