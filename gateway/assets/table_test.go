package assets

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// Readers keep looking up while a writer swaps registries: every answer
// comes whole from one registry version, never a mix or a torn read, and the
// last Store is what readers see afterwards.
func TestTableSwapUnderConcurrentReaders(t *testing.T) {
	build := func(owner string) *Matcher {
		m, err := Build([]gateway.Constituent{{ID: owner, Assets: gateway.Assets{
			Prefixes: []string{"10.0.0.0/8", "2001:db8::/32"},
			Domains:  []string{owner + ".example"},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	oldM, newM := build("old"), build("new")
	tbl := NewTable(oldM)
	addr := netip.MustParseAddr("10.9.8.7")

	const readers = 4
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, readers)
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := tbl.Load()
				ip := m.OwnersOfIP(addr)
				if len(ip) != 1 || (ip[0] != "old" && ip[0] != "new") {
					errs <- fmt.Sprintf("OwnersOfIP gave %q", ip)
					return
				}
				// Same Matcher value, same version for every lookup.
				if d := m.OwnersOfDomain("www." + ip[0] + ".example"); !slices.Equal(d, ip) {
					errs <- fmt.Sprintf("domain owners %q with IP owners %q", d, ip)
					return
				}
			}
		})
	}
	for i := range 2000 {
		if i%2 == 0 {
			tbl.Store(newM)
		} else {
			tbl.Store(oldM)
		}
	}
	tbl.Store(newM)
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := tbl.Load().OwnersOfIP(addr); !slices.Equal(got, []string{"new"}) {
		t.Errorf("after the last Store: %v, want [new]", got)
	}
}

func TestTableEmpty(t *testing.T) {
	tbl := NewTable(nil)
	if got := tbl.Load().OwnersOfIP(netip.MustParseAddr("10.0.0.1")); got != nil {
		t.Errorf("empty table: %v", got)
	}
}
