// Package local authenticates users whose accounts live in Velox's own
// metadata database. Passwords are stored as argon2id hashes in PHC string
// format, so parameters can be raised later without breaking old hashes.
package local

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/internal/metadata"
)

// Provider name recorded on local users.
const Name = "local"

// Users is the part of the metadata store the provider needs.
type Users interface {
	UserByName(ctx context.Context, username string) (*metadata.User, error)
}

// Provider authenticates local users.
type Provider struct {
	users Users
}

var _ auth.Authenticator = (*Provider)(nil)

// New returns a Provider backed by users.
func New(users Users) *Provider { return &Provider{users: users} }

// dummyHash is verified against when the user does not exist, so that the
// response time does not reveal which usernames exist. It is made on first
// use: an argon2id hash takes 19 MiB of memory, which an idle server
// should not carry from start-up.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("velox-timing-equalizer")
	return h
})

// Authenticate implements auth.Authenticator.
func (p *Provider) Authenticate(ctx context.Context, username, password string) (*auth.Identity, error) {
	if password == "" {
		return nil, auth.ErrInvalidCredentials
	}
	u, err := p.users.UserByName(ctx, username)
	if errors.Is(err, metadata.ErrNotFound) || (err == nil && u.Provider != Name) {
		VerifyPassword(dummyHash(), password)
		return nil, auth.ErrUnknownUser
	}
	if err != nil {
		return nil, fmt.Errorf("local auth: %w", err)
	}
	if u.PasswordHash == "" || !VerifyPassword(u.PasswordHash, password) {
		return nil, auth.ErrInvalidCredentials
	}
	if u.Disabled {
		return nil, auth.ErrDisabled
	}
	return &auth.Identity{Provider: Name, Username: u.Username, DisplayName: u.DisplayName, Email: u.Email}, nil
}

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1
// lane), which keeps a login around 30 ms on a small server.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash of password in PHC format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a hash made by
// HashPassword (with any parameters).
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var mem uint32
	var t uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &threads); err != nil || mem == 0 || t == 0 || threads == 0 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
