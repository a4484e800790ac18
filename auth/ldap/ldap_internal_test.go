package ldap

import (
	"errors"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/veloxhq/velox/auth"
)

func TestExternalID(t *testing.T) {
	// objectGUID bytes as AD sends them for {b9e8e9d0-2f1c-4b6a-8d3e-0123456789ab}:
	// the first three fields are little-endian.
	raw := []byte{0xd0, 0xe9, 0xe8, 0xb9, 0x1c, 0x2f, 0x6a, 0x4b, 0x8d, 0x3e, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab}
	for _, tc := range []struct {
		attr string
		raw  []byte
		want string
	}{
		{"objectGUID", raw, "b9e8e9d0-2f1c-4b6a-8d3e-0123456789ab"},
		{"objectguid", raw, "b9e8e9d0-2f1c-4b6a-8d3e-0123456789ab"},
		{"entryUUID", []byte("5c1f0d44-1b5a-103f-9b43-9f1a2c3d4e5f"), "5c1f0d44-1b5a-103f-9b43-9f1a2c3d4e5f"},
		{"objectSid", []byte{1, 5, 0xff}, "0105ff"}, // binary, not UTF-8: hex
		{"entryUUID", nil, ""},
	} {
		if got := externalID(tc.attr, tc.raw); got != tc.want {
			t.Errorf("externalID(%s, % x) = %q, want %q", tc.attr, tc.raw, got, tc.want)
		}
	}
}

func TestDNKey(t *testing.T) {
	// Servers echo DNs with different case and spacing.
	same := [][2]string{
		{"CN=Alice Liddell (R&D),CN=Users,DC=example,DC=test", "cn=alice liddell (r&d), cn=users, dc=example, dc=test"},
		{`cn=R&D (West)\, EU,ou=groups,dc=example,dc=test`, `CN=r&d (west)\2C eu,OU=Groups,DC=Example,DC=Test`},
	}
	for _, p := range same {
		if dnKey(p[0]) != dnKey(p[1]) {
			t.Errorf("dnKey(%q) = %q != dnKey(%q) = %q", p[0], dnKey(p[0]), p[1], dnKey(p[1]))
		}
	}
	if dnKey("cn=a,dc=x") == dnKey("cn=b,dc=x") {
		t.Errorf("different DNs share a key")
	}
}

func TestUserFilter(t *testing.T) {
	p, err := New(Config{Preset: "ad", URLs: []string{"ldaps://dc"}, BindDN: "x", BindPassword: "y", BaseDN: "DC=x"})
	if err != nil {
		t.Fatal(err)
	}
	got := p.userFilter("a*)(b\\")
	want := `(&(&(objectCategory=person)(objectClass=user))(|(sAMAccountName=a\2a\29\28b\5c)(userPrincipalName=a\2a\29\28b\5c)))`
	if got != want {
		t.Errorf("userFilter = %s, want %s", got, want)
	}
	if _, err := goldap.CompileFilter(got); err != nil {
		t.Errorf("userFilter does not compile: %v", err)
	}
}

func TestCheckUsername(t *testing.T) {
	for _, u := range []string{"", "a\x00b", "tab\there", "\xff", string(make([]byte, maxUsernameLen+1))} {
		if err := checkUsername(u); !errors.Is(err, auth.ErrUnknownUser) {
			t.Errorf("checkUsername(%q) = %v, want ErrUnknownUser", u, err)
		}
	}
	for _, u := range []string{"alice", "alice@example.test", "o'brien", "zoë", "a*b"} {
		if err := checkUsername(u); err != nil {
			t.Errorf("checkUsername(%q) = %v", u, err)
		}
	}
}

func TestADDataCode(t *testing.T) {
	msg := "LDAP Result Code 49 \"Invalid Credentials\": 80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 775, v1db1"
	if m := adDataCode.FindStringSubmatch(msg); m == nil || m[1] != "775" {
		t.Errorf("adDataCode on %q = %q", msg, m)
	}
}

func TestPresets(t *testing.T) {
	for name, membership := range map[string]Membership{"ad": InChain, "openldap": Search, "OpenLDAP": Search} {
		c, err := Config{Preset: name, URLs: []string{"ldaps://h"}, BindDN: "x", BindPassword: "y", BaseDN: "dc=x"}.withDefaults()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.GroupMembership != membership || c.UserBase != "dc=x" || c.GroupBase != "dc=x" || c.UsernameAttr == "" {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// Explicit fields win over the preset.
	c, _ := Config{Preset: "ad", URLs: []string{"ldaps://h"}, BindDN: "x", BindPassword: "y", BaseDN: "dc=x",
		LoginAttributes: []string{"mail"}, GroupMembership: Search}.withDefaults()
	if c.UsernameAttr != "mail" || c.GroupMembership != Search {
		t.Errorf("overrides lost: %+v", c)
	}
}
