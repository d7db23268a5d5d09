package taxii

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/schakel/schakel/mappings/stix"
)

// FuzzParsePage feeds upstream answers to the poller's page reader: it
// must never panic, and what it accepts is objects it can hand on.
func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`{"more":true,"next":"abc","objects":[{"type":"indicator","id":"indicator--1"}]}`), "2026-11-20T09:00:00.123456Z")
	f.Add([]byte(`{"type":"bundle","id":"bundle--1","objects":[]}`), "Fri, 20 Nov 2026 09:00:03 GMT")
	f.Add([]byte(`{"more":"true","next":12}`), "2026-11-20 09:00:01.5")
	f.Add([]byte(``), "")
	f.Add([]byte(`{"objects":null,"next":null}`), "garbage")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		p, err := parsePage(body, header)
		if err != nil {
			return
		}
		for _, o := range p.Objects {
			if !json.Valid(o) {
				t.Fatalf("invalid object %q accepted", o)
			}
		}
		if p.More && p.Next == "" && p.AddedLast.IsZero() && len(body) == 0 {
			t.Fatal("more from nothing")
		}
	})
}

// FuzzQuery feeds query strings to the parameter parsing of the objects,
// manifest and object endpoints; a next the parser accepts must be one it
// could have issued.
func FuzzQuery(f *testing.F) {
	f.Add("limit=10&added_after=2026-11-20T09:00:00Z&match[type]=indicator,report&match[version]=first,last")
	f.Add("next=" + position{added: 1763629200000000, member: "e|2026-11-20T09:00:00Z", offset: 3}.encode())
	f.Add("match[version]=all,last&limit=0")
	f.Add("next=o.MQ&match[spec_version]=2.0")
	f.Add("added_after=2026-11-20T09:00:00%2B01:00&next=")
	f.Fuzz(func(t *testing.T, query string) {
		vals, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p := params{}
		for k, v := range vals {
			if len(v) > 0 {
				p[k] = v[0]
			}
		}
		q, err := p.pageQuery()
		if err == nil {
			if q.limit <= 0 || q.limit > MaxLimit {
				t.Fatalf("limit %d accepted", q.limit)
			}
			if q.from != nil {
				again, err := decodePosition(q.from.encode())
				if err != nil || again != *q.from {
					t.Fatalf("position %+v does not round-trip", q.from)
				}
			}
		}
		_, _ = p.match(false)
		_, _ = decodeOffset(p["next"])
	})
}

// FuzzTimestamp checks the lenient timestamp reader: what it accepts
// renders as a TAXII timestamp that reads back as the same microsecond.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"2026-11-20T09:00:00Z", "2026-11-20T09:00:00.5Z", "2026-11-20 09:00:00", "2026-11-20T10:00:00 01:00",
		"Fri, 20 Nov 2026 09:00:03 GMT", "0000-01-01T00:00:00Z", "2026-11-20T09:00:00.123456789+14:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		back, err := ParseTimestamp(Timestamp(ts))
		if err != nil || !back.Equal(ts.Truncate(time.Microsecond)) {
			t.Fatalf("%q → %s → %v, %v", s, Timestamp(ts), back, err)
		}
	})
}

// FuzzInboxStatus feeds posted bodies through the inbox's bookkeeping: no
// panic, and the status counts always add up.
func FuzzInboxStatus(f *testing.F) {
	f.Add([]byte(`{"objects":[{"type":"report","id":"report--1","object_refs":["indicator--2"]},{"type":"indicator","id":"indicator--2","pattern":"[ipv4-addr:value = '1.2.3.4']"}]}`))
	f.Add([]byte(`{"type":"indicator","id":"indicator--3","spec_version":"2.1","pattern":"[url:value = 'x']"}`))
	f.Add([]byte(`{"objects":[1,"x",{"no":"type"}]}`))
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"grouping","id":"grouping--a","object_refs":[]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		objs, err := readPosted(body)
		if err != nil {
			return
		}
		events, ferrs, err := stix.Decode(body)
		b := newBook(objs, "2026-11-20T09:00:00.000000Z")
		b.fieldErrors(ferrs)
		if err == nil {
			for _, ev := range events {
				b.eventFailed(ev, "x")
			}
		}
		st := b.status("id", "now")
		if st.SuccessCount+st.FailureCount != st.TotalCount || st.TotalCount != len(objs) {
			t.Fatalf("status counts %+v", st)
		}
	})
}
