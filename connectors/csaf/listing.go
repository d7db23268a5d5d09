package csaf

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
)

// entry is one advisory a provider lists: where it is, when it last
// changed, and where its sidecars are (empty: the conventional names
// <url>.sha256, <url>.sha512 and <url>.asc).
type entry struct {
	URL       string
	Updated   time.Time
	HashURLs  []string
	SigURL    string
	FeedTLP   gateway.TLP // the ROLIE feed's label; "" for directories and UNLABELED feeds
	ListedBy  string      // the feed or changes.csv URL, for reports
	rawUpdate string
}

// ParseTime reads the timestamps providers actually publish: RFC 3339 with
// any number of fraction digits, "Z" or a numeric offset ("+00:00",
// "+0000"), a space or lower-case "t" between date and time, and no zone at
// all (taken as UTC). NCSC's microseconds with "+00:00" and CISA's
// milliseconds with "Z" both parse.
func ParseTime(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return time.Time{}, errors.New("empty timestamp")
	}
	if len(v) > 10 && (v[10] == ' ' || v[10] == 't') {
		v = v[:10] + "T" + v[11:]
	}
	if strings.HasSuffix(v, "z") {
		v = v[:len(v)-1] + "Z"
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			if t.Year() < 1970 {
				// Year 1 is Go's zero time: a listing that says so is broken.
				return time.Time{}, fmt.Errorf("timestamp %q is before 1970", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339", s)
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseChanges reads a changes.csv: one "path,time" line per advisory, no
// header, quoted or not. Paths are resolved against dir. Lines that cannot
// be read are returned as problems ("line N: …") and skipped; the rest are
// listed.
func parseChanges(data []byte, dir *url.URL) ([]entry, []string) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	var out []entry
	var problems []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", line, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			break
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < 2 {
			problems = append(problems, fmt.Sprintf("line %d: want \"path,time\", got %d field(s)", line, len(rec)))
			continue
		}
		p := strings.TrimSpace(rec[0])
		t, err := ParseTime(rec[1])
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		u, err := dir.Parse(p)
		if err != nil || p == "" {
			problems = append(problems, fmt.Sprintf("line %d: path %q is not a URL path", line, p))
			continue
		}
		out = append(out, entry{URL: u.String(), Updated: t, rawUpdate: strings.TrimSpace(rec[1])})
	}
	return out, problems
}

// rolieFeed is the part of a ROLIE feed (RFC 8322, JSON form) the
// downloader reads.
type rolieFeed struct {
	Feed struct {
		Entry []rolieEntry `json:"entry"`
	} `json:"feed"`
}

type rolieEntry struct {
	ID      string      `json:"id"`
	Updated string      `json:"updated"`
	Link    []rolieLink `json:"link"`
	Content struct {
		Src string `json:"src"`
	} `json:"content"`
}

// rolieLink takes "rel" and, since CISA's feeds write "ref" for the hash
// and signature links, "ref" as its synonym.
type rolieLink struct {
	Rel  string `json:"rel"`
	Ref  string `json:"ref"`
	Href string `json:"href"`
}

func (l rolieLink) relation() string {
	if l.Rel != "" {
		return strings.ToLower(l.Rel)
	}
	return strings.ToLower(l.Ref)
}

// parseROLIE reads a ROLIE feed. Entries without a usable advisory link or
// timestamp are returned as problems and skipped.
func parseROLIE(data []byte, base *url.URL, tlp gateway.TLP) ([]entry, []string, error) {
	var f rolieFeed
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("feed: invalid JSON: %w", err)
	}
	var out []entry
	var problems []string
	for i, e := range f.Feed.Entry {
		where := fmt.Sprintf("/feed/entry/%d", i)
		var ent entry
		ent.FeedTLP = tlp
		for _, l := range e.Link {
			if l.Href == "" {
				continue
			}
			u, err := base.Parse(l.Href)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/link: %q is not a URL", where, l.Href))
				continue
			}
			switch l.relation() {
			case "self":
				ent.URL = u.String()
			case "hash":
				ent.HashURLs = append(ent.HashURLs, u.String())
			case "signature":
				ent.SigURL = u.String()
			}
		}
		if ent.URL == "" && e.Content.Src != "" {
			if u, err := base.Parse(e.Content.Src); err == nil {
				ent.URL = u.String()
			}
		}
		if ent.URL == "" {
			problems = append(problems, where+": no link with rel \"self\" and no content.src")
			continue
		}
		t, err := ParseTime(e.Updated)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s/updated: %v", where, err))
			continue
		}
		ent.Updated, ent.rawUpdate = t, e.Updated
		out = append(out, ent)
	}
	return out, problems, nil
}
