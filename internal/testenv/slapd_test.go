package testenv

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestMain(m *testing.M) { Main(m) }

// TestSlapd checks the fixtures, in particular that memberOf was filled,
// which only happens when entries are added through the server.
func TestSlapd(t *testing.T) {
	e := Slapd(t)
	c := e.AdminConn(t)
	res, err := c.Search(goldap.NewSearchRequest(e.UserDN("alice"), goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"memberOf", "entryUUID"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Entries[0].GetAttributeValues("memberOf"); len(got) != 1 || got[0] != e.GroupDN("engineering") {
		t.Errorf("alice memberOf = %q, want [%s]", got, e.GroupDN("engineering"))
	}
	// The service account can search but cannot read passwords.
	svc, err := goldap.DialURL(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Bind(e.BindDN, e.BindPassword); err != nil {
		t.Fatal(err)
	}
	res, err = svc.Search(goldap.NewSearchRequest(e.UserBase, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, "(uid=alice)", []string{"userPassword", "cn"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("service search: %v, %d entries", err, len(res.Entries))
	}
	if pw := res.Entries[0].GetAttributeValue("userPassword"); pw != "" {
		t.Errorf("service account can read userPassword")
	}
}
