package authtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/authtest"
)

// memAuth is the simplest correct Authenticator, to check that the suite
// itself passes a correct implementation.
type memAuth map[string]string

func (m memAuth) Authenticate(_ context.Context, username, password string) (*auth.Identity, error) {
	if password == "" {
		return nil, auth.ErrInvalidCredentials
	}
	want, ok := m[strings.ToLower(username)]
	if !ok {
		return nil, auth.ErrUnknownUser
	}
	if password != want {
		return nil, auth.ErrInvalidCredentials
	}
	return &auth.Identity{Provider: "mem", Username: strings.ToLower(username), Groups: []string{"staff"}}, nil
}

func TestRun(t *testing.T) {
	authtest.Run(t, func(t *testing.T) (auth.Authenticator, authtest.Fixtures) {
		return memAuth{"alice": "a-pw", "bob": "b-pw"}, authtest.Fixtures{
			Login: "alice", Password: "a-pw", Username: "alice",
			OtherLogin: "bob", OtherPassword: "b-pw",
			Groups: []string{"staff"}, CaseInsensitive: true,
		}
	})
}
