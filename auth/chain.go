package auth

import (
	"context"
	"errors"
	"fmt"
)

// Named is a provider with the name it records on the users it owns
// (users.provider): "local", "ldap", ...
type Named struct {
	Name string
	Authenticator
}

// Chain tries several providers in a configured order. A username is owned
// by exactly one provider: a user Velox already knows is owned by the
// provider recorded on the account (Owner), and only that provider is
// asked; an unknown username belongs to the first provider that does not
// answer ErrUnknownUser. So a directory outage can never let a local
// password stand in for a directory account, or the other way round.
type Chain struct {
	Providers []Named
	// Owner returns the provider recorded for username, or "" if Velox
	// has no such user yet. Nil means "no user is known".
	Owner func(ctx context.Context, username string) (string, error)
}

var _ Authenticator = (*Chain)(nil)

// Authenticate implements Authenticator. If no provider owns the username
// but one of them was unavailable, it returns that provider's
// ErrUnavailable: the user may exist there, and "wrong password" would
// be misleading.
func (c *Chain) Authenticate(ctx context.Context, username, password string) (*Identity, error) {
	if password == "" {
		return nil, ErrInvalidCredentials
	}
	if c.Owner != nil {
		owner, err := c.Owner(ctx, username)
		if err != nil {
			return nil, fmt.Errorf("auth chain: owner of %q: %w", username, err)
		}
		if owner != "" {
			p := c.provider(owner)
			if p == nil {
				// The account's provider is no longer configured.
				return nil, fmt.Errorf("auth chain: provider %q of this account is not configured: %w", owner, ErrUnavailable)
			}
			id, err := p.Authenticate(ctx, username, password)
			if errors.Is(err, ErrUnknownUser) {
				// Known to Velox, gone from its provider.
				return nil, ErrInvalidCredentials
			}
			return c.stamp(p, id, err)
		}
	}
	var unavailable error
	for i := range c.Providers {
		p := &c.Providers[i]
		id, err := p.Authenticate(ctx, username, password)
		switch {
		case errors.Is(err, ErrUnknownUser):
			continue
		case errors.Is(err, ErrUnavailable):
			if unavailable == nil {
				unavailable = err
			}
			continue
		}
		if unavailable != nil && err == nil {
			// An earlier provider might own this name; refusing is the
			// only way to keep ownership unambiguous during an outage.
			return nil, unavailable
		}
		return c.stamp(p, id, err)
	}
	if unavailable != nil {
		return nil, unavailable
	}
	return nil, ErrUnknownUser
}

func (c *Chain) provider(name string) *Named {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}

// stamp records which provider vouched for the identity.
func (c *Chain) stamp(p *Named, id *Identity, err error) (*Identity, error) {
	if err != nil {
		return nil, err
	}
	id.Provider = p.Name
	return id, nil
}
