package mail

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway"
)

// BenchmarkSend measures warnings sent to a local go-smtp relay through the
// sink, one after the other over the reused session (rendering included).
// Reports mail_send_per_s (target: ≥ 200).
func BenchmarkSend(b *testing.B) {
	relay := mailtest.NewRelay(b, mailtest.RelayOptions{Username: "schakel", Password: "pw"})
	s, err := NewSink(SinkOptions{Relay: Relay{Address: relay.Addr, TLS: TLSNone, Username: "schakel", Password: "pw", Timeout: 5 * time.Second}, From: testFrom})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11", gateway.TLPAmber, "Kwetsbaarheden verholpen in Example VPN")
	for i := range 40 {
		ev.Indicators = append(ev.Indicators, gateway.Indicator{Type: gateway.TypeIPv4, Value: fmt.Sprintf("198.51.100.%d", i)})
	}
	d := delivery(ev, "a", "soc@a.example")
	ctx := context.Background()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if err := s.Deliver(ctx, d, nil, ev, ""); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "mail_send_per_s")
	if c := relay.Connections(); c > n/100+1 {
		b.Errorf("%d connections for %d messages: sessions are not reused", c, n)
	}
}
