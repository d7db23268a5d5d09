package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
)

func benchBody(b *testing.B, indicators int) []byte {
	b.Helper()
	ev := testEvent()
	for i := range indicators {
		ind := ev.Indicators[0].Clone()
		ind.Value = "192.0.2." + strconv.Itoa(i%256)
		ev.Indicators = append(ev.Indicators, ind)
	}
	body, err := webhook.Payload("dlv_0123456789abcdef0123456789abcdef", ev)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func BenchmarkSign(b *testing.B) {
	for _, n := range []int{0, 20, 500} {
		body := benchBody(b, n)
		b.Run(strconv.Itoa(len(body))+"B", func(b *testing.B) {
			ts := time.Now()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := webhook.Sign(specSecret, "dlv_0123456789abcdef0123456789abcdef", ts, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	body := benchBody(b, 20)
	now := time.Now()
	sig, err := webhook.Sign(specSecret, "dlv_1", now, body)
	if err != nil {
		b.Fatal(err)
	}
	// A map lookup, as fiber's getter is: http.Header.Get would add its own
	// key canonicalisation to the figure.
	h := map[string]string{
		webhook.HeaderID:        "dlv_1",
		webhook.HeaderTimestamp: strconv.FormatInt(now.Unix(), 10),
		webhook.HeaderSignature: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + sig,
	}
	get := func(name string) string { return h[name] }
	b.ReportAllocs()
	for b.Loop() {
		if err := webhook.Verify(specSecret, get, body, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSend measures the sending side alone against a receiver that only
// drains the body, so the figure is the Sender's ceiling, not a SOC's.
func BenchmarkSend(b *testing.B) {
	body := benchBody(b, 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	s := webhook.NewSender(webhook.SenderOptions{})

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			if err := s.Send(b.Context(), srv.URL, specSecret, "dlv_1", body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8) // deliveries wait on the network; the outbox runs many at once
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Send(b.Context(), srv.URL, specSecret, "dlv_1", body); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
	})
}
