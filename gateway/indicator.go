package gateway

import (
	"maps"
	"time"
)

// IndicatorType is the closed set of indicator types of the canonical event.
type IndicatorType string

const (
	TypeIPv4     IndicatorType = "ipv4"
	TypeIPv6     IndicatorType = "ipv6"
	TypeCIDR     IndicatorType = "cidr"
	TypeDomain   IndicatorType = "domain"
	TypeHostname IndicatorType = "hostname"
	TypeURL      IndicatorType = "url"
	TypeEmail    IndicatorType = "email"
	TypeMD5      IndicatorType = "md5"
	TypeSHA1     IndicatorType = "sha1"
	TypeSHA256   IndicatorType = "sha256"
	TypeSHA512   IndicatorType = "sha512"
	TypeASN      IndicatorType = "asn"
	TypeCVE      IndicatorType = "cve"
	TypeFilename IndicatorType = "filename"
	TypeJA3      IndicatorType = "ja3"
	TypeMutex    IndicatorType = "mutex"
	TypeOther    IndicatorType = "other"
)

// IndicatorTypes lists every valid type, in schema order.
var IndicatorTypes = []IndicatorType{
	TypeIPv4, TypeIPv6, TypeCIDR, TypeDomain, TypeHostname, TypeURL, TypeEmail,
	TypeMD5, TypeSHA1, TypeSHA256, TypeSHA512, TypeASN, TypeCVE, TypeFilename,
	TypeJA3, TypeMutex, TypeOther,
}

// Valid reports whether t is one of IndicatorTypes.
func (t IndicatorType) Valid() bool {
	for _, v := range IndicatorTypes {
		if t == v {
			return true
		}
	}
	return false
}

// Indicator is one observable. Detect marks it fit for automated detection
// (MISP to_ids).
type Indicator struct {
	Type       IndicatorType     `json:"type"`
	Value      string            `json:"value"`
	Detect     bool              `json:"detect,omitempty"`
	Port       int               `json:"port,omitempty"`
	ASN        int64             `json:"asn,omitempty"`
	Observed   time.Time         `json:"observed,omitzero"`
	Comment    string            `json:"comment,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Clone returns a copy that shares no map with ind.
func (ind Indicator) Clone() Indicator {
	if ind.Attributes != nil {
		ind.Attributes = maps.Clone(ind.Attributes)
	}
	return ind
}

// AttrDirection is the indicator attribute that says which side of a
// connection the value is: DirectionSource for the host a report is about
// (a Shadowserver row's own address and port — the constituent's host),
// DirectionDestination for a counterpart it talked to. Absent means
// unknown; encoders then keep their defaults (MISP ip-dst, STIX dst_ref).
const AttrDirection = "direction"

// Values of AttrDirection.
const (
	DirectionSource      = "source"
	DirectionDestination = "destination"
)
