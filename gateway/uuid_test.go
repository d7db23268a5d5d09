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

func TestFormatUUIDRoundTrip(t *testing.T) {
	const s = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	u, ok := ParseUUID("6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
	if !ok {
		t.Fatal("upper-case form does not parse")
	}
	if got := FormatUUID(u); got != s {
		t.Errorf("FormatUUID = %s, want %s", got, s)
	}
	if got := string(AppendUUID([]byte("id:"), u)); got != "id:"+s {
		t.Errorf("AppendUUID = %s, want id:%s", got, s)
	}
}
