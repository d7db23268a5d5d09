package mail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"
)

// charset names a character set this package can read. The standard library
// has no charset tables, and the brief keeps MIME handling stdlib-only, so
// the few sets advisories arrive in are built in here.
type charset int

const (
	csUnknown charset = iota
	csUTF8
	csASCII
	csLatin1
	csLatin9
	csWindows1252
)

// lookupCharset maps a MIME charset name (any case, common aliases) to a
// charset; an empty name is US-ASCII per RFC 2045, which we read as UTF-8
// because 8-bit mail without a charset is nearly always UTF-8 today.
func lookupCharset(name string) charset {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(name), `"'`)) {
	case "", "utf-8", "utf8", "unicode-1-1-utf-8":
		return csUTF8
	case "us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso646-us", "cp367":
		return csASCII
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819":
		return csLatin1
	case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin9", "latin-9", "l9":
		return csLatin9
	case "windows-1252", "cp1252", "x-cp1252", "win-1252":
		return csWindows1252
	}
	return csUnknown
}

// win1252 holds the characters Windows-1252 puts at 0x80–0x9F, where
// ISO-8859-1 has C1 control codes; 0 marks the five unassigned bytes.
var win1252 = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// latin9 lists where ISO-8859-15 differs from ISO-8859-1.
var latin9 = map[byte]rune{0xA4: '€', 0xA6: 'Š', 0xA8: 'š', 0xB4: 'Ž', 0xB8: 'ž', 0xBC: 'Œ', 0xBD: 'œ', 0xBE: 'Ÿ'}

// decodeBytes returns b as UTF-8 text. Invalid UTF-8 in a UTF-8 part is
// replaced rather than rejected: one bad byte must not lose an advisory.
func decodeBytes(b []byte, cs charset) string {
	switch cs {
	case csUTF8, csUnknown:
		if utf8.Valid(b) {
			return string(b)
		}
		return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
	case csASCII:
		if utf8.Valid(b) {
			// Mislabelled UTF-8 is far more common than real 8-bit ASCII.
			return string(b)
		}
		return windows1252(b)
	case csLatin1:
		var sb strings.Builder
		sb.Grow(len(b) + len(b)/8)
		for _, c := range b {
			sb.WriteRune(rune(c))
		}
		return sb.String()
	case csLatin9:
		var sb strings.Builder
		sb.Grow(len(b) + len(b)/8)
		for _, c := range b {
			if r, ok := latin9[c]; ok {
				sb.WriteRune(r)
			} else {
				sb.WriteRune(rune(c))
			}
		}
		return sb.String()
	case csWindows1252:
		return windows1252(b)
	}
	return string(b)
}

func windows1252(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for _, c := range b {
		switch {
		case c >= 0x80 && c < 0xA0:
			if r := win1252[c-0x80]; r != 0 {
				sb.WriteRune(r)
			} else {
				sb.WriteRune('\uFFFD')
			}
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

var errUnknownCharset = errors.New("unknown charset")

// wordDecoder decodes RFC 2047 encoded words. It handles utf-8, iso-8859-1
// and us-ascii itself and asks charsetReader for the rest.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(name string, input io.Reader) (io.Reader, error) {
	cs := lookupCharset(name)
	if cs == csUnknown {
		return nil, fmt.Errorf("%w %q", errUnknownCharset, name)
	}
	b, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeBytes(b, cs)), nil
}

// decodeHeader decodes the encoded words of a header value. Raw 8-bit
// values (RFC 6532 allows UTF-8; older mailers send Windows-1252) become
// UTF-8. On an unknown charset it returns the raw value and the error.
func decodeHeader(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		raw = windows1252([]byte(raw))
	}
	s, err := wordDecoder.DecodeHeader(raw)
	if err != nil {
		return raw, err
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}
