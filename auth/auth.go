// Package auth defines how Velox verifies who a user is. Providers (local
// accounts in the metadata database, LDAP/Active Directory) implement
// Authenticator; package files decides what an authenticated user may do.
package auth

import (
	"context"
	"errors"
)

var (
	// ErrInvalidCredentials is returned for unknown users and wrong
	// passwords alike, so callers cannot tell which one it was.
	ErrInvalidCredentials = errors.New("auth: invalid username or password")
	// ErrDisabled is returned when the password is right but the account is
	// disabled (by an admin, or in the directory).
	ErrDisabled = errors.New("auth: account disabled")
	// ErrLocked is returned when the directory reports the account locked.
	ErrLocked = errors.New("auth: account locked")
	// ErrUnavailable is returned when a provider cannot reach its backend
	// (for example the LDAP server is down).
	ErrUnavailable = errors.New("auth: identity provider unavailable")
	// ErrUnknownUser is returned by a provider that does not own the
	// username, so the next provider in order can be tried.
	ErrUnknownUser = errors.New("auth: unknown user")
)

// Identity is what a provider knows about an authenticated user.
type Identity struct {
	// Provider names the provider that authenticated the user ("local",
	// "ldap", ...).
	Provider string
	// Username is the login name, as Velox stores it.
	Username    string
	DisplayName string
	Email       string
	// ExternalID is the provider's stable ID (for example the LDAP entry's
	// objectGUID or entryUUID); empty for local users.
	ExternalID string
	// Groups are the names of the groups the user belongs to, directly or
	// through nesting.
	Groups []string
}

// Authenticator verifies a username and password.
type Authenticator interface {
	// Authenticate returns the identity for username and password. It
	// returns ErrUnknownUser if the provider does not own username,
	// ErrInvalidCredentials for a wrong password, ErrDisabled or ErrLocked
	// for accounts that may not sign in, and ErrUnavailable when its
	// backend cannot be reached. Empty passwords are always rejected.
	Authenticate(ctx context.Context, username, password string) (*Identity, error)
}
