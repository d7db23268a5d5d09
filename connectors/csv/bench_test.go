package csv_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/connectors/csv"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/assets"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
	csvmap "github.com/schakel/schakel/mappings/csv"
)

// shadowserverReport writes an n-row scan report in Shadowserver's column
// layout. Half the addresses lie in the constituents' prefixes, half are
// random (mostly owned by nobody), as in a national CSIRT's daily feed.
func shadowserverReport(n int, cs []gateway.Constituent) []byte {
	r := rand.New(rand.NewPCG(7, 11))
	var v4 []netip.Prefix
	for _, c := range cs {
		for _, p := range c.Assets.Prefixes {
			if pf := netip.MustParsePrefix(p); pf.Addr().Is4() {
				v4 = append(v4, pf)
			}
		}
	}
	random := assets.RandomAddrs(3, n)
	var b bytes.Buffer
	b.Grow(n * 200)
	b.WriteString(`"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","sic","sector","severity","version","servername"` + "\n")
	for i := range n {
		var a netip.Addr
		if i%2 == 0 {
			p := v4[r.IntN(len(v4))]
			base := p.Addr().As4()
			host := r.Uint32() & (1<<(32-p.Bits()) - 1)
			ip := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3]) | host
			a = netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
		} else {
			a = random[i]
		}
		fmt.Fprintf(&b, "\"2026-11-20 00:%02d:%02d\",\"%s\",\"tcp\",443,\"mail%d.example.net\",\"exchange;cve-2021-26855\",%d,\"NL\",\"UTRECHT\",\"UTRECHT\",517311,,\"Communications\",\"high\",\"15.2.721\",\"EXCH%d\"\n",
			(i/60)%60, i%60, a, i, 64500+i%100, i)
	}
	return b.Bytes()
}

// BenchmarkCSV100kRoute measures csv_100k_route_s: one
// 100,000-row Shadowserver report against 10,000 constituents (50,000
// prefixes, each constituent with a webhook), from the report's bytes to
// every delivery enqueued in the outbox (not sent): parse, normalise,
// store, match, route, index the pull views and count the unowned rows.
func BenchmarkCSV100kRoute(b *testing.B) {
	const rows, nConst = 100_000, 10_000
	ctx := context.Background()
	r := redistest.New(b)
	log := slog.New(slog.DiscardHandler)
	cs := assets.RandomConstituents(1, nConst, 50_000)
	for i := range cs {
		cs[i].Webhooks = []gateway.Webhook{{URL: fmt.Sprintf("https://soc.example/%s", cs[i].ID), Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	}
	st := store.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, cs); err != nil {
		b.Fatal(err)
	}
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		b.Fatal(err)
	}
	au := audit.New(r.Client, r.Prefix)
	m := metrics.New(prometheus.NewRegistry())
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})
	p := pipeline.New(st, ob, au, reg, pipeline.Config{
		DefaultTLP: gateway.TLPAmber, Push: map[gateway.Channel]bool{gateway.ChannelWebhook: true},
		Views: views.New(r.Client, r.Prefix, st, reg),
	}, m, log)
	src, err := csv.NewSource(csv.Options{Name: "shadowserver", Path: b.TempDir(), Profile: csvmap.Shadowserver, DefaultTLP: gateway.TLPAmber},
		p, st, au, func() policy.Owners { return reg.Current() })
	if err != nil {
		b.Fatal(err)
	}
	data := shadowserverReport(rows, cs)
	b.SetBytes(int64(len(data)))
	var last csv.Result
	n := 0
	start := time.Now()
	for b.Loop() {
		n++
		name := fmt.Sprintf("2026-11-20-scan_exchange-nl-%d.csv", n)
		res, err := src.IngestReport(ctx, name, data, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != rows || res.Deliveries == 0 {
			b.Fatalf("%d rows, %d deliveries", res.Rows, res.Deliveries)
		}
		last = res
	}
	per := time.Since(start).Seconds() / float64(n)
	b.ReportMetric(per, "csv_100k_route_s")
	b.ReportMetric(float64(last.Deliveries), "deliveries/op")
	b.ReportMetric(float64(last.Unowned), "unowned_rows/op")
	b.ReportMetric(float64(rows)/per, "rows/s")
}
