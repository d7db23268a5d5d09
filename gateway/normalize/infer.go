package normalize

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

// fileExtensions are common file extensions that are not delegated TLDs, so
// "invoice.pdf" is not guessed to be a domain. Extensions that are also TLDs
// (zip, mov, app, sh, py) cannot be told apart and are left out.
var fileExtensions = map[string]bool{
	"exe": true, "dll": true, "sys": true, "drv": true, "ocx": true, "cpl": true, "scr": true,
	"bat": true, "cmd": true, "vbs": true, "vbe": true, "js": true, "jse": true, "wsf": true,
	"hta": true, "lnk": true, "pif": true, "msi": true, "jar": true, "apk": true, "elf": true,
	"dmg": true, "iso": true, "img": true, "vhd": true, "vhdx": true, "cab": true, "chm": true,
	"doc": true, "docx": true, "docm": true, "xls": true, "xlsx": true, "xlsm": true,
	"ppt": true, "pptx": true, "pdf": true, "rtf": true, "txt": true, "csv": true, "json": true,
	"xml": true, "htm": true, "html": true, "php": true, "asp": true, "aspx": true, "jsp": true,
	"png": true, "jpg": true, "jpeg": true, "gif": true, "bmp": true, "svg": true, "eml": true,
	"msg": true, "rar": true, "tar": true, "gz": true, "tgz": true, "ini": true, "cfg": true,
	"conf": true, "log": true, "tmp": true, "dat": true, "bin": true,
}

// Infer guesses the type of a bare value (used for type "other" and by text
// extractors, which should Refang first): IPv4/IPv6 (a zone is allowed),
// CIDR, URL (scheme://), e-mail, md5/sha1/sha256/sha512 by hex length
// (32 hex is md5, also for JA3), CVE, ASN ("AS64500"), domain (a dot and a
// last label of letters or xn--), else "other".
func Infer(value string) gateway.IndicatorType {
	v := strings.TrimSpace(value)
	if v == "" || len(v) > MaxValueBytes || !utf8.ValidString(v) {
		return gateway.TypeOther
	}
	if i := strings.Index(v, "://"); i >= 0 {
		if validScheme(v[:i]) && i+3 < len(v) {
			return gateway.TypeURL
		}
		return gateway.TypeOther
	}
	ip := v
	if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
		ip = ip[1 : len(ip)-1]
	}
	if a, err := netip.ParseAddr(ip); err == nil {
		if a.Is4() || a.Is4In6() {
			return gateway.TypeIPv4
		}
		return gateway.TypeIPv6
	}
	if strings.IndexByte(v, '/') > 0 {
		if _, err := netip.ParsePrefix(v); err == nil {
			return gateway.TypeCIDR
		}
		return gateway.TypeOther
	}
	if isCVE(v) {
		return gateway.TypeCVE
	}
	if len(v) > 2 && hasPrefixFold(v, "as") && allDigits(v[2:]) {
		if _, err := normASN(v); err == nil {
			return gateway.TypeASN
		}
	}
	if t, ok := hexType(v); ok {
		return t
	}
	if at := strings.LastIndexByte(v, '@'); at > 0 {
		if publicLooking(v[at+1:]) {
			if _, err := normEmail(v); err == nil {
				return gateway.TypeEmail
			}
		}
		return gateway.TypeOther
	}
	if publicLooking(v) {
		if _, err := dnsName(v, "domain", true); err == nil {
			return gateway.TypeDomain
		}
	}
	return gateway.TypeOther
}

func hexType(v string) (gateway.IndicatorType, bool) {
	var t gateway.IndicatorType
	switch len(v) {
	case 32:
		t = gateway.TypeMD5
	case 40:
		t = gateway.TypeSHA1
	case 64:
		t = gateway.TypeSHA256
	case 128:
		t = gateway.TypeSHA512
	default:
		return "", false
	}
	for i := 0; i < len(v); i++ {
		c := lower(v[i])
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return t, true
}

// publicLooking reports whether name has a dot and a last label that could
// be a public TLD: two or more letters (any script) or an xn-- label, and
// not a common file extension.
func publicLooking(name string) bool {
	name = strings.TrimSuffix(name, ".")
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return false
	}
	tld := name[dot+1:]
	if hasPrefixFold(tld, "xn--") {
		return len(tld) > 4
	}
	if utf8.RuneCountInString(tld) < 2 || fileExtensions[strings.ToLower(tld)] {
		return false
	}
	for _, r := range tld {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}
