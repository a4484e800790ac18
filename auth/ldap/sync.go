package ldap

import (
	"context"
	"errors"
	"fmt"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/veloxhq/velox/auth"
)

// DirectoryUser is one user entry as seen by the periodic sync.
type DirectoryUser struct {
	// Identity carries the names and the groups, resolved through
	// nesting, as Authenticate would report them.
	auth.Identity
	DN string
	// Disabled and Locked mirror the entry's flags (AD userAccountControl,
	// OpenLDAP pwdAccountLockedTime), so the sync can block such users
	// without waiting for a login attempt.
	Disabled bool
	Locked   bool
}

// SyncUsers calls fn for every user under UserBase matching UserFilter,
// with groups resolved. Users the directory no longer lists are simply
// not reported; the caller disables those it knows and did not see,
// and must not do so when SyncUsers returns an error (the listing is then
// incomplete). A sudden drop to few or no users more likely means a
// changed UserBase or filter than a mass departure; the caller may want
// a threshold before disabling.
//
// The cost does not grow with users × nesting levels: all groups are read
// once with their members (paged), the membership closure is computed in
// memory, and users are read page by page. A sync of U users and G groups
// takes about one bind plus ⌈U/PageSize⌉ + ⌈G/PageSize⌉ searches.
func (p *Provider) SyncUsers(ctx context.Context, fn func(DirectoryUser) error) error {
	users, err := p.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

// ListUsers returns what SyncUsers reports, in directory order.
func (p *Provider) ListUsers(ctx context.Context) ([]DirectoryUser, error) {
	var users []DirectoryUser
	err := p.withConn(ctx, func(c *goldap.Conn) error {
		users = users[:0]
		g, err := p.groupGraph(ctx, c)
		if err != nil {
			return fmt.Errorf("read groups: %w", err)
		}
		req := goldap.NewSearchRequest(p.cfg.UserBase, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
			0, 0, false, p.cfg.UserFilter, p.userAttrs(), nil)
		return p.searchPaged(ctx, c, req, func(es []*goldap.Entry) error {
			for _, e := range es {
				u := DirectoryUser{Identity: *p.identity(e), DN: e.DN}
				u.Groups = g.closure(e.DN)
				if err := p.accountState(e); err != nil {
					u.Disabled = errors.Is(err, auth.ErrDisabled)
					u.Locked = errors.Is(err, auth.ErrLocked)
				}
				users = append(users, u)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("ldap: list users: %w", err)
	}
	return users, nil
}

// groupGraph maps each member DN (user or group) to the groups that list
// it directly.
type groupGraph struct {
	name    map[string]string   // group key -> name
	parents map[string][]string // member key -> group keys
}

func (p *Provider) groupGraph(ctx context.Context, c *goldap.Conn) (*groupGraph, error) {
	g := &groupGraph{name: map[string]string{}, parents: map[string][]string{}}
	if p.cfg.GroupFilter == "" || p.cfg.GroupBase == "" {
		return g, nil
	}
	req := p.groupSearch(p.cfg.GroupFilter, p.cfg.GroupNameAttr, p.cfg.GroupMemberAttr)
	err := p.searchPaged(ctx, c, req, func(es []*goldap.Entry) error {
		for _, e := range es {
			k := dnKey(e.DN)
			g.name[k] = p.groupName(e)
			members, err := p.values(c, e, p.cfg.GroupMemberAttr)
			if err != nil {
				return err
			}
			for _, m := range members {
				mk := dnKey(m)
				g.parents[mk] = append(g.parents[mk], k)
			}
		}
		return nil
	})
	return g, err
}

// closure returns the names of all groups containing dn, transitively.
func (g *groupGraph) closure(dn string) []string {
	seen := map[string]bool{}
	names := map[string]bool{}
	stack := []string{dnKey(dn)}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, parent := range g.parents[k] {
			if !seen[parent] {
				seen[parent] = true
				names[g.name[parent]] = true
				stack = append(stack, parent)
			}
		}
	}
	return sortedNames(names)
}
