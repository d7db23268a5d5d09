package csv_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/mappings/csv"
)

// FuzzDecode: any input either fails as a whole or gives one notification
// whose indicators are IP addresses the normaliser accepts, with every
// problem naming a line. It never panics.
func FuzzDecode(f *testing.F) {
	inputs, err := filepath.Glob("testdata/golden/*.csv")
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("src_ip,src_port,dst_ip,type\n192.0.2.1,99999,198.51.100.1,event4_x\n\"::ffff:1.2.3.4\",1,,\n"))
	f.Add([]byte("\uFEFFip,timestamp\n\"192.0.2.1\n\",2026-02-31 00:00:00\n,\n\"\"\"\n"))
	f.Add([]byte("ip,ip,asn\n2001:db8::1,2001:db8::2,AS4294967295\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, errs, err := csv.Decode(data)
		if err != nil {
			if evs != nil || errs != nil {
				t.Fatalf("error %v came with events or problems", err)
			}
			return
		}
		if len(evs) != 1 || evs[0].Kind != gateway.KindNotification {
			t.Fatalf("%d events", len(evs))
		}
		ev := evs[0]
		if len(ev.Indicators) > csv.MaxRows || len(errs) > csv.MaxProblems+1 {
			t.Fatalf("%d indicators, %d problems", len(ev.Indicators), len(errs))
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Field, "line ") && !strings.HasSuffix(e.Message, "more problems not listed") {
				t.Fatalf("problem without a line: %v", e)
			}
		}
		for _, ind := range ev.Indicators {
			if _, err := netip.ParseAddr(ind.Value); err != nil {
				t.Fatalf("indicator value %q is no address", ind.Value)
			}
		}
		if nerrs := normalize.Event(ev); nerrs != nil {
			t.Fatalf("the normaliser rejects the mapped event: %v", nerrs)
		}
	})
}
