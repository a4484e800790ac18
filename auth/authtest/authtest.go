// Package authtest is a conformance suite for auth.Authenticator
// implementations: every provider (local users, OpenLDAP, Active
// Directory) must pass the same cases.
package authtest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/veloxhq/velox/auth"
)

// Fixtures describes the accounts an Authenticator under test knows.
type Fixtures struct {
	// Login is a name a valid user logs in with, Password its password,
	// and Username the auth.Identity.Username it must map to.
	Login, Password, Username string
	// Other is a second valid account; its password must not open Login.
	OtherLogin, OtherPassword string
	// Groups, if set, must all be in the identity's Groups (more may be).
	Groups []string
	// CaseInsensitive says login names match regardless of case (LDAP
	// attributes such as uid and sAMAccountName do). Then an upper-case
	// Login must authenticate as Username; otherwise it must not
	// authenticate at all.
	CaseInsensitive bool
}

// Run runs the conformance cases. newAuthenticator is called once per
// subtest and may share one backend between calls.
func Run(t *testing.T, newAuthenticator func(t *testing.T) (auth.Authenticator, Fixtures)) {
	ctx := context.Background()

	t.Run("RightPassword", func(t *testing.T) {
		a, f := newAuthenticator(t)
		id, err := a.Authenticate(ctx, f.Login, f.Password)
		if err != nil {
			t.Fatalf("Authenticate(%q, right password): %v", f.Login, err)
		}
		if id.Username != f.Username {
			t.Errorf("Username = %q, want %q", id.Username, f.Username)
		}
		if id.Provider == "" {
			t.Errorf("Provider is empty")
		}
		have := map[string]bool{}
		for _, g := range id.Groups {
			have[g] = true
		}
		for _, g := range f.Groups {
			if !have[g] {
				t.Errorf("Groups = %q, missing %q", id.Groups, g)
			}
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		a, f := newAuthenticator(t)
		for _, pw := range []string{f.Password + "x", strings.ToUpper(f.Password), f.OtherPassword, " "} {
			if pw == "" || pw == f.Password {
				continue
			}
			id, err := a.Authenticate(ctx, f.Login, pw)
			if !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("Authenticate(%q, wrong password %q) = %v, %v; want ErrInvalidCredentials", f.Login, pw, id, err)
			}
		}
	})

	t.Run("EmptyPassword", func(t *testing.T) {
		a, f := newAuthenticator(t)
		// An empty password must never reach an LDAP bind, where it
		// would be an unauthenticated bind that succeeds.
		for _, login := range []string{f.Login, f.OtherLogin, "nosuchuser"} {
			id, err := a.Authenticate(ctx, login, "")
			if !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("Authenticate(%q, \"\") = %v, %v; want ErrInvalidCredentials", login, id, err)
			}
		}
	})

	t.Run("UnknownUser", func(t *testing.T) {
		a, f := newAuthenticator(t)
		id, err := a.Authenticate(ctx, "nosuchuser-velox", f.Password)
		if !errors.Is(err, auth.ErrUnknownUser) {
			t.Errorf("Authenticate(unknown) = %v, %v; want ErrUnknownUser", id, err)
		}
	})

	t.Run("EmptyUsername", func(t *testing.T) {
		a, f := newAuthenticator(t)
		if id, err := a.Authenticate(ctx, "", f.Password); err == nil {
			t.Errorf("Authenticate(\"\") = %+v, want an error", id)
		}
	})

	t.Run("Injection", func(t *testing.T) {
		a, f := newAuthenticator(t)
		// None of these is a real login; each must fail, with any of
		// the passwords, and must not be taken for an outage.
		logins := []string{
			"*", "**", f.Login + "*", "*" + f.Login[1:], f.Login + ")(uid=*", "*)(|(uid=*",
			f.Login + ")(|(objectClass=*", "*)(objectClass=*", f.Login + "\\", "\\", "\\2a",
			f.Login + "\x00", f.Login + "\x00)(uid=*", "\x00", "(" + f.Login + ")",
			f.Login + "%", "*)(sAMAccountName=*", f.Login + ")(&)", "|", "&", "!",
			strings.Repeat("a", 5000), strings.Repeat("*", 300),
			f.Login + "\xff", // not UTF-8
		}
		for _, login := range logins {
			for _, pw := range []string{f.Password, f.OtherPassword, "*"} {
				id, err := a.Authenticate(ctx, login, pw)
				if err == nil {
					t.Errorf("Authenticate(%q, %q) authenticated %+v", login, pw, id)
					continue
				}
				if errors.Is(err, auth.ErrUnavailable) {
					t.Errorf("Authenticate(%q) = %v; an odd login must not look like an outage", login, err)
				}
			}
		}
	})

	t.Run("Case", func(t *testing.T) {
		a, f := newAuthenticator(t)
		upper := strings.ToUpper(f.Login)
		if upper == f.Login {
			t.Skip("login has no letters to change")
		}
		id, err := a.Authenticate(ctx, upper, f.Password)
		if f.CaseInsensitive {
			if err != nil {
				t.Fatalf("Authenticate(%q): %v; want the same user as %q", upper, err, f.Login)
			}
			if id.Username != f.Username {
				t.Errorf("Authenticate(%q).Username = %q, want the stored form %q", upper, id.Username, f.Username)
			}
		} else if err == nil {
			t.Errorf("Authenticate(%q) = %+v; logins are case-sensitive here", upper, id)
		}
	})

	t.Run("OtherUser", func(t *testing.T) {
		a, f := newAuthenticator(t)
		id, err := a.Authenticate(ctx, f.OtherLogin, f.OtherPassword)
		if err != nil {
			t.Fatalf("Authenticate(%q): %v", f.OtherLogin, err)
		}
		if id.Username == f.Username {
			t.Errorf("Authenticate(%q) returned %q's identity", f.OtherLogin, f.Username)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		a, f := newAuthenticator(t)
		errs := make(chan error, 8)
		for i := 0; i < cap(errs); i++ {
			go func(i int) {
				login, pw := f.Login, f.Password
				if i%2 == 1 {
					login, pw = f.OtherLogin, f.OtherPassword
				}
				_, err := a.Authenticate(ctx, login, pw)
				errs <- err
			}(i)
		}
		for i := 0; i < cap(errs); i++ {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Authenticate: %v", err)
			}
		}
	})
}
