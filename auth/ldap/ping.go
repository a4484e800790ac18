package ldap

import (
	"context"

	goldap "github.com/go-ldap/ldap/v3"
)

// Name is the provider name recorded on the users this directory owns.
func (p *Provider) Name() string { return p.cfg.Name }

// Ping binds the service account and reads the user base entry, which is
// what an administrator's "test connection" wants to know: the server is
// reachable, TLS verifies, the service credentials work and the base
// exists. It returns auth.ErrUnavailable (wrapped) when the server cannot
// be reached.
func (p *Provider) Ping(ctx context.Context) error {
	return p.withConn(ctx, func(c *goldap.Conn) error {
		req := goldap.NewSearchRequest(p.cfg.UserBase, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
			1, int(p.cfg.RequestTimeout.Seconds()), false, "(objectClass=*)", []string{"1.1"}, nil)
		_, err := p.search(c, req)
		return err
	})
}
