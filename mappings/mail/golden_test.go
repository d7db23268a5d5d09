package mail

import (
	"encoding/json"
	"flag"
	"strconv"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	goldenfile "github.com/schakel/schakel/mappings/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden is what a golden file records for one input message: the events as
// Schakel stores them (after normalize.Event), the mapping's FieldErrors and
// any the normaliser adds.
type golden struct {
	Events          []*gateway.Event     `json:"events"`
	Errors          []gateway.FieldError `json:"errors,omitempty"`
	NormalizeErrors []gateway.FieldError `json:"normalize_errors,omitempty"`
	Error           string               `json:"error,omitempty"`
}

// testDecoders stand in for mappings/csaf, misp and stix, which this
// package must not import: each reads just enough of its format to show
// that the attachment reached the right decoder and that its events are
// returned and take the message's TLP as a floor.
func testDecoders() Options {
	return Options{
		CSAF: func(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
			var doc struct {
				Document struct {
					Title        string `json:"title"`
					Distribution struct {
						TLP struct {
							Label string `json:"label"`
						} `json:"tlp"`
					} `json:"distribution"`
					Publisher struct {
						Name string `json:"name"`
					} `json:"publisher"`
					Tracking struct {
						ID          string    `json:"id"`
						Initial     time.Time `json:"initial_release_date"`
						CurrentDate time.Time `json:"current_release_date"`
					} `json:"tracking"`
				} `json:"document"`
				Vulnerabilities []struct {
					CVE string `json:"cve"`
				} `json:"vulnerabilities"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				return nil, nil, err
			}
			ev := &gateway.Event{
				Kind:     gateway.KindAdvisory,
				Title:    doc.Document.Title,
				TLP:      gateway.TLP(doc.Document.Distribution.TLP.Label),
				Source:   gateway.SourceRef{Format: "csaf", Org: doc.Document.Publisher.Name, Ref: doc.Document.Tracking.ID},
				Created:  doc.Document.Tracking.Initial,
				Modified: doc.Document.Tracking.CurrentDate,
			}
			for _, v := range doc.Vulnerabilities {
				ev.Vulnerabilities = append(ev.Vulnerabilities, gateway.Vulnerability{CVE: v.CVE})
			}
			return []*gateway.Event{ev}, nil, nil
		},
		MISP: func(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
			var doc struct {
				Event struct {
					UUID      string `json:"uuid"`
					Info      string `json:"info"`
					Attribute []struct {
						Type  string `json:"type"`
						Value string `json:"value"`
					} `json:"Attribute"`
				} `json:"Event"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				return nil, nil, err
			}
			ev := &gateway.Event{Kind: gateway.KindIntel, Title: doc.Event.Info, Source: gateway.SourceRef{Format: "misp", Ref: doc.Event.UUID}}
			var errs []gateway.FieldError
			for i, a := range doc.Event.Attribute {
				if a.Type != "ip-dst" {
					errs = append(errs, gateway.FieldError{Field: "/Event/Attribute/" + strconv.Itoa(i) + "/type", Message: "unsupported type " + a.Type})
					continue
				}
				ev.Indicators = append(ev.Indicators, gateway.Indicator{Type: gateway.TypeIPv4, Value: a.Value, Detect: true})
			}
			return []*gateway.Event{ev}, errs, nil
		},
		STIX: func(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
			var b struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(data, &b); err != nil {
				return nil, nil, err
			}
			return []*gateway.Event{{Kind: gateway.KindIntel, Title: "STIX bundle " + b.ID, TLP: gateway.TLPGreen, Source: gateway.SourceRef{Format: "stix", Ref: b.ID}}}, nil, nil
		},
	}
}

func decodeGolden(t *testing.T, data []byte) golden {
	t.Helper()
	evs, errs, err := DecodeMessage(data, testDecoders())
	g := golden{Events: evs, Errors: errs}
	if err != nil {
		g.Error = err.Error()
	}
	for _, ev := range evs {
		g.NormalizeErrors = append(g.NormalizeErrors, normalize.Event(ev)...)
	}
	return g
}

func TestGoldenDecode(t *testing.T) {
	goldenfile.Run(t, "testdata/golden/*.eml", *update, func(t *testing.T, _ string, data []byte) any {
		return decodeGolden(t, data)
	})
}
