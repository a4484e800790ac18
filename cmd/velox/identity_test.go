package main

import (
	"strings"
	"testing"

	"github.com/veloxhq/velox/internal/testenv"
)

// TestMain (in swift_e2e_test.go) stops the servers testenv started.

// velox serve configured only through the environment signs a directory
// user in through the provider chain, with the bind password from
// VELOX_AUTH_LDAP_BIND_PASSWORD, and never prints that password.
func TestServeWithLDAP(t *testing.T) {
	e := testenv.Slapd(t)
	env := map[string]string{
		"VELOX_ADMIN_PASSWORD":             "admin-password",
		"VELOX_AUTH_PROVIDERS":             "local,ldap",
		"VELOX_AUTH_LDAP_PRESET":           "openldap",
		"VELOX_AUTH_LDAP_URLS":             e.URL,
		"VELOX_AUTH_LDAP_START_TLS":        "true",
		"VELOX_AUTH_LDAP_CA_FILE":          e.CAFile,
		"VELOX_AUTH_LDAP_BIND_DN":          e.BindDN,
		"VELOX_AUTH_LDAP_BIND_PASSWORD":    e.BindPassword,
		"VELOX_AUTH_LDAP_BASE_DN":          e.BaseDN,
		"VELOX_AUTH_LDAP_SYNC_INTERVAL":    "1h",
		"VELOX_AUTH_LDAP_USER_BASE":        e.UserBase,
		"VELOX_AUTH_LDAP_GROUP_BASE":       e.GroupBase,
		"VELOX_AUTH_LDAP_LOGIN_ATTRIBUTES": "uid,mail",
	}
	r := startServe(t, env, "--data", t.TempDir(), "--log-level", "debug")
	code, body := get(t, r.url+"/api/v1/me", "alice@example.test", e.Password("alice"))
	if code != 200 || !strings.Contains(body, `"username":"alice"`) || !strings.Contains(body, `"provider":"ldap"`) {
		t.Fatalf("directory sign-in: %d %s", code, body)
	}
	if code, _ := get(t, r.url+"/api/v1/me", "admin", "admin-password"); code != 200 {
		t.Fatalf("local admin: %d", code)
	}
	if code, body := get(t, r.url+"/api/v1/admin/directory", "admin", "admin-password"); code != 200 || !strings.Contains(body, `"configured":true`) {
		t.Fatalf("directory status: %d %s", code, body)
	}
	if strings.Contains(r.out.String(), e.BindPassword) {
		t.Fatal("the bind password was printed")
	}
}
