package egress

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestCheck(t *testing.T) {
	p, err := New([]string{"127.0.0.2", "fe80::/10"}, []string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr    string
		blocked string // substring of the reason; empty: allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.9.9.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"}, // mapped form is the same socket
		{"169.254.169.254", "link-local"},
		{"fd00:ec2::254", "metadata"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"100.100.100.200", "metadata"}, // Alibaba Cloud
		{"192.0.0.192", "metadata"},     // Oracle Cloud
		{"::127.0.0.1", "IPv4-compatible form of 127.0.0.1, which is loopback"},
		{"::169.254.169.254", "link-local"},
		{"64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1"},
		{"64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"},
		{"64:ff9b::100.100.100.200", "metadata"},
		{"64:ff9b:1::127.0.0.1", "NAT64 form of 127.0.0.1"},             // local-use prefix as a /96
		{"64:ff9b:1:7f00:0:100::", "NAT64 form of 127.0.0.1"},           // local-use prefix as a /48
		{"64:ff9b:1:0:a9:fea9:fe00:0", "NAT64 form of 169.254.169.254"}, // as a /64
		{"64:ff9b::10.1.2.3", "egress.deny"},
		{"2002:7f00:1::", "6to4 form of 127.0.0.1"},
		{"2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1"},
		{"2001:0:4136:e378:8000:63bf:5601:5601", "Teredo form of 169.254.169.254"},
		{"10.1.2.3", "egress.deny"},
		{"::ffff:10.1.2.3", "egress.deny"},
		{"127.0.0.2", ""},    // allowed explicitly
		{"fe80::1%eth0", ""}, // allow wins over a built-in block
		{"192.168.1.10", ""}, // private ranges are allowed by default
		{"172.16.0.1", ""},
		{"fd12:3456::1", ""},
		{"192.0.2.10", ""},
		{"2001:db8::1", ""},
		{"64:ff9b::192.0.2.1", ""},
		{"64:ff9b:1::c000:201", ""},                  // local-use NAT64 /96 to 192.0.2.1
		{"2002:e000:1::1", ""},                       // 6to4 of multicast: not a way to this host                   // NAT64 to a public address
		{"2002:c000:201::1", ""},                     // 6to4 of 192.0.2.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", ""}, // Teredo client 192.0.2.45
		{"2606:4700::1111", ""},
	} {
		err := p.Check(netip.MustParseAddr(tc.addr))
		switch {
		case tc.blocked == "" && err != nil:
			t.Errorf("%s: blocked (%v), want allowed", tc.addr, err)
		case tc.blocked != "" && err == nil:
			t.Errorf("%s: allowed, want blocked as %s", tc.addr, tc.blocked)
		case tc.blocked != "" && (!strings.Contains(err.Error(), tc.blocked) || !errors.Is(err, ErrBlocked)):
			t.Errorf("%s: %v, want ErrBlocked naming %q", tc.addr, err, tc.blocked)
		}
	}
	var nilPolicy *Policy
	if nilPolicy.Check(netip.MustParseAddr("127.0.0.1")) == nil {
		t.Error("a nil policy must still apply the built-in blocks")
	}
}

func TestNewNamesBadEntries(t *testing.T) {
	_, err := New([]string{"10.0.0.0/8", "not-a-net"}, []string{"300.1.1.1"})
	if err == nil {
		t.Fatal("bad entries accepted")
	}
	for _, want := range []string{"egress.allow[1]", "not-a-net", "egress.deny[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	p, _ := New(nil, nil)
	for _, tc := range []struct {
		url     string
		blocked bool
	}{
		{"http://127.0.0.1:8080/hook", true},
		{"http://[::1]/hook", true},
		{"http://[::ffff:169.254.169.254]/latest/meta-data", true},
		{"http://169.254.169.254/latest/meta-data", true},
		{"https://LOCALHOST./x", true},
		{"https://api.localhost/x", true},
		{"https://soc.example.org/hook", false}, // judged when dialled
		{"https://192.0.2.1/hook", false},
	} {
		if got := p.CheckURL(tc.url) != nil; got != tc.blocked {
			t.Errorf("CheckURL(%q) blocked=%v, want %v", tc.url, got, tc.blocked)
		}
	}
}

// The guard sits in the dialer, so a name that resolves to loopback and a
// redirect to loopback are refused like a literal.
func TestClientRefusesAtDial(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	p, _ := New(nil, nil)
	c := p.Client(5 * time.Second)
	for _, u := range []string{srv.URL, "http://localhost:" + strconv.Itoa(port) + "/"} {
		_, err := c.Get(u)
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("GET %s: %v, want ErrBlocked", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("blocked requests reached the server %d times", hits.Load())
	}

	allowed, _ := New([]string{"127.0.0.0/8", "::1"}, nil)
	resp, err := allowed.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed loopback: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("allowed request: %d hits, want 1", hits.Load())
	}
}

func TestRedirectToBlockedAddressRefused(t *testing.T) {
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the redirect target was reached")
	}))
	defer inner.Close()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	outer := httptest.NewUnstartedServer(http.RedirectHandler(inner.URL+"/latest/meta-data", http.StatusFound))
	outer.Listener.Close()
	outer.Listener = ln
	outer.Start()
	defer outer.Close()

	p, _ := New([]string{"127.0.0.2"}, nil) // the outer server is allowed, its redirect target is not
	_, err = p.Client(5 * time.Second).Get(outer.URL)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("redirect to loopback: %v, want ErrBlocked", err)
	}
}

func TestCheckConstituent(t *testing.T) {
	p, _ := New(nil, nil)
	c := &gateway.Constituent{
		ID:       "acme",
		Webhooks: []gateway.Webhook{{URL: "https://soc.acme.example/hook"}, {URL: "http://169.254.169.254/latest"}},
		MISPPush: &gateway.MISPPush{URL: "http://[::1]:8443"},
	}
	got := p.CheckConstituent(c)
	if len(got) != 2 || got[0].Field != "/webhooks/1/url" || got[1].Field != "/misp_push/url" {
		t.Fatalf("got %+v, want /webhooks/1/url and /misp_push/url", got)
	}
}

func TestRequireTLS(t *testing.T) {
	var hits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/downgraded", http.StatusFound))
	defer secure.Close()

	p, err := New([]string{"127.0.0.0/8"}, nil, RequireTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckURL("http://soc.example.org/hook"); !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "require_tls") {
		t.Errorf("CheckURL(http://…) = %v, want a refusal naming egress.require_tls", err)
	}
	if err := p.CheckURL("https://soc.example.org/hook"); err != nil {
		t.Errorf("CheckURL(https://…) = %v", err)
	}
	c := p.Client(5 * time.Second)
	c.Transport.(schemeGuard).next.(*http.Transport).TLSClientConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig
	if _, err := c.Get(plain.URL); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("GET http://: %v, want ErrPlainHTTP", err)
	}
	// An https source that redirects to http is refused at the hop.
	if _, err := c.Get(secure.URL); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("https redirecting to http: %v, want ErrPlainHTTP", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the plain-http server was reached %d times", n)
	}
	// Without the option plain http is fine.
	open, _ := New([]string{"127.0.0.0/8"}, nil)
	resp, err := open.Client(5 * time.Second).Get(plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
