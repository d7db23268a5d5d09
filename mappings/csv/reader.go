package csv

import "strings"

// reader splits CSV text into records. It exists instead of encoding/csv
// for two reasons:
//
//   - Shadowserver files hold quoted fields such as "Basic realm=\"\"x\"\""
//     (backslash before doubled quotes). encoding/csv rejects them, or with
//     LazyQuotes swallows the following fields, losing the row; IntelMQ's
//     parser (Python's csv module) reads them. reader follows Python: a
//     quote inside a quoted field that is neither doubled nor followed by a
//     comma or line end closes the quoting, and the rest of the field is
//     taken literally.
//   - Fields are substrings of one copy of the input, so a row costs no
//     allocation beyond its fields that contain doubled quotes.
//
// A quote left open runs on over line breaks, as CSV allows. When such a
// record does not have the header's number of fields, or the quote is
// never closed, reader takes only its first line as the record and goes on
// with the next line, so one stray quote costs one row, not the rest of
// the file.
type reader struct {
	s    string
	pos  int
	line int      // line number of pos, from 1
	want int      // the header's number of fields; 0 while reading the header
	rec  []string // reused between records
	buf  []byte   // for fields that need unescaping
	// unclosed is set when a quote of the current record is never closed:
	// never valid CSV, so the record is cut back to its first line even
	// when the swallowed rows happen to give it the right field count.
	unclosed bool
}

func newReader(data []byte) *reader {
	s := strings.TrimPrefix(string(data), "\uFEFF") // a byte-order mark from spreadsheet exports
	return &reader{s: s, line: 1}
}

// next returns the next record (valid until the following call) and the
// line it starts on; ok is false at the end of the input. cut reports a
// record cut back to its first line because a quote opened on it ran on.
// Empty lines are skipped.
func (r *reader) next() (rec []string, line int, cut, ok bool) {
	for r.pos < len(r.s) && (r.s[r.pos] == '\n' || r.s[r.pos] == '\r' && r.pos+1 < len(r.s) && r.s[r.pos+1] == '\n') {
		if r.s[r.pos] == '\r' {
			r.pos++
		}
		r.pos++
		r.line++
	}
	if r.pos >= len(r.s) {
		return nil, r.line, false, false
	}
	start, startLine := r.pos, r.line
	r.unclosed = false
	r.rec = r.parse(r.rec[:0], len(r.s))
	endLine := r.line
	if r.s[r.pos-1] == '\n' {
		endLine-- // the record's own line break
	}
	if endLine > startLine && (r.unclosed || r.want > 0 && len(r.rec) != r.want) {
		// An open quote ran over line breaks into the following rows:
		// keep to the first line.
		nl := start + strings.IndexByte(r.s[start:], '\n')
		end := nl
		if end > start && r.s[end-1] == '\r' {
			end--
		}
		r.pos, r.line = start, startLine
		r.rec = r.parse(r.rec[:0], end)
		r.pos, r.line = nl+1, startLine+1
		return r.rec, startLine, true, true
	}
	return r.rec, startLine, false, true
}

// parse reads one record from r.pos, not past end, and leaves r.pos after
// its line break.
func (r *reader) parse(rec []string, end int) []string {
	s := r.s[:end]
	for {
		var f string
		if r.pos < len(s) && s[r.pos] == '"' {
			f = r.quoted(s)
		} else {
			i := r.pos
			for i < len(s) && s[i] != ',' && s[i] != '\n' {
				i++
			}
			f = s[r.pos:i]
			if i < len(s) && s[i] == '\n' {
				f = strings.TrimSuffix(f, "\r")
			}
			r.pos = i
		}
		rec = append(rec, f)
		if r.pos >= len(s) {
			return rec
		}
		if s[r.pos] == '\n' {
			r.pos++
			r.line++
			return rec
		}
		r.pos++ // the comma
	}
}

// quoted reads a field that starts with a quote at r.pos and leaves r.pos
// at the comma or line break that follows it, or at the end.
func (r *reader) quoted(s string) string {
	r.pos++ // the opening quote
	start := r.pos
	r.buf = r.buf[:0]
	escaped := false
	value := func(seg string) string {
		if !escaped {
			return s[start : start+len(seg)]
		}
		r.buf = append(r.buf, seg...)
		return string(r.buf)
	}
	for {
		q := strings.IndexByte(s[r.pos:], '"')
		if q < 0 { // never closed: the field runs to the end
			seg := s[r.pos:]
			r.unclosed = true
			r.line += strings.Count(seg, "\n")
			r.pos = len(s)
			return value(seg)
		}
		seg := s[r.pos : r.pos+q]
		r.line += strings.Count(seg, "\n")
		after := r.pos + q + 1
		switch {
		case after < len(s) && s[after] == '"': // doubled: a literal quote
			r.buf = append(r.buf, seg...)
			r.buf = append(r.buf, '"')
			escaped = true
			r.pos = after + 1
			continue
		case after == len(s) || s[after] == ',' || s[after] == '\n':
			r.pos = after
			return value(seg)
		case s[after] == '\r' && after+1 < len(s) && s[after+1] == '\n':
			r.pos = after + 1
			return value(seg)
		}
		// A quote followed by anything else closes the quoting; the rest
		// of the field, quotes included, is literal (as Python reads it).
		r.buf = append(r.buf, seg...)
		tail := after
		for tail < len(s) && s[tail] != ',' && s[tail] != '\n' {
			tail++
		}
		t := s[after:tail]
		if tail < len(s) && s[tail] == '\n' {
			t = strings.TrimSuffix(t, "\r")
		}
		r.buf = append(r.buf, t...)
		r.pos = tail
		return string(r.buf)
	}
}

// Records reads a report's header and rows the way DecodeReport does
// (Python's csv rules, tolerant of Shadowserver's quoting), for tools and
// tests that compare a mapping's output with its source. Rows keep their
// own field count.
func Records(data []byte) (header []string, rows [][]string) {
	rd := newReader(data)
	rec, _, _, ok := rd.next()
	if !ok {
		return nil, nil
	}
	header = append([]string(nil), rec...)
	for {
		rec, _, _, ok := rd.next()
		if !ok {
			return header, rows
		}
		rows = append(rows, append([]string(nil), rec...))
	}
}
