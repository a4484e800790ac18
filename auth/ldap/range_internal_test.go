package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/veloxhq/velox/internal/testenv"
)

// TestRangedValues checks the incremental retrieval Active Directory
// forces on groups with more than 1,500 members, by asking Samba for a
// small first range the way AD would cut a large one.
func TestRangedValues(t *testing.T) {
	e := testenv.SambaAD(t)
	var members []string
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		members = append(members, e.DN(t, u))
	}
	name := fmt.Sprint("ranged-", time.Now().UnixNano()%1e9)
	dn := e.CreateGroup(t, name, members...)
	p, err := New(Config{Preset: "ad", URLs: []string{e.LDAPSURL}, CAFile: e.CAFile,
		BindDN: e.BindDN, BindPassword: e.BindPassword, BaseDN: e.BaseDN})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var got []string
	var first string
	err = p.withConn(context.Background(), func(c *goldap.Conn) error {
		res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"member;range=0-1"}, nil))
		if err != nil {
			return err
		}
		first = res.Entries[0].Attributes[0].Name
		got, err = p.values(c, res.Entries[0], "member")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, "member;range=0-1") {
		t.Fatalf("server answered with %q, not a ranged attribute", first)
	}
	slices.Sort(got)
	want := slices.Clone(members)
	slices.Sort(want)
	if !slices.EqualFunc(got, want, strings.EqualFold) {
		t.Errorf("values = %q, want %q", got, want)
	}
}
