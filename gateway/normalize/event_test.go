package normalize

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func baseEvent() *gateway.Event {
	return &gateway.Event{
		Kind:   gateway.KindIntel,
		Title:  "Phishing wave",
		TLP:    gateway.TLPAmber,
		Source: gateway.SourceRef{Name: "partner-api"},
	}
}

// fields returns the pointers of errs, in order.
func fields(errs []gateway.FieldError) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field
	}
	return out
}

func TestEventIndicators(t *testing.T) {
	ev := baseEvent()
	ev.Indicators = []gateway.Indicator{
		{Type: "ipv4", Value: "192.0.2.1"},
		{Type: "ipv4", Value: "192.0.2.300", Comment: "typo"},
		{Type: "domain", Value: "EVIL[.]example"},
		{Type: "md5", Value: "short"},
		{Type: "ipv4", Value: "192.0.2.2", Port: 70000},
		{Type: "bogus", Value: "x"},
		{Type: "ipv4", Value: "192.0.2.3", ASN: -1},
	}
	errs := Event(ev)

	wantFields := []string{
		"/indicators/1/value", "/indicators/3/value", "/indicators/4/port",
		"/indicators/5/type", "/indicators/6/asn",
	}
	if got := fields(errs); !reflect.DeepEqual(got, wantFields) {
		t.Fatalf("error fields = %v, want %v (errors: %v)", got, wantFields, errs)
	}
	for _, e := range errs {
		if e.Message == "" || strings.HasPrefix(e.Message, "/") {
			t.Errorf("message %q should say what is wrong, without the path", e.Message)
		}
	}
	want := []gateway.Indicator{
		{Type: "ipv4", Value: "192.0.2.1"},
		{Type: "domain", Value: "evil.example"},
	}
	if !reflect.DeepEqual(ev.Indicators, want) {
		t.Errorf("indicators = %+v, want %+v", ev.Indicators, want)
	}
}

func TestEventMergesDuplicates(t *testing.T) {
	early := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	late := early.Add(time.Hour)
	shared := map[string]string{"tag": "a"}
	ev := baseEvent()
	ev.Indicators = []gateway.Indicator{
		{Type: "domain", Value: "evil.example", Observed: late, Attributes: shared},
		{Type: "ipv4", Value: "192.0.2.1", Port: 443, Comment: "c2"},
		{Type: "domain", Value: "EVIL.example.", Detect: true, Comment: "from feed B", Observed: early,
			Attributes: map[string]string{"tag": "b", "first_seen": "x"}},
		{Type: "ipv4", Value: "192.0.2.1", Port: 80},                       // other port: kept
		{Type: "ipv4", Value: "192.0.2[.]1", Port: 443, Comment: "later"},  // same as index 1
		{Type: "ipv6", Value: "::ffff:192.0.2.1", Port: 443, Detect: true}, // becomes ipv4, same as index 1
		{Type: "other", Value: "192.0.2.1", Port: 80},                      // becomes ipv4, same as index 3
	}
	if errs := Event(ev); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if len(ev.Indicators) != 3 {
		t.Fatalf("got %d indicators, want 3: %+v", len(ev.Indicators), ev.Indicators)
	}
	d := ev.Indicators[0]
	if d.Value != "evil.example" || !d.Detect || d.Comment != "from feed B" || !d.Observed.Equal(early) {
		t.Errorf("merged domain = %+v: want detect ORed, the first non-empty comment, the earliest observation", d)
	}
	if d.Attributes["tag"] != "a" || d.Attributes["first_seen"] != "x" {
		t.Errorf("merged attributes = %v, want the first's tag and the second's first_seen", d.Attributes)
	}
	if len(shared) != 1 {
		t.Errorf("the caller's attribute map was modified: %v", shared)
	}
	ip := ev.Indicators[1]
	if ip.Port != 443 || !ip.Detect || ip.Comment != "c2" {
		t.Errorf("merged ip = %+v, want port 443, detect true, comment c2", ip)
	}
	if got := ev.Indicators[2]; got.Port != 80 || got.Type != "ipv4" {
		t.Errorf("third = %+v, want ipv4 port 80", got)
	}
}

