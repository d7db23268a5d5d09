package gateway

import "testing"

func TestParseTLP(t *testing.T) {
	tests := []struct {
		in     string
		want   TLP
		legacy bool
		ok     bool
	}{
		{"CLEAR", TLPClear, false, true},
		{"WHITE", TLPClear, true, true},
		{"tlp:white", TLPClear, true, true},
		{"TLP: AMBER", TLPAmber, false, true},
		{"tlp:amber+strict", TLPAmberStrict, false, true},
		{"amber strict", TLPAmberStrict, false, true},
		{"Red", TLPRed, false, true},
		{"YELLOW", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		got, legacy, err := ParseTLP(tt.in)
		if (err == nil) != tt.ok || got != tt.want || legacy != tt.legacy {
			t.Errorf("ParseTLP(%q) = %q, %v, %v", tt.in, got, legacy, err)
		}
	}
}

func TestStricter(t *testing.T) {
	tests := []struct{ a, b, want TLP }{
		{TLPClear, TLPRed, TLPRed},
		{TLPAmberStrict, TLPAmber, TLPAmberStrict},
		{TLPGreen, "PURPLE", "PURPLE"}, // unknown never loosens
		{"", TLPGreen, TLPGreen},
		{TLPAmber, "", TLPAmber},
	}
	for _, tt := range tests {
		if got := Stricter(tt.a, tt.b); got != tt.want {
			t.Errorf("Stricter(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}
