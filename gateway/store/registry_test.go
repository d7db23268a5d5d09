package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/schakel/schakel/gateway"
)

func TestConstituentRegistry(t *testing.T) {
	s, _, _ := newStore(t)
	version := func() int64 {
		t.Helper()
		v, err := s.RegistryVersion(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(); v != 0 {
		t.Fatalf("empty registry version %d", v)
	}

	utrecht := gateway.Constituent{
		ID: "gemeente-utrecht", Name: "Gemeente Utrecht", Sectors: []string{"government"},
		Assets:   gateway.Assets{ASNs: []int64{64500}, Prefixes: []string{"192.0.2.0/24"}, Domains: []string{"utrecht.nl"}},
		Contacts: []gateway.Contact{{Email: "csirt@utrecht.example", Red: true}},
	}
	created, err := s.PutConstituent(ctx(t), utrecht)
	if err != nil || !created {
		t.Fatalf("first put: created %v, %v", created, err)
	}
	utrecht.Name = "Gemeente Utrecht (CSIRT)"
	created, err = s.PutConstituent(ctx(t), utrecht)
	if err != nil || created {
		t.Fatalf("second put: created %v, %v", created, err)
	}
	if v := version(); v != 2 {
		t.Errorf("version after two puts %d, want 2", v)
	}
	got, err := s.Constituent(ctx(t), "gemeente-utrecht")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != utrecht.Name || got.Assets.Prefixes[0] != "192.0.2.0/24" || !got.Contacts[0].Red {
		t.Errorf("read back %+v", got)
	}

	if _, err := s.PutConstituent(ctx(t), gateway.Constituent{ID: "amsterdam", Name: "Amsterdam"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Constituents(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "amsterdam" || all[1].ID != "gemeente-utrecht" {
		t.Errorf("Constituents = %v, want amsterdam, gemeente-utrecht", all)
	}

	if err := s.DeleteConstituent(ctx(t), "amsterdam"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Constituent(ctx(t), "amsterdam"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("deleted constituent: %v, want ErrNotFound", err)
	}
	if v := version(); v != 4 {
		t.Errorf("version after delete %d, want 4", v)
	}
	if err := s.DeleteConstituent(ctx(t), "amsterdam"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if v := version(); v != 4 {
		t.Errorf("a failed delete bumped the version to %d", v)
	}

	var v *gateway.ValidationError
	if _, err := s.PutConstituent(ctx(t), gateway.Constituent{Name: "no id"}); !errors.As(err, &v) || v.Fields[0].Field != "/id" {
		t.Errorf("put without id: %v", err)
	}
}

func TestDeleteConstituentRevokesKeys(t *testing.T) {
	s, _, _ := newStore(t)
	for _, id := range []string{"a", "b"} {
		if _, err := s.PutConstituent(ctx(t), gateway.Constituent{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	keyA, err := s.CreateKey(ctx(t), Scope{Role: RoleConstituent, Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	keyB, _ := s.CreateKey(ctx(t), Scope{Role: RoleConstituent, Name: "b"})
	if _, err := s.Authenticate(ctx(t), keyA); err != nil {
		t.Fatal(err) // now cached
	}
	if err := s.DeleteConstituent(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx(t), keyA); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("key of deleted constituent: %v, want ErrNotFound", err)
	}
	if sc, err := s.Authenticate(ctx(t), keyB); err != nil || sc.Name != "b" {
		t.Errorf("other constituent's key: %v, %v", sc, err)
	}
	if _, err := s.CreateKey(ctx(t), Scope{Role: RoleConstituent, Name: "a"}); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("key for deleted constituent: %v, want ErrNotFound", err)
	}
}

func TestPutConstituents(t *testing.T) {
	s, _, _ := newStore(t)
	cs := make([]gateway.Constituent, 2*importChunk*importFlush+7)
	for i := range cs {
		cs[i] = gateway.Constituent{ID: fmt.Sprintf("c%05d", i), Name: fmt.Sprintf("Org %d", i)}
	}
	if err := s.PutConstituents(ctx(t), cs); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.RegistryVersion(ctx(t)); v != 1 {
		t.Errorf("version after import %d, want 1", v)
	}
	all, err := s.Constituents(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(cs) || all[len(all)-1].Name != cs[len(cs)-1].Name {
		t.Errorf("imported %d, read back %d", len(cs), len(all))
	}

	bad := []gateway.Constituent{{ID: "x"}, {ID: ""}, {ID: "x"}}
	err = s.PutConstituents(ctx(t), bad)
	var v *gateway.ValidationError
	if !errors.As(err, &v) || len(v.Fields) != 2 || v.Fields[0].Field != "/1/id" || v.Fields[1].Field != "/2/id" {
		t.Fatalf("bad import error = %v", err)
	}
	if _, err := s.Constituent(ctx(t), "x"); !errors.Is(err, gateway.ErrNotFound) {
		t.Error("a rejected import wrote entries")
	}
	if v, _ := s.RegistryVersion(ctx(t)); v != 1 {
		t.Errorf("a rejected import bumped the version to %d", v)
	}
}
