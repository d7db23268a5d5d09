package normalize

import "testing"

func TestVisible(t *testing.T) {
	tests := []struct {
		in, want, wantText string
	}{
		{"plain title", "plain title", "plain title"},
		{"invoice\u202egnp.exe", `invoice\u202egnp.exe`, `invoice\u202egnp.exe`},
		{"a\u2066b\u2069c\u200e\u200fd\u061c", `a\u2066b\u2069c\u200e\u200fd\u061c`, `a\u2066b\u2069c\u200e\u200fd\u061c`},
		{"esc\x1b[31mred\x7f\u0085", `esc\u001b[31mred\u007f\u0085`, `esc\u001b[31mred\u007f\u0085`},
		{"line\nnext\ttab\r", `line\u000anext\u0009tab\u000d`, "line\nnext\ttab\r"},
		{"Grüße – € \u2028", `Grüße – € \u2028`, `Grüße – € \u2028`},
	}
	for _, tt := range tests {
		if got := Visible(tt.in); got != tt.want {
			t.Errorf("Visible(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := VisibleText(tt.in); got != tt.wantText {
			t.Errorf("VisibleText(%q) = %q, want %q", tt.in, got, tt.wantText)
		}
	}
}
