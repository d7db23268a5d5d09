package normalize

import "testing"

func TestRefang(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hxxp://evil.example/", "http://evil.example/"},
		{"hXXps://evil.example/", "https://evil.example/"},
		{"HXXP://evil.example/", "http://evil.example/"},
		{"hxxps[:]//evil[.]example(.)com/x", "https://evil.example.com/x"},
		{"hxxp[://]evil{.}example", "http://evil.example"},
		{"fxp://files.example", "ftp://files.example"},
		{"1.2.3[.]4", "1.2.3.4"},
		{"evil[dot]example(DOT)com{dot}nl", "evil.example.com.nl"},
		{"user[@]example[.]com", "user@example.com"},
		{"user(@)example.com", "user@example.com"},
		{"user [at] example [dot] com", "user@example.com"},
		{"user(AT)example.com", "user@example.com"},
		{"evil.example[/]path", "evil.example/path"},
		{"<https://example.org/>", "https://example.org/"},
		{`"evil.example"`, "evil.example"},
		{"'evil.example'", "evil.example"},
		{"`evil.example`", "evil.example"},
		{"\u201cevil.example\u201d", "evil.example"},
		{"< 'hxxp://a[.]b' >", "http://a.b"},
		{"  spaced  ", "spaced"},
		// Not defanged: left alone.
		{"http://example.org/a(b)c[d]", "http://example.org/a(b)c[d]"},
		{"report (1).pdf", "report (1).pdf"},
		{"hxxpfoo", "hxxpfoo"},
		{"my hxxp://x", "my hxxp://x"},
		{`"unbalanced`, `"unbalanced`},
		{"", ""},
		{"[", "["},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Refang(tt.in)
			if got != tt.want {
				t.Fatalf("Refang(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := Refang(got); again != got {
				t.Errorf("Refang is not idempotent: %q → %q", got, again)
			}
		})
	}
}
