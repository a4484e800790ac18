package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/authtest"
	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/internal/testenv"
)

// Samba binds fixed ports, so test binaries that use it (this one and the
// HTTP-level tests in package server) take turns through a host lock that
// testenv.SambaAD takes.

func adConfig(e testenv.ADEnv) ldap.Config {
	return ldap.Config{
		Preset:       "ad",
		URLs:         []string{e.LDAPSURL},
		CAFile:       e.CAFile,
		BindDN:       e.BindDN,
		BindPassword: e.BindPassword,
		BaseDN:       e.BaseDN,
	}
}

func TestADConformance(t *testing.T) {
	e := testenv.SambaAD(t)
	for _, tc := range []struct {
		name  string
		cfg   func(ldap.Config) ldap.Config
		login string
	}{
		{"LDAPS/sAMAccountName", func(c ldap.Config) ldap.Config { return c }, "alice"},
		{"LDAPS/userPrincipalName", func(c ldap.Config) ldap.Config { return c }, "alice@" + e.Realm},
		{"StartTLS/sAMAccountName", func(c ldap.Config) ldap.Config {
			c.URLs, c.StartTLS = []string{e.URL}, true
			return c
		}, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(adConfig(e))
			authtest.Run(t, func(t *testing.T) (auth.Authenticator, authtest.Fixtures) {
				return newProvider(t, cfg), authtest.Fixtures{
					Login: tc.login, Password: e.Password("alice"), Username: "alice",
					OtherLogin: "bob", OtherPassword: e.Password("bob"),
					Groups: []string{"engineering", "staff", "all"}, CaseInsensitive: true,
				}
			})
		})
	}
}

func TestADIdentity(t *testing.T) {
	e := testenv.SambaAD(t)
	p := newProvider(t, adConfig(e))
	ctx := context.Background()
	id, err := p.Authenticate(ctx, "alice@"+e.Realm, e.Password("alice"))
	if err != nil {
		t.Fatal(err)
	}
	// Three levels through in-chain: alice ∈ engineering ⊂ staff ⊂ all.
	if want := []string{"all", "engineering", "staff"}; !slices.Equal(id.Groups, want) {
		t.Errorf("Groups = %q, want %q", id.Groups, want)
	}
	if id.Username != "alice" || id.Email != "alice@example.test" || len(id.ExternalID) != 36 {
		t.Errorf("identity = %+v", id)
	}
	// The same groups through the breadth-first search mode.
	cfg := adConfig(e)
	cfg.GroupMembership = ldap.Search
	got, err := newProvider(t, cfg).Groups(ctx, e.DN(t, "alice"))
	if err != nil || !slices.Equal(got, id.Groups) {
		t.Errorf("Search-mode Groups = %q, %v; want %q", got, err, id.Groups)
	}
}

func TestADDisabled(t *testing.T) {
	e := testenv.SambaAD(t)
	p := newProvider(t, adConfig(e))
	_, err := p.Authenticate(context.Background(), "dave", e.Password("dave"))
	if !errors.Is(err, auth.ErrDisabled) || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("Authenticate(disabled dave) = %v, want ErrDisabled saying so", err)
	}
	// Without the right password the account's state is not revealed.
	_, err = p.Authenticate(context.Background(), "dave", "wrong-"+e.Password("dave"))
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("Authenticate(disabled dave, wrong password) = %v, want ErrInvalidCredentials", err)
	}
	users, err := p.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range users {
		if u.Username == "dave" {
			found = true
			if !u.Disabled {
				t.Errorf("ListUsers: dave not Disabled")
			}
		} else if u.Disabled && u.Username == "alice" {
			t.Errorf("ListUsers: alice Disabled")
		}
	}
	if !found {
		t.Errorf("ListUsers did not list dave")
	}
}

func TestADLocked(t *testing.T) {
	e := testenv.SambaAD(t)
	if e.Locked == "" {
		testenv.Unavailable(t, "a locked-out account in the directory", errors.New("the directory has no locked-out user"))
	}
	p := newProvider(t, adConfig(e))
	_, err := p.Authenticate(context.Background(), e.Locked, e.Password(e.Locked))
	if !errors.Is(err, auth.ErrLocked) {
		t.Errorf("Authenticate(locked %s) = %v, want ErrLocked", e.Locked, err)
	}
}

func TestADMembershipChange(t *testing.T) {
	e := testenv.SambaAD(t)
	p := newProvider(t, adConfig(e))
	ctx := context.Background()
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	bob := e.DN(t, "bob")
	leaf := e.CreateGroup(t, "chg-leaf-"+suffix, bob)
	e.CreateGroup(t, "chg-top-"+suffix, leaf)
	has := func(gs []string) bool {
		return slices.Contains(gs, "chg-leaf-"+suffix) || slices.Contains(gs, "chg-top-"+suffix)
	}

	id, err := p.Authenticate(ctx, "bob", e.Password("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(id.Groups, "chg-top-"+suffix) {
		t.Fatalf("before: groups = %q, want chg-top-%s", id.Groups, suffix)
	}
	e.RemoveMember(t, leaf, bob)
	if got, err := p.Groups(ctx, bob); err != nil || has(got) {
		t.Errorf("after removal: Groups(bob) = %q, %v", got, err)
	}
	users, err := p.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Username == "bob" && has(u.Groups) {
			t.Errorf("sync after removal: bob groups = %q", u.Groups)
		}
		if u.Username == "alice" && !slices.Contains(u.Groups, "all") {
			t.Errorf("sync: alice groups = %q, want all (3 levels)", u.Groups)
		}
	}
}
