package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "v.yaml")
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	os.WriteFile(file, []byte(`auth:
  providers: [local, ldap]
  ldap:
    preset: ad
    urls: [ldaps://dc1.example.com]
    bind_dn: CN=svc,DC=example,DC=com
    base_dn: DC=example,DC=com
`), 0o600)
	env := map[string]string{"VELOX_AUTH_LDAP_BIND_PASSWORD": "from-env"}
	c, err := Load(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c.Resolve()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid AD config rejected: %v", err)
	}
	if pw, _ := c.LDAPBindPassword(); pw != "from-env" {
		t.Errorf("bind password %q, want it from the environment", pw)
	}
	c.Auth.LDAP.BindPasswordFile = pwFile
	if pw, _ := c.LDAPBindPassword(); pw != "from-file" {
		t.Errorf("bind password %q, want it from the file without the newline", pw)
	}

	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"unknown provider", func(c *Config) { c.Auth.Providers = []string{"local", "saml"} }, `"saml" is not local or ldap`},
		{"no providers", func(c *Config) { c.Auth.Providers = nil }, "list at least one"},
		{"ldap without url", func(c *Config) { c.Auth.LDAP.URLs = nil }, "auth.ldap.urls"},
		{"ldap without password", func(c *Config) { c.Auth.LDAP.BindPassword, c.Auth.LDAP.BindPasswordFile = "", "" }, "bind_password"},
		{"ldap configured, not listed", func(c *Config) { c.Auth.Providers = []string{"local"} }, "does not list ldap"},
		{"bad preset", func(c *Config) { c.Auth.LDAP.Preset = "novell" }, "preset"},
		{"sync too often", func(c *Config) { c.Auth.LDAP.SyncInterval = 1 }, "sync_interval"},
		{"negative quota", func(c *Config) { c.Quota.PersonalDefault = -1 }, "quota.personal_default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := Load(file, func(k string) string { return env[k] })
			c.Resolve()
			tc.mod(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
