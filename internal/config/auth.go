package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Auth selects how users sign in.
type Auth struct {
	// Providers are tried in this order for usernames Velox does not know
	// yet; a known user always signs in through the provider that owns
	// the account. Values: local, ldap.
	Providers []string `yaml:"providers"`
	LDAP      LDAP     `yaml:"ldap"`
	// RateLimit tunes brute-force protection of sign-in.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// RateLimit sets how many failed sign-ins are free before each further
// failure doubles the wait, up to MaxBackoff.
type RateLimit struct {
	AccountFailures int           `yaml:"account_failures"`
	IPFailures      int           `yaml:"ip_failures"`
	MaxBackoff      time.Duration `yaml:"max_backoff"`
}

// LDAP configures the LDAP / Active Directory provider. With a preset
// ("ad" or "openldap") only urls, bind_dn, bind_password and base_dn are
// needed; the other keys override the preset.
type LDAP struct {
	Preset             string   `yaml:"preset"`
	URLs               []string `yaml:"urls"`
	StartTLS           bool     `yaml:"start_tls"`
	AllowPlaintext     bool     `yaml:"allow_plaintext"`
	CAFile             string   `yaml:"ca_file"`
	ServerName         string   `yaml:"server_name"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
	BindDN             string   `yaml:"bind_dn"`
	// BindPassword is better given as bind_password_file or the
	// environment variable VELOX_AUTH_LDAP_BIND_PASSWORD.
	BindPassword     string   `yaml:"bind_password"`
	BindPasswordFile string   `yaml:"bind_password_file"`
	BaseDN           string   `yaml:"base_dn"`
	UserBase         string   `yaml:"user_base"`
	UserFilter       string   `yaml:"user_filter"`
	LoginAttributes  []string `yaml:"login_attributes"`
	UsernameAttr     string   `yaml:"username_attribute"`
	DisplayNameAttr  string   `yaml:"display_name_attribute"`
	EmailAttr        string   `yaml:"email_attribute"`
	GroupBase        string   `yaml:"group_base"`
	GroupFilter      string   `yaml:"group_filter"`
	GroupNameAttr    string   `yaml:"group_name_attribute"`
	GroupMemberAttr  string   `yaml:"group_member_attribute"`
	// GroupMembership is in_chain (Active Directory) or search (any
	// server); the preset chooses.
	GroupMembership string `yaml:"group_membership"`
	// Timeout bounds each directory request.
	Timeout time.Duration `yaml:"timeout"`
	// SyncInterval is how often group memberships are refreshed and
	// removed users disabled; 0 turns the background sync off.
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// Quota sets storage quotas.
type Quota struct {
	// PersonalDefault is the quota of each personal space in bytes unless
	// the user has an override; 0 means unlimited.
	PersonalDefault int64 `yaml:"personal_default"`
}

// UsesLDAP reports whether the LDAP provider is enabled.
func (a Auth) UsesLDAP() bool {
	for _, p := range a.Providers {
		if p == "ldap" {
			return true
		}
	}
	return false
}

// LDAPBindPassword returns the service account password, read from
// bind_password_file if set.
func (c *Config) LDAPBindPassword() (string, error) {
	if c.Auth.LDAP.BindPasswordFile != "" {
		b, err := os.ReadFile(c.Auth.LDAP.BindPasswordFile)
		if err != nil {
			return "", fmt.Errorf("auth.ldap.bind_password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return c.Auth.LDAP.BindPassword, nil
}

func (c *Config) validateAuth() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Auth.Providers) == 0 {
		bad("auth.providers: list at least one of local, ldap")
	}
	seen := map[string]bool{}
	for _, p := range c.Auth.Providers {
		switch {
		case p != "local" && p != "ldap":
			bad("auth.providers: %q is not local or ldap", p)
		case seen[p]:
			bad("auth.providers: %q is listed twice", p)
		}
		seen[p] = true
	}
	l := c.Auth.LDAP
	if c.Auth.UsesLDAP() {
		if len(l.URLs) == 0 {
			bad("auth.ldap.urls: the directory's ldaps:// or ldap:// URL is required when auth.providers lists ldap")
		}
		if l.BindDN == "" {
			bad("auth.ldap.bind_dn: the service account DN is required")
		}
		if l.BindPassword == "" && l.BindPasswordFile == "" {
			bad("auth.ldap.bind_password: set it, or bind_password_file, or VELOX_AUTH_LDAP_BIND_PASSWORD")
		}
		if l.BaseDN == "" && l.UserBase == "" {
			bad("auth.ldap.base_dn: required (or user_base)")
		}
		switch l.Preset {
		case "", "ad", "openldap":
		default:
			bad("auth.ldap.preset: %q is not ad or openldap", l.Preset)
		}
		switch l.GroupMembership {
		case "", "in_chain", "search":
		default:
			bad("auth.ldap.group_membership: %q is not in_chain or search", l.GroupMembership)
		}
	} else if len(l.URLs) > 0 {
		bad("auth.ldap is configured but auth.providers does not list ldap")
	}
	if l.SyncInterval < 0 || (l.SyncInterval > 0 && l.SyncInterval < time.Minute) {
		bad("auth.ldap.sync_interval: 0 (off) or at least 1m")
	}
	if l.Timeout < 0 {
		bad("auth.ldap.timeout: must not be negative")
	}
	if r := c.Auth.RateLimit; r.AccountFailures < 1 || r.IPFailures < 1 || r.MaxBackoff < time.Second {
		bad("auth.rate_limit: account_failures and ip_failures must be at least 1 and max_backoff at least 1s")
	}
	if c.Quota.PersonalDefault < 0 {
		bad("quota.personal_default: must not be negative (0 means unlimited)")
	}
	return errs
}
