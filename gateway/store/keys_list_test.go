package store

import (
	"testing"
	"time"
)

func TestListKeysFiltersAndNeverShowsKeys(t *testing.T) {
	s, _, clk := newStore(t)
	ctx := t.Context()
	issued := map[string]Scope{}
	for _, sc := range []Scope{{Role: RoleSource, Name: "p"}, {Role: RoleSource, Name: "q"}, {Role: RoleAdmin}, {Role: RoleSource, Name: "p"}} {
		k, err := s.CreateKey(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		issued[k] = sc
		clk.Add(time.Second)
	}
	tests := []struct {
		role Role
		name string
		want int
	}{
		{"", "", 4},
		{RoleSource, "", 3},
		{RoleSource, "p", 2},
		{"", "q", 1},
		{RoleAdmin, "", 1},
		{RoleConstituent, "", 0},
	}
	for _, tc := range tests {
		got, err := s.ListKeys(ctx, tc.role, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("ListKeys(%q, %q) = %d keys, want %d", tc.role, tc.name, len(got), tc.want)
		}
		for i, k := range got {
			if len(k.Hash) != 12 {
				t.Errorf("hash %q is not the 12-digit prefix", k.Hash)
			}
			if i > 0 && k.Created.Before(got[i-1].Created) {
				t.Errorf("not oldest first: %v", got)
			}
		}
	}
	// Revoking by the listed hash removes exactly that key.
	all, _ := s.ListKeys(ctx, RoleSource, "p")
	if err := s.RevokeKey(ctx, all[0].Hash); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.ListKeys(ctx, "", ""); len(left) != 3 {
		t.Errorf("after revoke %d keys, want 3", len(left))
	}
	for k, sc := range issued {
		_, err := s.Authenticate(ctx, k)
		if revoked := KeyHash(k) == all[0].Hash; revoked != (err != nil) {
			t.Errorf("key of %v revoked=%v but Authenticate err=%v", sc, revoked, err)
		}
	}
}
