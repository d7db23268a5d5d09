package csv

import (
	stdcsv "encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

type readRec struct {
	line   int
	cut    bool
	fields []string
}

func readAll(in string, want int) []readRec {
	r := newReader([]byte(in))
	r.want = want
	var out []readRec
	for {
		rec, line, cut, ok := r.next()
		if !ok {
			return out
		}
		out = append(out, readRec{line, cut, slices.Clone(rec)})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
		out  []readRec
	}{
		{name: "plain", in: "a,b\n1,2\n", out: []readRec{{1, false, []string{"a", "b"}}, {2, false, []string{"1", "2"}}}},
		{name: "no final newline, CRLF, empty lines", in: "a,b\r\n\r\n\n1,2", out: []readRec{{1, false, []string{"a", "b"}}, {4, false, []string{"1", "2"}}}},
		{name: "quoted comma and doubled quotes", in: `"x,y","say ""hi""",""` + "\n", out: []readRec{{1, false, []string{"x,y", `say "hi"`, ""}}}},
		{name: "empty fields", in: ",,\n", out: []readRec{{1, false, []string{"", "", ""}}}},
		{name: "byte-order mark", in: "\uFEFFip,port\n", out: []readRec{{1, false, []string{"ip", "port"}}}},
		{name: "quote inside an unquoted field is literal", in: `a"b,c` + "\n", out: []readRec{{1, false, []string{`a"b`, "c"}}}},
		{
			// Shadowserver's scan_http_vulnerable: read as Python's csv does.
			name: "backslash before doubled quotes",
			in:   `1,"Basic realm=\"\"OpenWebif\"\"",x` + "\n",
			out:  []readRec{{1, false, []string{"1", `Basic realm=\\"OpenWebif\"\""`, "x"}}},
		},
		{name: "quoted field with CRLF end", in: "\"a\"\r\n\"b\"\r\n", out: []readRec{{1, false, []string{"a"}}, {2, false, []string{"b"}}}},
		{
			name: "line break inside quotes with the right field count",
			in:   "a,b\n\"two\nlines\",2\nx,y\n", want: 2,
			out: []readRec{{1, false, []string{"a", "b"}}, {2, false, []string{"two\nlines", "2"}}, {4, false, []string{"x", "y"}}},
		},
		{
			name: "a stray quote costs one row",
			in:   "a,b,c\n1,\"oops,3\n4,5,6\n7,8,9\n", want: 3,
			out: []readRec{{1, false, []string{"a", "b", "c"}}, {2, true, []string{"1", "oops,3"}}, {3, false, []string{"4", "5", "6"}}, {4, false, []string{"7", "8", "9"}}},
		},
		{
			name: "an unclosed quote in the last field does not swallow the file",
			in:   "a,b\n1,\"oops\n3,4\n5,6\n", want: 2,
			out: []readRec{{1, false, []string{"a", "b"}}, {2, true, []string{"1", "oops"}}, {3, false, []string{"3", "4"}}, {4, false, []string{"5", "6"}}},
		},
		{
			name: "cut line with CRLF",
			in:   "a,b\r\n1,\"oops\r\n3,4\r\n", want: 2,
			out: []readRec{{1, false, []string{"a", "b"}}, {2, true, []string{"1", "oops"}}, {3, false, []string{"3", "4"}}},
		},
		{name: "unclosed quote at the end", in: "a,\"b", out: []readRec{{1, false, []string{"a", "b"}}}},
		{name: "doubled quotes after a backslash", in: `"a\""b"`, out: []readRec{{1, false, []string{`a\"b`}}}},
		{name: "quote closed then text", in: `"ab"cd,e`, out: []readRec{{1, false, []string{"abcd", "e"}}}},
		{name: "only empty lines", in: "\n\r\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(tt.in, tt.want)
			if len(got) != len(tt.out) {
				t.Fatalf("got %+v, want %+v", got, tt.out)
			}
			for i := range got {
				if got[i].line != tt.out[i].line || got[i].cut != tt.out[i].cut || !slices.Equal(got[i].fields, tt.out[i].fields) {
					t.Errorf("record %d: got %+v, want %+v", i, got[i], tt.out[i])
				}
			}
		})
	}
}

// FuzzReader: on any input encoding/csv reads without complaint, reader
// gives the same records. (Carriage returns are left out: encoding/csv
// rewrites \r\n inside quoted fields.) On other input it must not panic.
func FuzzReader(f *testing.F) {
	f.Add("a,b\n1,2\n")
	f.Add("\"x,y\",\"say \"\"hi\"\"\"\n\n,\n")
	f.Add("a,\"b\nc\",d")
	f.Add(`1,"Basic realm=\""OpenWebif\""",x`)
	f.Fuzz(func(t *testing.T, in string) {
		got := readAll(in, 0)
		if strings.Contains(in, "\r") {
			return
		}
		std := stdcsv.NewReader(strings.NewReader(in))
		std.FieldsPerRecord = -1
		var want [][]string
		for {
			rec, err := std.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return // not well-formed CSV: only "no panic" applies
			}
			want = append(want, rec)
		}
		if len(got) != len(want) {
			t.Fatalf("%d records, encoding/csv reads %d: %+v vs %q", len(got), len(want), got, want)
		}
		for i := range got {
			if !slices.Equal(got[i].fields, want[i]) {
				t.Fatalf("record %d: %q, encoding/csv reads %q", i, got[i].fields, want[i])
			}
		}
	})
}
