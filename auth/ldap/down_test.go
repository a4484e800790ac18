package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/internal/testenv"
)

// proxy forwards TCP connections to target until stopped, so a test can
// take "the LDAP server" away and bring it back on the same address.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

// stop closes the listener and cuts every connection.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("restart proxy on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func slapdPort(t *testing.T, rawURL string) string {
	t.Helper()
	hostport := strings.TrimSuffix(strings.TrimPrefix(rawURL, "ldap://"), "/")
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		t.Fatalf("URL %s: %v", rawURL, err)
	}
	return hostport
}

// TestServerDown: when the directory goes away, logins fail promptly with
// ErrUnavailable (not "wrong password"), and work again once it is back,
// although the pooled service connections died in between.
func TestServerDown(t *testing.T) {
	e := testenv.Slapd(t)
	px := newProxy(t, slapdPort(t, e.URL))
	cfg := openldapConfig(e)
	cfg.URLs = []string{"ldap://" + px.addr}
	cfg.DialTimeout = 2 * time.Second
	p := newProvider(t, cfg)
	ctx := context.Background()
	if _, err := p.Authenticate(ctx, "alice", e.Password("alice")); err != nil {
		t.Fatal(err)
	}

	px.stop()
	start := time.Now()
	_, err := p.Authenticate(ctx, "alice", e.Password("alice"))
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Authenticate with the server down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failing took %v, want well under the dial timeout", d)
	}
	if _, err := p.ListUsers(ctx); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("ListUsers with the server down = %v, want ErrUnavailable", err)
	}

	px.start()
	if _, err := p.Authenticate(ctx, "alice", e.Password("alice")); err != nil {
		t.Errorf("Authenticate after the server came back: %v", err)
	}
}

// TestServerHangs: a server that accepts connections but never answers
// must not hang a login beyond the configured timeouts.
func TestServerHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})

	for _, tc := range []struct {
		name string
		cfg  ldap.Config
	}{
		{"LDAPS", ldap.Config{URLs: []string{"ldaps://" + ln.Addr().String()}}},
		{"StartTLS", ldap.Config{URLs: []string{"ldap://" + ln.Addr().String()}, StartTLS: true}},
		{"Plain", ldap.Config{URLs: []string{"ldap://" + ln.Addr().String()}, AllowPlaintext: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Preset, cfg.BindDN, cfg.BindPassword, cfg.BaseDN = "openldap", "cn=x", "x", "dc=example,dc=test"
			cfg.DialTimeout, cfg.RequestTimeout = 300*time.Millisecond, 300*time.Millisecond
			p := newProvider(t, cfg)
			start := time.Now()
			_, err := p.Authenticate(context.Background(), "alice", "pw")
			if !errors.Is(err, auth.ErrUnavailable) {
				t.Errorf("Authenticate against a silent server = %v, want ErrUnavailable", err)
			}
			// One retry on a fresh connection is allowed: 2 × 300 ms,
			// plus generous slack for a loaded machine.
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestFailover: the first URL is dead, the second answers.
func TestFailover(t *testing.T) {
	e := testenv.Slapd(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := openldapConfig(e)
	cfg.URLs = []string{fmt.Sprintf("ldap://127.0.0.1:%d", port), e.URL}
	p := newProvider(t, cfg)
	if _, err := p.Authenticate(context.Background(), "alice", e.Password("alice")); err != nil {
		t.Errorf("Authenticate with a dead first URL: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	base := ldap.Config{Preset: "openldap", URLs: []string{"ldaps://h"}, BindDN: "cn=s", BindPassword: "p", BaseDN: "dc=x"}
	for _, tc := range []struct {
		name string
		mod  func(*ldap.Config)
	}{
		{"NoURL", func(c *ldap.Config) { c.URLs = nil }},
		{"PlainLDAP", func(c *ldap.Config) { c.URLs = []string{"ldap://h"} }},
		{"StartTLSOnLDAPS", func(c *ldap.Config) { c.StartTLS = true }},
		{"BadScheme", func(c *ldap.Config) { c.URLs = []string{"http://h"} }},
		{"EmptyServicePassword", func(c *ldap.Config) { c.BindPassword = "" }},
		{"NoBase", func(c *ldap.Config) { c.BaseDN = "" }},
		{"BadFilter", func(c *ldap.Config) { c.UserFilter = "(uid=" }},
		{"UnknownPreset", func(c *ldap.Config) { c.Preset = "novell" }},
		{"BadMembership", func(c *ldap.Config) { c.GroupMembership = "memberOf" }},
		{"MissingCAFile", func(c *ldap.Config) { c.CAFile = "/nonexistent/ca.pem" }},
	} {
		cfg := base
		tc.mod(&cfg)
		if _, err := ldap.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, cfg)
		}
	}
	if _, err := ldap.New(base); err != nil {
		t.Errorf("New(valid): %v", err)
	}
}
