package ldap

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// inChainRule is LDAP_MATCHING_RULE_IN_CHAIN: Active Directory follows
// the member links transitively for it.
const inChainRule = "1.2.840.113556.1.4.1941"

// searchBatch is how many DNs go into one OR filter of the breadth-first
// group search; it keeps filters well below server size limits.
const searchBatch = 100

// Groups returns the names of the groups userDN belongs to, directly or
// through nested groups, sorted. Membership loops are tolerated.
func (p *Provider) Groups(ctx context.Context, userDN string) ([]string, error) {
	if p.cfg.GroupFilter == "" || p.cfg.GroupBase == "" {
		return nil, nil
	}
	names := map[string]bool{}
	err := p.withConn(ctx, func(c *goldap.Conn) error {
		clear(names)
		if p.cfg.GroupMembership == InChain {
			filter := fmt.Sprintf("(&%s(%s:%s:=%s))", p.cfg.GroupFilter, p.cfg.GroupMemberAttr, inChainRule, goldap.EscapeFilter(userDN))
			return p.searchPaged(ctx, c, p.groupSearch(filter, p.cfg.GroupNameAttr), func(es []*goldap.Entry) error {
				for _, e := range es {
					names[p.groupName(e)] = true
				}
				return nil
			})
		}
		return p.walkGroups(ctx, c, userDN, names)
	})
	if err != nil {
		return nil, fmt.Errorf("ldap: groups of %s: %w", userDN, err)
	}
	return sortedNames(names), nil
}

// walkGroups finds the groups containing userDN level by level: each level
// is one search for groups having any of the previous level's DNs as a
// member, so the cost is the nesting depth, not the number of groups.
func (p *Provider) walkGroups(ctx context.Context, c *goldap.Conn, userDN string, names map[string]bool) error {
	seen := map[string]bool{dnKey(userDN): true}
	frontier := []string{userDN}
	for len(frontier) > 0 {
		var next []string
		for start := 0; start < len(frontier); start += searchBatch {
			batch := frontier[start:min(start+searchBatch, len(frontier))]
			var or strings.Builder
			for _, dn := range batch {
				fmt.Fprintf(&or, "(%s=%s)", p.cfg.GroupMemberAttr, goldap.EscapeFilter(dn))
			}
			filter := fmt.Sprintf("(&%s(|%s))", p.cfg.GroupFilter, or.String())
			err := p.searchPaged(ctx, c, p.groupSearch(filter, p.cfg.GroupNameAttr), func(es []*goldap.Entry) error {
				for _, e := range es {
					if k := dnKey(e.DN); !seen[k] {
						seen[k] = true
						names[p.groupName(e)] = true
						next = append(next, e.DN)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		frontier = next
	}
	return nil
}

func (p *Provider) groupSearch(filter string, attrs ...string) *goldap.SearchRequest {
	return goldap.NewSearchRequest(p.cfg.GroupBase, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		0, 0, false, filter, attrs, nil)
}

// groupName is the GroupNameAttr value, or the first RDN's value.
func (p *Provider) groupName(e *goldap.Entry) string {
	if n := e.GetAttributeValue(p.cfg.GroupNameAttr); n != "" {
		return n
	}
	if dn, err := goldap.ParseDN(e.DN); err == nil && len(dn.RDNs) > 0 && len(dn.RDNs[0].Attributes) > 0 {
		return dn.RDNs[0].Attributes[0].Value
	}
	return e.DN
}

// dnKey normalizes a DN for use as a map key: servers return the DNs in
// member values and in search results with different case and spacing.
func dnKey(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(dn)
	}
	var b strings.Builder
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(strings.ToLower(a.Value))
		}
	}
	return b.String()
}

// values returns all values of attr in e. Active Directory returns at
// most MaxValRange (1500) values of a large attribute, named like
// "member;range=0-1499"; the rest is fetched in further base searches.
func (p *Provider) values(c *goldap.Conn, e *goldap.Entry, attr string) ([]string, error) {
	var vals []string
	ranged := ""
	prefix := strings.ToLower(attr) + ";range="
	collect := func(attrs []*goldap.EntryAttribute) {
		ranged = ""
		for _, a := range attrs {
			switch name := strings.ToLower(a.Name); {
			case name == strings.ToLower(attr):
				vals = append(vals, a.Values...)
			case strings.HasPrefix(name, prefix):
				vals = append(vals, a.Values...)
				ranged = name[len(prefix):]
			}
		}
	}
	collect(e.Attributes)
	for ranged != "" {
		_, hi, ok := strings.Cut(ranged, "-")
		if !ok || hi == "*" {
			break
		}
		end, err := strconv.Atoi(hi)
		if err != nil {
			return nil, fmt.Errorf("ldap: bad range %q on %s", ranged, e.DN)
		}
		req := goldap.NewSearchRequest(e.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{fmt.Sprintf("%s;range=%d-*", attr, end+1)}, nil)
		res, err := p.search(c, req)
		if err != nil {
			return nil, err
		}
		if len(res.Entries) != 1 {
			break
		}
		collect(res.Entries[0].Attributes)
	}
	return vals, nil
}
