package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/config"
	"github.com/veloxhq/velox/internal/identity"
	"github.com/veloxhq/velox/internal/metadata"
)

// newIdentity builds the provider chain in the configured order and the
// identity service on top of it. The returned close function releases
// the LDAP connections; the caller closes the LDAP provider, if any.
func newIdentity(c *config.Config, db *metadata.DB, logger *slog.Logger) (*identity.Service, *ldap.Provider, error) {
	chain := &auth.Chain{Owner: ownerLookup(db)}
	var dir *ldap.Provider
	for _, name := range c.Auth.Providers {
		switch name {
		case "local":
			chain.Providers = append(chain.Providers, auth.Named{Name: local.Name, Authenticator: local.New(db)})
		case "ldap":
			lc, err := ldapConfig(c)
			if err != nil {
				return nil, nil, err
			}
			if dir, err = ldap.New(lc); err != nil {
				return nil, nil, fmt.Errorf("auth.ldap: %w", err)
			}
			chain.Providers = append(chain.Providers, auth.Named{Name: dir.Name(), Authenticator: dir})
		}
	}
	var d identity.Directory
	if dir != nil {
		d = dir
	}
	svc := identity.New(db, chain, d, logger)
	svc.Limiter.AccountFree = c.Auth.RateLimit.AccountFailures
	svc.Limiter.IPFree = c.Auth.RateLimit.IPFailures
	svc.Limiter.Max = c.Auth.RateLimit.MaxBackoff
	return svc, dir, nil
}

// ownerLookup tells the chain which provider owns a username Velox knows.
func ownerLookup(db *metadata.DB) func(ctx context.Context, username string) (string, error) {
	return func(ctx context.Context, username string) (string, error) {
		u, err := db.UserByName(ctx, username)
		if errors.Is(err, metadata.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return u.Provider, nil
	}
}

func ldapConfig(c *config.Config) (ldap.Config, error) {
	l := c.Auth.LDAP
	pw, err := c.LDAPBindPassword()
	if err != nil {
		return ldap.Config{}, err
	}
	return ldap.Config{
		Preset: l.Preset, URLs: l.URLs, StartTLS: l.StartTLS, AllowPlaintext: l.AllowPlaintext,
		CAFile: l.CAFile, ServerName: l.ServerName, InsecureSkipVerify: l.InsecureSkipVerify,
		BindDN: l.BindDN, BindPassword: pw, BaseDN: l.BaseDN,
		UserBase: l.UserBase, UserFilter: l.UserFilter, LoginAttributes: l.LoginAttributes,
		UsernameAttr: l.UsernameAttr, DisplayNameAttr: l.DisplayNameAttr, EmailAttr: l.EmailAttr,
		GroupBase: l.GroupBase, GroupFilter: l.GroupFilter, GroupNameAttr: l.GroupNameAttr,
		GroupMemberAttr: l.GroupMemberAttr, GroupMembership: ldap.Membership(strings.ToLower(l.GroupMembership)),
		RequestTimeout: l.Timeout,
	}, nil
}
