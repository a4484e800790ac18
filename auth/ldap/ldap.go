// Package ldap provides an auth.Authenticator backed by an LDAP directory
// (OpenLDAP, Active Directory, Samba AD), plus the directory side of the
// periodic user and group sync.
//
// A login binds the service account, searches the user with an escaped
// filter, requires exactly one entry, verifies the password by binding as
// that entry on a separate connection, and resolves the user's groups
// including nested ones. A minimal Active Directory configuration:
//
//	ldap.Config{
//		Preset:       "ad",
//		URLs:         []string{"ldaps://dc1.example.com"},
//		CAFile:       "/etc/velox/ad-ca.pem",
//		BindDN:       "CN=velox,OU=Services,DC=example,DC=com",
//		BindPassword: secret,
//		BaseDN:       "DC=example,DC=com",
//	}
package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/veloxhq/velox/auth"
)

// Membership says how a user's nested groups are resolved.
type Membership string

const (
	// InChain asks the server for the transitive closure in one search
	// with Active Directory's LDAP_MATCHING_RULE_IN_CHAIN. OpenLDAP does
	// not implement it and silently returns nothing.
	InChain Membership = "in_chain"
	// Search walks the groups breadth-first, one search per nesting level
	// with all of that level's DNs in one OR filter. Works everywhere.
	Search Membership = "search"
)

// Config configures a Provider. With Preset set, only URLs, BindDN,
// BindPassword and BaseDN are needed; every other field overrides the
// preset's value when set.
type Config struct {
	// Preset fills in defaults: "ad" (Active Directory, Samba AD) or
	// "openldap". Empty means every field is given explicitly.
	Preset string
	// Name is reported as auth.Identity.Provider; defaults to "ldap".
	Name string

	// URLs are tried in order: ldap://host[:port] or ldaps://host[:port].
	URLs []string
	// StartTLS upgrades ldap:// connections before anything is sent.
	StartTLS bool
	// AllowPlaintext permits ldap:// without StartTLS, which sends
	// passwords in the clear. Meant for tests and loopback only.
	AllowPlaintext bool
	// CAFile is a PEM bundle of the CAs trusted for the server
	// certificate. Empty means the system roots.
	CAFile string
	// ServerName overrides the name checked in the server certificate;
	// by default the URL's host.
	ServerName string
	// InsecureSkipVerify disables certificate verification. Never
	// implied by anything else.
	InsecureSkipVerify bool

	// BindDN and BindPassword are the service account used for searches.
	BindDN       string
	BindPassword string

	// BaseDN is the default for UserBase and GroupBase.
	BaseDN string
	// UserBase is searched (whole subtree) for users.
	UserBase string
	// UserFilter selects user entries, e.g. "(objectClass=inetOrgPerson)".
	UserFilter string
	// LoginAttributes are matched against the login name; any one may
	// match ("uid", "mail"; "sAMAccountName", "userPrincipalName").
	LoginAttributes []string
	// UsernameAttr is the attribute reported as auth.Identity.Username,
	// whatever the user typed; defaults to LoginAttributes[0].
	UsernameAttr    string
	DisplayNameAttr string
	EmailAttr       string
	// IDAttr is a stable unique ID (entryUUID, objectGUID); objectGUID is
	// decoded from its binary form.
	IDAttr string

	// GroupBase is searched (whole subtree) for groups.
	GroupBase string
	// GroupFilter selects group entries, e.g. "(objectClass=groupOfNames)".
	GroupFilter string
	// GroupNameAttr names a group in auth.Identity.Groups (usually cn).
	GroupNameAttr string
	// GroupMemberAttr holds the DNs of a group's members (usually member).
	GroupMemberAttr string
	// GroupMembership is InChain or Search.
	GroupMembership Membership

	// DialTimeout bounds connecting, including TLS; RequestTimeout each
	// request. Defaults 5s and 10s.
	DialTimeout    time.Duration
	RequestTimeout time.Duration
	// PageSize is the paged-results page size for enumerations
	// (default 500; Active Directory caps pages at 1000).
	PageSize uint32
	// PoolSize is the number of service connections kept (default 4).
	PoolSize int
}

// Presets fill in what a stock directory uses.
var presets = map[string]Config{
	"openldap": {
		UserFilter:      "(objectClass=inetOrgPerson)",
		LoginAttributes: []string{"uid"},
		DisplayNameAttr: "cn",
		EmailAttr:       "mail",
		IDAttr:          "entryUUID",
		GroupFilter:     "(objectClass=groupOfNames)",
		GroupNameAttr:   "cn",
		GroupMemberAttr: "member",
		GroupMembership: Search,
	},
	"ad": {
		// objectCategory keeps computer accounts (also objectClass=user) out.
		UserFilter:      "(&(objectCategory=person)(objectClass=user))",
		LoginAttributes: []string{"sAMAccountName", "userPrincipalName"},
		DisplayNameAttr: "displayName",
		EmailAttr:       "mail",
		IDAttr:          "objectGUID",
		GroupFilter:     "(objectClass=group)",
		GroupNameAttr:   "cn",
		GroupMemberAttr: "member",
		GroupMembership: InChain,
	},
}

