package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/veloxhq/velox/auth"
)

// fake owns the users in pw; down makes it unavailable.
type fake struct {
	pw   map[string]string
	down bool
	hits int
}

func (f *fake) Authenticate(ctx context.Context, u, p string) (*auth.Identity, error) {
	f.hits++
	if f.down {
		return nil, auth.ErrUnavailable
	}
	want, ok := f.pw[u]
	if !ok {
		return nil, auth.ErrUnknownUser
	}
	if p != want {
		return nil, auth.ErrInvalidCredentials
	}
	return &auth.Identity{Username: u}, nil
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	local := &fake{pw: map[string]string{"admin": "a", "both": "local"}}
	dir := &fake{pw: map[string]string{"alice": "d", "both": "dir"}}
	known := map[string]string{"admin": "local", "both": "ldap"}
	c := &auth.Chain{
		Providers: []auth.Named{{Name: "local", Authenticator: local}, {Name: "ldap", Authenticator: dir}},
		Owner:     func(ctx context.Context, u string) (string, error) { return known[u], nil },
	}
	for _, tc := range []struct {
		name, user, pass string
		down             bool
		want             error
		provider         string
	}{
		{"local admin", "admin", "a", false, nil, "local"},
		{"directory user, first login", "alice", "d", false, nil, "ldap"},
		{"wrong password", "alice", "x", false, auth.ErrInvalidCredentials, ""},
		{"nobody", "zed", "x", false, auth.ErrUnknownUser, ""},
		// "both" is owned by ldap: the local password must not work.
		{"owned by ldap, local password", "both", "local", false, auth.ErrInvalidCredentials, ""},
		{"owned by ldap", "both", "dir", false, nil, "ldap"},
		{"directory down, local admin", "admin", "a", true, nil, "local"},
		{"directory down, directory user", "alice", "d", true, auth.ErrUnavailable, ""},
		{"directory down, owned user", "both", "dir", true, auth.ErrUnavailable, ""},
		{"empty password", "admin", "", false, auth.ErrInvalidCredentials, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir.down = tc.down
			id, err := c.Authenticate(ctx, tc.user, tc.pass)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Authenticate(%q): got %v, want %v", tc.user, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate(%q): %v", tc.user, err)
			}
			if id.Provider != tc.provider {
				t.Errorf("provider of %q: got %q, want %q", tc.user, id.Provider, tc.provider)
			}
		})
	}
}
