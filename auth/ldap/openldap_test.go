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

func TestMain(m *testing.M) { testenv.Main(m) }

// openldapConfig is the configuration an administrator would write for
// the test directory: the preset plus the essentials.
func openldapConfig(e testenv.SlapdEnv) ldap.Config {
	return ldap.Config{
		Preset:       "openldap",
		URLs:         []string{e.URL},
		StartTLS:     true,
		CAFile:       e.CAFile,
		BindDN:       e.BindDN,
		BindPassword: e.BindPassword,
		BaseDN:       e.BaseDN,
		UserBase:     e.UserBase,
		GroupBase:    e.GroupBase,
	}
}

func newProvider(t testing.TB, cfg ldap.Config) *ldap.Provider {
	t.Helper()
	p, err := ldap.New(cfg)
	if err != nil {
		t.Fatalf("ldap.New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestOpenLDAPConformance(t *testing.T) {
	e := testenv.Slapd(t)
	for _, tc := range []struct {
		name   string
		cfg    func(ldap.Config) ldap.Config
		login  string
		groups []string
	}{
		{"StartTLS/uid", func(c ldap.Config) ldap.Config { return c }, "alice", []string{"engineering", "staff", "all"}},
		{"LDAPS/uid", func(c ldap.Config) ldap.Config {
			c.URLs, c.StartTLS = []string{e.LDAPSURL}, false
			return c
		}, "alice", []string{"engineering", "staff", "all"}},
		{"LDAPS/mail", func(c ldap.Config) ldap.Config {
			c.URLs, c.StartTLS = []string{e.LDAPSURL}, false
			c.LoginAttributes = []string{"uid", "mail"}
			return c
		}, "alice@example.test", []string{"engineering", "staff", "all"}},
		{"StartTLS/escapedGroupDN", func(c ldap.Config) ldap.Config { return c }, "carol", []string{"managers", "R&D (West), EU", "all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(openldapConfig(e))
			authtest.Run(t, func(t *testing.T) (auth.Authenticator, authtest.Fixtures) {
				uid, _, _ := strings.Cut(tc.login, "@")
				other := "bob"
				return newProvider(t, cfg), authtest.Fixtures{
					Login: tc.login, Password: e.Password(uid), Username: uid,
					OtherLogin: other, OtherPassword: e.Password(other),
					Groups: tc.groups, CaseInsensitive: true,
				}
			})
		})
	}
}

func TestOpenLDAPIdentity(t *testing.T) {
	e := testenv.Slapd(t)
	p := newProvider(t, openldapConfig(e))
	id, err := p.Authenticate(context.Background(), "alice", e.Password("alice"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"all", "engineering", "staff"} // 3 levels, sorted
	if !slices.Equal(id.Groups, want) {
		t.Errorf("Groups = %q, want %q", id.Groups, want)
	}
	if id.Provider != "ldap" || id.DisplayName != "Alice Liddell" || id.Email != "alice@example.test" {
		t.Errorf("identity = %+v", id)
	}
	if len(id.ExternalID) != 36 { // entryUUID
		t.Errorf("ExternalID = %q, want an entryUUID", id.ExternalID)
	}
}

// TestOpenLDAPGroupLoop checks that a membership cycle ends.
func TestOpenLDAPGroupLoop(t *testing.T) {
	e := testenv.Slapd(t)
	p := newProvider(t, openldapConfig(e))
	got, err := p.Groups(context.Background(), e.UserDN("frank"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"loop-a", "loop-b"}; !slices.Equal(got, want) {
		t.Errorf("Groups(frank) = %q, want %q", got, want)
	}
}

func TestOpenLDAPLocked(t *testing.T) {
	e := testenv.Slapd(t)
	if !e.Locking {
		testenv.Unavailable(t, "slapd with the ppolicy overlay", errors.New("this slapd cannot lock accounts"))
	}
	p := newProvider(t, openldapConfig(e))
	_, err := p.Authenticate(context.Background(), "dave", e.Password("dave"))
	if !errors.Is(err, auth.ErrLocked) {
		t.Errorf("Authenticate(locked dave) = %v, want ErrLocked", err)
	}
	users, err := p.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Locked != (u.Username == "dave") {
			t.Errorf("ListUsers: %s Locked = %v", u.Username, u.Locked)
		}
	}
}

// TestOpenLDAPMembershipChange: a user removed from a group in the
// directory loses the group (and the groups it implied) at the next
// resolution, through both Groups and the sync.
func TestOpenLDAPMembershipChange(t *testing.T) {
	e := testenv.Slapd(t)
	p := newProvider(t, openldapConfig(e))
	ctx := context.Background()
	suffix := fmt.Sprint(time.Now().UnixNano())
	leaf, top := "chg-leaf-"+suffix, "chg-top-"+suffix
	leafDN := e.CreateGroup(t, leaf, e.UserDN("bob"), e.UserDN("carol"))
	e.CreateGroup(t, top, leafDN)

	has := func(groups []string, g string) bool { return slices.Contains(groups, g) }
	got, err := p.Groups(ctx, e.UserDN("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if !has(got, leaf) || !has(got, top) {
		t.Fatalf("before: Groups(bob) = %q, want %s and %s", got, leaf, top)
	}

	e.RemoveMember(t, leaf, e.UserDN("bob"))
	got, err = p.Groups(ctx, e.UserDN("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if has(got, leaf) || has(got, top) {
		t.Errorf("after removal: Groups(bob) = %q, still has %s or %s", got, leaf, top)
	}
	id, err := p.Authenticate(ctx, "bob", e.Password("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if has(id.Groups, leaf) {
		t.Errorf("after removal: login groups = %q", id.Groups)
	}
	users, err := p.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		switch u.Username {
		case "bob":
			if has(u.Groups, leaf) || has(u.Groups, top) {
				t.Errorf("sync after removal: bob groups = %q", u.Groups)
			}
		case "carol":
			if !has(u.Groups, leaf) || !has(u.Groups, top) {
				t.Errorf("sync: carol groups = %q, want %s and %s", u.Groups, leaf, top)
			}
		}
	}

	e.AddMember(t, leaf, e.UserDN("bob"))
	if got, err = p.Groups(ctx, e.UserDN("bob")); err != nil || !has(got, top) {
		t.Errorf("after re-adding: Groups(bob) = %q, %v; want %s", got, err, top)
	}
}

// TestSyncUsers checks the sync sees every fixture user with the same
// groups a login reports, and a user deleted from the directory vanishes.
func TestSyncUsers(t *testing.T) {
	e := testenv.Slapd(t)
	p := newProvider(t, openldapConfig(e))
	ctx := context.Background()
	byName := map[string]ldap.DirectoryUser{}
	err := p.SyncUsers(ctx, func(u ldap.DirectoryUser) error {
		byName[u.Username] = u
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"alice", "bob", "carol"} {
		u, ok := byName[uid]
		if !ok {
			t.Fatalf("SyncUsers did not report %s", uid)
		}
		id, err := p.Authenticate(ctx, uid, e.Password(uid))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(u.Groups, id.Groups) || u.ExternalID != id.ExternalID || u.DN != e.UserDN(uid) {
			t.Errorf("sync %s = %+v, login = %+v", uid, u, id)
		}
	}

	// A user that leaves the directory is no longer reported.
	uid := "gone-" + fmt.Sprint(time.Now().UnixNano())
	e.AddUser(t, uid)
	if _, err := p.Lookup(ctx, uid); err != nil {
		t.Fatalf("Lookup(new user): %v", err)
	}
	e.DeleteUser(t, uid)
	users, err := p.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Username == uid {
			t.Errorf("deleted user %s still listed", uid)
		}
	}
	if _, err := p.Lookup(ctx, uid); !errors.Is(err, auth.ErrUnknownUser) {
		t.Errorf("Lookup(deleted user) = %v, want ErrUnknownUser", err)
	}
}

// TestTLSVerification: without the test CA the server certificate is
// refused, and the failure is an outage, not a bad password.
func TestTLSVerification(t *testing.T) {
	e := testenv.Slapd(t)
	cfg := openldapConfig(e)
	cfg.CAFile = ""
	p := newProvider(t, cfg)
	_, err := p.Authenticate(context.Background(), "alice", e.Password("alice"))
	if !errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Authenticate with untrusted server cert = %v, want ErrUnavailable about the certificate", err)
	}
	cfg.InsecureSkipVerify = true
	p = newProvider(t, cfg)
	if _, err := p.Authenticate(context.Background(), "alice", e.Password("alice")); err != nil {
		t.Errorf("InsecureSkipVerify: %v", err)
	}
}

func TestWrongServiceAccount(t *testing.T) {
	e := testenv.Slapd(t)
	cfg := openldapConfig(e)
	cfg.BindPassword = "wrong"
	p := newProvider(t, cfg)
	_, err := p.Authenticate(context.Background(), "alice", e.Password("alice"))
	if !errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), "service bind") {
		t.Errorf("Authenticate with a bad service password = %v, want ErrUnavailable naming the service bind", err)
	}
}