const (
	// maxUsernameLen bounds what is put into a filter; real login names
	// (UPNs included) are far shorter.
	maxUsernameLen = 256
	defaultName    = "ldap"
)

// Errors beyond the auth sentinels.
var (
	// ErrAmbiguous means the login name matched several entries, a
	// directory or filter problem an administrator has to fix.
	ErrAmbiguous = errors.New("ldap: login name matches more than one entry")
	// ErrPasswordExpired wraps auth.ErrInvalidCredentials: the password
	// was refused because it (or the account) expired.
	ErrPasswordExpired = fmt.Errorf("ldap: password or account expired: %w", auth.ErrInvalidCredentials)
)

// withDefaults returns cfg completed from its preset and the built-in
// defaults, and checks it.
func (cfg Config) withDefaults() (Config, error) {
	c := cfg
	if c.Preset != "" {
		p, ok := presets[strings.ToLower(c.Preset)]
		if !ok {
			return c, fmt.Errorf("ldap: unknown preset %q (want \"ad\" or \"openldap\")", c.Preset)
		}
		setDefault(&c.UserFilter, p.UserFilter)
		if len(c.LoginAttributes) == 0 {
			c.LoginAttributes = p.LoginAttributes
		}
		setDefault(&c.DisplayNameAttr, p.DisplayNameAttr)
		setDefault(&c.EmailAttr, p.EmailAttr)
		setDefault(&c.IDAttr, p.IDAttr)
		setDefault(&c.GroupFilter, p.GroupFilter)
		setDefault(&c.GroupNameAttr, p.GroupNameAttr)
		setDefault(&c.GroupMemberAttr, p.GroupMemberAttr)
		if c.GroupMembership == "" {
			c.GroupMembership = p.GroupMembership
		}
	}
	setDefault(&c.Name, defaultName)
	setDefault(&c.UserBase, c.BaseDN)
	setDefault(&c.GroupBase, c.BaseDN)
	setDefault(&c.UserFilter, "(objectClass=*)")
	setDefault(&c.GroupMemberAttr, "member")
	setDefault(&c.GroupNameAttr, "cn")
	if c.GroupMembership == "" {
		c.GroupMembership = Search
	}
	if len(c.LoginAttributes) > 0 {
		setDefault(&c.UsernameAttr, c.LoginAttributes[0])
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 4
	}

	switch {
	case len(c.URLs) == 0:
		return c, errors.New("ldap: no server URL configured")
	case c.BindDN == "" || c.BindPassword == "":
		// An empty password would make the "service bind" an
		// unauthenticated bind that many servers accept.
		return c, errors.New("ldap: service BindDN and BindPassword are required")
	case c.UserBase == "":
		return c, errors.New("ldap: UserBase (or BaseDN) is required")
	case len(c.LoginAttributes) == 0:
		return c, errors.New("ldap: LoginAttributes are required")
	case c.GroupMembership != InChain && c.GroupMembership != Search:
		return c, fmt.Errorf("ldap: GroupMembership %q is neither %q nor %q", c.GroupMembership, InChain, Search)
	}
	for _, f := range []string{c.UserFilter, c.GroupFilter} {
		if f == "" {
			continue
		}
		if _, err := goldap.CompileFilter(f); err != nil {
			return c, fmt.Errorf("ldap: bad filter %q: %w", f, err)
		}
	}
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return c, fmt.Errorf("ldap: bad URL %q: %w", raw, err)
		}
		switch u.Scheme {
		case "ldaps":
			if c.StartTLS {
				return c, fmt.Errorf("ldap: StartTLS makes no sense with %s", raw)
			}
		case "ldap":
			if !c.StartTLS && !c.AllowPlaintext {
				return c, fmt.Errorf("ldap: %s would send passwords in the clear; use ldaps://, StartTLS, or AllowPlaintext", raw)
			}
		default:
			return c, fmt.Errorf("ldap: URL %q: scheme must be ldap or ldaps", raw)
		}
		if u.Host == "" {
			return c, fmt.Errorf("ldap: URL %q has no host", raw)
		}
	}
	return c, nil
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// tlsConfig builds the client TLS configuration for host.
func (c Config) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.InsecureSkipVerify,
	}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: no PEM certificate in CA file %s", c.CAFile)
		}
	}
	return tc, nil
}