func TestEventFields(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(ev *gateway.Event)
		wantFields []string
		check      func(t *testing.T, ev *gateway.Event)
	}{
		{
			name: "valid event untouched",
			edit: func(*gateway.Event) {},
			check: func(t *testing.T, ev *gateway.Event) {
				if !reflect.DeepEqual(ev, baseEvent()) {
					t.Errorf("event changed: %+v", ev)
				}
			},
		},
		{
			name:       "empty title",
			edit:       func(ev *gateway.Event) { ev.Title = "  \t" },
			wantFields: []string{"/title"},
		},
		{
			name: "title trimmed",
			edit: func(ev *gateway.Event) { ev.Title = "  Kwetsbaarheid  " },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.Title != "Kwetsbaarheid" {
					t.Errorf("title = %q", ev.Title)
				}
			},
		},
		{name: "uuid id", edit: func(ev *gateway.Event) { ev.ID = "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11" }},
		{name: "tracking id", edit: func(ev *gateway.Event) { ev.ID = "NCSC-2026-0389" }},
		{name: "longest id", edit: func(ev *gateway.Event) { ev.ID = strings.Repeat("a", 128) }},
		{name: "id too long", edit: func(ev *gateway.Event) { ev.ID = strings.Repeat("a", 129) }, wantFields: []string{"/id"}},
		{name: "id with a space", edit: func(ev *gateway.Event) { ev.ID = "a b" }, wantFields: []string{"/id"}},
		{name: "id starting with a brace", edit: func(ev *gateway.Event) { ev.ID = "}x" }, wantFields: []string{"/id"}},
		{
			name: "bounds at their limits",
			edit: func(ev *gateway.Event) {
				ev.Title = strings.Repeat("é", MaxTitleChars)
				ev.Description = strings.Repeat("d", MaxDescriptionSize)
				ev.Source.Ref = strings.Repeat("r", MaxRefChars)
				for i := range MaxLabels {
					ev.Labels = append(ev.Labels, strings.Repeat("l", MaxLabelChars-3)+strconv.Itoa(100+i))
				}
			},
		},
		{name: "title too long", edit: func(ev *gateway.Event) { ev.Title = strings.Repeat("é", MaxTitleChars+1) }, wantFields: []string{"/title"}},
		{name: "description too long", edit: func(ev *gateway.Event) { ev.Description = strings.Repeat("é", MaxDescriptionSize/2+1) }, wantFields: []string{"/description"}},
		{name: "source ref too long", edit: func(ev *gateway.Event) { ev.Source.Ref = strings.Repeat("r", MaxRefChars+1) }, wantFields: []string{"/source/ref"}},
		{
			name: "too many labels",
			edit: func(ev *gateway.Event) {
				for i := range MaxLabels + 1 {
					ev.Labels = append(ev.Labels, strconv.Itoa(i))
				}
			},
			wantFields: []string{"/labels"},
		},
		{name: "label too long", edit: func(ev *gateway.Event) { ev.Labels = []string{"a", strings.Repeat("l", MaxLabelChars+1)} }, wantFields: []string{"/labels/1"}},
		{
			name:       "unknown kind",
			edit:       func(ev *gateway.Event) { ev.Kind = "rumour" },
			wantFields: []string{"/kind"},
		},
		{
			name:       "missing kind",
			edit:       func(ev *gateway.Event) { ev.Kind = "" },
			wantFields: []string{"/kind"},
		},
		{
			name: "kind and priority case",
			edit: func(ev *gateway.Event) { ev.Kind = " Advisory"; ev.Priority = "HIGH" },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.Kind != gateway.KindAdvisory || ev.Priority != gateway.PriorityHigh {
					t.Errorf("kind, priority = %q, %q", ev.Kind, ev.Priority)
				}
			},
		},
		{
			name:       "unknown priority",
			edit:       func(ev *gateway.Event) { ev.Priority = "urgent" },
			wantFields: []string{"/priority"},
		},
		{
			name: "WHITE becomes CLEAR with label",
			edit: func(ev *gateway.Event) { ev.TLP = "WHITE"; ev.Labels = []string{"phishing"} },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.TLP != gateway.TLPClear || !reflect.DeepEqual(ev.Labels, []string{"phishing", "tlp:white"}) {
					t.Errorf("tlp, labels = %q, %q", ev.TLP, ev.Labels)
				}
			},
		},
		{
			name: "WHITE label not doubled",
			edit: func(ev *gateway.Event) { ev.TLP = "tlp:white"; ev.Labels = []string{"TLP:WHITE"} },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.TLP != gateway.TLPClear || !reflect.DeepEqual(ev.Labels, []string{"TLP:WHITE"}) {
					t.Errorf("tlp, labels = %q, %q", ev.TLP, ev.Labels)
				}
			},
		},
		{
			name: "TLP synonym",
			edit: func(ev *gateway.Event) { ev.TLP = "tlp:amber+strict" },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.TLP != gateway.TLPAmberStrict {
					t.Errorf("tlp = %q", ev.TLP)
				}
			},
		},
		{
			name: "empty TLP left for the pipeline",
			edit: func(ev *gateway.Event) { ev.TLP = " " },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.TLP != "" {
					t.Errorf("tlp = %q, want empty", ev.TLP)
				}
			},
		},
		{
			name:       "unknown TLP",
			edit:       func(ev *gateway.Event) { ev.TLP = "PURPLE" },
			wantFields: []string{"/tlp"},
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.TLP.Valid() {
					t.Errorf("an unknown TLP must not become valid: %q", ev.TLP)
				}
			},
		},
		{
			name: "high/high assessment is critical",
			edit: func(ev *gateway.Event) {
				ev.Priority = gateway.PriorityLow
				ev.Assessment = &gateway.Assessment{Probability: "High", Impact: " high"}
			},
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.Priority != gateway.PriorityCritical {
					t.Errorf("priority = %q, want critical", ev.Priority)
				}
			},
		},
		{
			name:  "urgent assessment is critical",
			edit:  func(ev *gateway.Event) { ev.Assessment = &gateway.Assessment{Urgency: "urgent"} },
			check: func(t *testing.T, ev *gateway.Event) { wantPriority(t, ev, gateway.PriorityCritical) },
		},
		{
			name: "medium assessment keeps priority",
			edit: func(ev *gateway.Event) {
				ev.Priority = gateway.PriorityHigh
				ev.Assessment = &gateway.Assessment{Probability: "high", Impact: "medium"}
			},
			check: func(t *testing.T, ev *gateway.Event) { wantPriority(t, ev, gateway.PriorityHigh) },
		},
		{
			name: "labels and sectors cleaned",
			edit: func(ev *gateway.Event) {
				ev.Labels = []string{" ransomware", "", "ransomware", "Phishing", "phishing "}
				ev.Sectors = []string{"Health ", "health", " ", "ENERGY"}
			},
			check: func(t *testing.T, ev *gateway.Event) {
				if !reflect.DeepEqual(ev.Labels, []string{"ransomware", "Phishing", "phishing"}) {
					t.Errorf("labels = %q", ev.Labels)
				}
				if !reflect.DeepEqual(ev.Sectors, []string{"health", "energy"}) {
					t.Errorf("sectors = %q", ev.Sectors)
				}
			},
		},
		{
			name: "addressees",
			edit: func(ev *gateway.Event) {
				ev.Addressees = []gateway.Addressee{
					{Constituent: " gemeente-utrecht "},
					{Name: "nobody"},
					{Email: "CISO[@]Example[.]NL", Name: "CISO"},
					{Email: "not-an-address"},
				}
			},
			wantFields: []string{"/addressees/1", "/addressees/3/email"},
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.Addressees[0].Constituent != "gemeente-utrecht" || ev.Addressees[2].Email != "CISO@example.nl" {
					t.Errorf("addressees = %+v", ev.Addressees)
				}
			},
		},
		{
			name: "vulnerabilities",
			edit: func(ev *gateway.Event) {
				ev.Vulnerabilities = []gateway.Vulnerability{
					{CVE: "cve-2026-12345", CVSS: 9.8},
					{CVE: "CVE-26-1", CVSS: 5},
					{CVE: "CVE-2026-0001", CVSS: 10.5},
					{CVE: "CVE-2026-0002", CVSS: math.NaN()},
					{CVE: "CVE-2026-0003", CVSS: -1},
				}
			},
			wantFields: []string{"/vulnerabilities/1/cve", "/vulnerabilities/2/cvss", "/vulnerabilities/3/cvss", "/vulnerabilities/4/cvss"},
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.Vulnerabilities[0].CVE != "CVE-2026-12345" {
					t.Errorf("cve = %q", ev.Vulnerabilities[0].CVE)
				}
			},
		},
		{
			name: "no defaults assigned",
			edit: func(ev *gateway.Event) { ev.TLP = "" },
			check: func(t *testing.T, ev *gateway.Event) {
				if ev.ID != "" || !ev.Created.IsZero() || !ev.Modified.IsZero() || ev.TLP != "" {
					t.Errorf("defaults assigned: id=%q created=%v modified=%v tlp=%q", ev.ID, ev.Created, ev.Modified, ev.TLP)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := baseEvent()
			tt.edit(ev)
			errs := Event(ev)
			if got := fields(errs); !reflect.DeepEqual(got, append([]string{}, tt.wantFields...)) {
				t.Fatalf("error fields = %v, want %v (errors: %v)", got, tt.wantFields, errs)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func wantPriority(t *testing.T, ev *gateway.Event, want gateway.Priority) {
	t.Helper()
	if ev.Priority != want {
		t.Errorf("priority = %q, want %q", ev.Priority, want)
	}
}

func TestEventTLPMessageListsLabels(t *testing.T) {
	ev := baseEvent()
	ev.TLP = "PURPLE"
	errs := Event(ev)
	if len(errs) != 1 {
		t.Fatalf("errors = %v", errs)
	}
	for _, l := range gateway.TLPs {
		if !strings.Contains(errs[0].Message, string(l)) {
			t.Errorf("message %q does not list %s", errs[0].Message, l)
		}
	}
}

func TestEventNil(t *testing.T) {
	if errs := Event(nil); len(errs) != 1 {
		t.Fatalf("Event(nil) = %v, want one error", errs)
	}
}
