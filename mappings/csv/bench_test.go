package csv_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/mappings/csv"
)

// report100k is a Shadowserver scan_http-style report of 100,000 rows, the
// size of the performance target csv_100k_route_s.
var report100k = sync.OnceValue(func() []byte {
	const rows = 100_000
	var b strings.Builder
	b.Grow(rows * 260)
	b.WriteString(`"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","sic","sector","http","http_code","http_reason","content_type","server","severity"` + "\n")
	for i := range rows {
		fmt.Fprintf(&b, "\"2026-11-20 %02d:%02d:%02d\",\"%d.%d.%d.%d\",\"tcp\",%d,\"host-%d.example.nl\",\"http;vulnerable\",%d,\"NL\",\"NOORD-HOLLAND\",\"AMSTERDAM\",517311,,\"Communications, Service Provider, and Hosting Service\",\"HTTP/1.1\",200,\"OK\",\"text/html; charset=\"\"utf-8\"\"\",\"nginx/1.18.0\",\"medium\"\n",
			i/3600%24, i/60%60, i%60, 10+i>>16&127, i>>8&255, i&255, 1+i%250, []int{80, 443, 8080, 8443}[i%4], i, 64500+i%12)
	}
	return []byte(b.String())
})

func BenchmarkDecodeReport(b *testing.B) {
	data := report100k()
	r := csv.Report{Name: "2026-11-20-scan_http-nl.csv", Data: data}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	rows := 0
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		ev, errs, err := csv.DecodeReport(csv.Shadowserver, r)
		if err != nil || errs != nil {
			b.Fatal(err, errs)
		}
		cpu += cpuTime() - start
		rows += len(ev.Indicators)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	if cpu > 0 {
		b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
	}
}

func BenchmarkDecode(b *testing.B) {
	data := report100k()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		evs, _, err := csv.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs[0].Indicators)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "indicators/s")
}
