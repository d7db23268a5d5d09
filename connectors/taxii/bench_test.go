package taxii

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

// BenchmarkPage1000 serves 1,000-object pages of a collection of 100,000
// objects (10,000 events of ten objects of their own: a report, five
// indicators, and pass-through STIX — malware, threat actor and two
// relationships — plus the definitions and identity every event shares)
// over HTTP, from places spread over the whole collection, and reports the
// median and 99th percentile (taxii_page_1000_p50_ms; target ≤ 20 ms).
func BenchmarkPage1000(b *testing.B) {
	e := newEnv(b)
	const events = 10_000
	for i := range events {
		ev := event(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), gateway.TLPClear, gateway.KindAdvisory)
		for j := range 5 {
			ev.Indicators = append(ev.Indicators, gateway.Indicator{Type: gateway.TypeIPv4, Value: fmt.Sprintf("10.%d.%d.%d", i>>8&255, i&255, j), Detect: true})
		}
		ev.Extensions = &gateway.Extensions{STIX: passThrough(i)}
		e.put(ev, t0.Add(time.Duration(i)*time.Millisecond))
	}
	base := collectionPath(PublicID) + "objects/?limit=1000"
	// Walk once, keeping every page's next: the places the benchmark reads from.
	nexts := []string{""}
	total := 0
	for next := ""; ; {
		r := e.get(base+next, e.keys["a"])
		var env testEnvelope
		r.json(b, &env)
		for _, h := range heads(b, env.Objects) {
			if !shared(h.Type) {
				total++
			}
		}
		if !env.More {
			break
		}
		next = "&next=" + env.Next
		nexts = append(nexts, next)
	}
	if total != events*10 {
		b.Fatalf("collection holds %d objects, want %d", total, events*10)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		r := e.get(base+nexts[rng.IntN(len(nexts)-1)], e.keys["a"])
		lat = append(lat, time.Since(start))
		if r.status != 200 || len(r.body) < 100_000 {
			b.Fatalf("page: %d, %d bytes", r.status, len(r.body))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "taxii_page_1000_p50_ms")
	b.ReportMetric(ms(0.99), "taxii_page_1000_p99_ms")
}

// passThrough is what a source's bundle adds to event i: a malware, a
// threat actor that uses it, and a relationship from each to the other.
func passThrough(i int) []json.RawMessage {
	id := func(typ string, n int) string { return fmt.Sprintf("%s--%08x-1111-4000-8000-%012x", typ, i, n) }
	ts := `"created":"2026-11-20T08:00:00.000Z","modified":"2026-11-20T08:00:00.000Z"`
	return []json.RawMessage{
		json.RawMessage(`{"type":"malware","spec_version":"2.1","id":"` + id("malware", 1) + `",` + ts + `,"name":"family ` + strconv.Itoa(i) + `","is_family":true}`),
		json.RawMessage(`{"type":"threat-actor","spec_version":"2.1","id":"` + id("threat-actor", 2) + `",` + ts + `,"name":"actor ` + strconv.Itoa(i) + `"}`),
		json.RawMessage(`{"type":"relationship","spec_version":"2.1","id":"` + id("relationship", 3) + `",` + ts + `,"relationship_type":"uses","source_ref":"` + id("threat-actor", 2) + `","target_ref":"` + id("malware", 1) + `"}`),
		json.RawMessage(`{"type":"relationship","spec_version":"2.1","id":"` + id("relationship", 4) + `",` + ts + `,"relationship_type":"attributed-to","source_ref":"` + id("malware", 1) + `","target_ref":"` + id("threat-actor", 2) + `"}`),
	}
}
