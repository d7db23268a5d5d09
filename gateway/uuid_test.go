package gateway

import "testing"

func TestUUIDv5(t *testing.T) {
	// RFC 9562 appendix A.4: name "www.example.com" in the DNS namespace.
	dns, ok := ParseUUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if !ok {
		t.Fatal("namespace does not parse")
	}
	if got, want := UUIDv5(dns, "www.example.com"), "2ed6657d-e927-568b-95e1-2665a8aea6a2"; got != want {
		t.Fatalf("UUIDv5 = %s, want %s", got, want)
	}
	for _, bad := range []string{"", "6ba7b810-9dad-11d1-80b4-00c04fd430c", "6ba7b810x9dad-11d1-80b4-00c04fd430c8", "zba7b810-9dad-11d1-80b4-00c04fd430c8"} {
		if _, ok := ParseUUID(bad); ok {
			t.Errorf("ParseUUID(%q) accepted", bad)
		}
	}
}
