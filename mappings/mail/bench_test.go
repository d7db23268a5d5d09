package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkDecode parses the golden messages (the two shared fixtures and
// this package's own) and reports messages and indicators per second.
// The target is mail_parse_per_s ≥ 2,000 per core (-cpu 1).
func BenchmarkDecode(b *testing.B) {
	files, err := filepath.Glob("testdata/golden/*.eml")
	if err != nil || len(files) == 0 {
		b.Fatalf("no fixtures: %v", err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(p), ".eml"), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			msgs, inds := 0, 0
			for b.Loop() {
				evs, _, err := Decode(data)
				if err != nil {
					b.Fatal(err)
				}
				msgs++
				for _, ev := range evs {
					inds += len(ev.Indicators)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(msgs)/s, "mail_parse_per_s")
			b.ReportMetric(float64(inds)/s, "indicators/s")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	ev, e := sampleEvent(), envelope()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := Encode(ev, e); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "messages/s")
}
