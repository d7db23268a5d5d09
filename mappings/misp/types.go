package misp

import (
	"strings"

	"github.com/schakel/schakel/gateway"
)

// typeDefault is one entry of MISP's describeTypes sane_defaults.
type typeDefault struct {
	category string
	toIDs    bool
}

// handling says how Decode maps one MISP attribute type.
type handling int

const (
	hOther    handling = iota // kept as an "other" indicator
	hSimple                   // one indicator of rule.canonical
	hIP                       // ip-src, ip-dst: ipv4, ipv6 or cidr by value
	hIPPort                   // ip-src|port, ip-dst|port: ip with Port
	hHostPort                 // hostname|port: hostname with Port
	hDomainIP                 // domain|ip: a domain and an ip indicator
	hFileHash                 // filename|<hash>: a hash (attributes["filename"]) and a filename
	hURI                      // uri: url when absolute, else other
	hVuln                     // vulnerability: Event.Vulnerabilities
)

type typeRule struct {
	h         handling
	canonical gateway.IndicatorType // hSimple; the hash type for hFileHash
}

// typeRules is the MISP → canonical type table (see the package doc). Types
// not listed become "other".
var typeRules = map[string]typeRule{
	"ip-src":              {h: hIP},
	"ip-dst":              {h: hIP},
	"ip-src|port":         {h: hIPPort},
	"ip-dst|port":         {h: hIPPort},
	"hostname|port":       {h: hHostPort},
	"domain":              {hSimple, gateway.TypeDomain},
	"hostname":            {hSimple, gateway.TypeHostname},
	"domain|ip":           {h: hDomainIP},
	"url":                 {hSimple, gateway.TypeURL},
	"uri":                 {h: hURI},
	"email":               {hSimple, gateway.TypeEmail},
	"email-src":           {hSimple, gateway.TypeEmail},
	"email-dst":           {hSimple, gateway.TypeEmail},
	"md5":                 {hSimple, gateway.TypeMD5},
	"sha1":                {hSimple, gateway.TypeSHA1},
	"sha256":              {hSimple, gateway.TypeSHA256},
	"sha512":              {hSimple, gateway.TypeSHA512},
	"filename|md5":        {hFileHash, gateway.TypeMD5},
	"filename|sha1":       {hFileHash, gateway.TypeSHA1},
	"filename|sha256":     {hFileHash, gateway.TypeSHA256},
	"filename|sha512":     {hFileHash, gateway.TypeSHA512},
	"filename":            {hSimple, gateway.TypeFilename},
	"AS":                  {hSimple, gateway.TypeASN},
	"vulnerability":       {h: hVuln},
	"ja3-fingerprint-md5": {hSimple, gateway.TypeJA3},
	"mutex":               {hSimple, gateway.TypeMutex},
}

// producible reports whether Decode can turn a MISP attribute of type
// mispType into an indicator of type t. Encode keeps an indicator's
// original MISP type only then: an indicator whose type changed since (or
// that never came from MISP) gets the default MISP type of its canonical
// type instead, so the value always fits the type MISP validates it against.
// inferred says the normaliser gave an "other" value its real type.
func producible(mispType string, t gateway.IndicatorType, inferred bool) bool {
	r, ok := typeRules[mispType]
	if !ok {
		if _, known := typeDefaults[mispType]; !known {
			return false
		}
		return t == gateway.TypeOther || inferred
	}
	switch r.h {
	case hSimple:
		return t == r.canonical
	case hIP, hIPPort:
		return isIPType(t)
	case hHostPort:
		return t == gateway.TypeHostname
	case hDomainIP:
		return t == gateway.TypeDomain || isIPType(t)
	case hFileHash:
		return t == gateway.TypeFilename || t == r.canonical
	case hURI:
		return t == gateway.TypeURL || t == gateway.TypeOther || inferred
	case hVuln:
		return t == gateway.TypeOther || inferred
	}
	return false
}

func isIPType(t gateway.IndicatorType) bool {
	return t == gateway.TypeIPv4 || t == gateway.TypeIPv6 || t == gateway.TypeCIDR
}

func isHashType(t gateway.IndicatorType) bool {
	switch t {
	case gateway.TypeMD5, gateway.TypeSHA1, gateway.TypeSHA256, gateway.TypeSHA512:
		return true
	}
	return false
}

// defaultType is the canonical → MISP type table for indicators without a
// usable original MISP type.
func defaultType(ind *gateway.Indicator) string {
	switch ind.Type {
	case gateway.TypeIPv4, gateway.TypeIPv6:
		if ind.Port != 0 {
			return defaultIPType(ind) + "|port"
		}
		return defaultIPType(ind)
	case gateway.TypeCIDR:
		return "ip-dst" // MISP accepts CIDR notation in ip-dst
	case gateway.TypeDomain, gateway.TypeHostname:
		if ind.Port != 0 {
			return "hostname|port"
		}
		return string(ind.Type)
	case gateway.TypeURL:
		return "url"
	case gateway.TypeEmail:
		return "email-dst"
	case gateway.TypeMD5, gateway.TypeSHA1, gateway.TypeSHA256, gateway.TypeSHA512, gateway.TypeFilename, gateway.TypeMutex:
		return string(ind.Type)
	case gateway.TypeASN:
		return "AS"
	case gateway.TypeCVE:
		return "vulnerability"
	case gateway.TypeJA3:
		return "ja3-fingerprint-md5"
	}
	return "text"
}

// category is the default category of a MISP type, "Other" for a type
// describeTypes does not know.
func category(mispType string) string {
	if d, ok := typeDefaults[mispType]; ok {
		return d.category
	}
	return "Other"
}

// objectMeta gives reconstructed objects the meta-category of MISP's
// object templates for the common object names; MISP does not validate it.
var objectMeta = map[string]string{
	"file": "file", "pe": "file", "pe-section": "file", "elf": "file", "elf-section": "file",
	"macho": "file", "macho-section": "file", "original-imported-file": "file", "lnk": "file",
	"domain-ip": "network", "ip-port": "network", "url": "network", "network-connection": "network",
	"dns-record": "network", "http-request": "network", "x509": "network", "whois": "network",
	"email": "network", "netflow": "network", "passive-dns": "network",
	"vulnerability": "vulnerability", "weakness": "vulnerability",
	"registry-key": "misc", "process": "misc", "mutex": "misc",
}

func metaCategory(name string) string {
	if m, ok := objectMeta[strings.ToLower(name)]; ok {
		return m
	}
	return "misc"
}
