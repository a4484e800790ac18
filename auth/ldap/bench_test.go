package ldap_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/internal/testenv"
)

const bulkUsers = 1000

// bulkConfig points the provider at the 1,000 generated users and their
// groups (10 leaf groups ⊂ 3 middle groups ⊂ 1 top group).
func bulkConfig(t testing.TB, e testenv.SlapdEnv) ldap.Config {
	ou := e.BulkUsers(t, "bulk", bulkUsers)
	cfg := openldapConfig(e)
	cfg.UserBase, cfg.GroupBase = ou, ou
	return cfg
}

// TestGroupRefreshRequests shows the sync's request count does not grow
// with users × nesting levels: resolving each user separately costs one
// search per level per user, the sync a handful in all.
func TestGroupRefreshRequests(t *testing.T) {
	e := testenv.Slapd(t)
	start := time.Now()
	cfg := bulkConfig(t, e)
	t.Logf("bulk users ready in %v", time.Since(start).Round(time.Millisecond))
	p := newProvider(t, cfg)
	ctx := context.Background()

	before := p.Stats()
	start = time.Now()
	users, err := p.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	sync := p.Stats().Sub(before)
	if len(users) != bulkUsers {
		t.Fatalf("ListUsers returned %d users, want %d", len(users), bulkUsers)
	}
	for i, u := range users {
		var n int
		if _, err := fmt.Sscanf(u.Username, "bulk-%04d", &n); err != nil {
			t.Fatalf("unexpected user %q", u.Username)
		}
		want := []string{"bulk-all", fmt.Sprintf("bulk-leaf-%d", n%10), fmt.Sprintf("bulk-mid-%d", n%10%3)}
		slices.Sort(want)
		if !slices.Equal(u.Groups, want) {
			t.Fatalf("user %d (%s) groups = %q, want %q", i, u.Username, u.Groups, want)
		}
	}

	// The per-user way, measured on a sample and extrapolated.
	const sample = 20
	before = p.Stats()
	for _, u := range users[:sample] {
		groups, err := p.Groups(ctx, u.DN)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(groups, u.Groups) {
			t.Fatalf("Groups(%s) = %q, sync said %q", u.Username, groups, u.Groups)
		}
	}
	perUser := float64(p.Stats().Sub(before).Searches) / sample

	t.Logf("sync of %d users: %d requests (%d binds, %d searches, %d dials) in %v; per-user resolution: %.1f searches/user ≈ %.0f for all",
		bulkUsers, sync.Requests(), sync.Binds, sync.Searches, sync.Dials, elapsed.Round(time.Millisecond), perUser, perUser*bulkUsers)
	// 1 bind + ⌈1000/500⌉ user pages + 1 group page, with slack for a
	// retried connection; nowhere near users × levels.
	if sync.Requests() > 10 {
		t.Errorf("sync used %d LDAP requests, want ≤ 10", sync.Requests())
	}
	if perUser < 3 {
		t.Errorf("per-user resolution used %.1f searches per user; the comparison assumes ≥ 3 levels", perUser)
	}
}

// BenchmarkLogin measures a full login against the local slapd: service
// search, user bind on a fresh TLS connection, and 3-level nested group
// resolution.
func BenchmarkLogin(b *testing.B) {
	e := testenv.Slapd(b)
	for _, tc := range []struct {
		name string
		mod  func(*ldap.Config)
	}{
		{"StartTLS", func(*ldap.Config) {}},
		{"LDAPS", func(c *ldap.Config) { c.URLs, c.StartTLS = []string{e.LDAPSURL}, false }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := openldapConfig(e)
			tc.mod(&cfg)
			p := newProvider(b, cfg)
			ctx := context.Background()
			pw := e.Password("alice")
			if _, err := p.Authenticate(ctx, "alice", pw); err != nil { // warm the pool
				b.Fatal(err)
			}
			before := p.Stats()
			b.ResetTimer()
			for b.Loop() {
				id, err := p.Authenticate(ctx, "alice", pw)
				if err != nil {
					b.Fatal(err)
				}
				if len(id.Groups) != 3 {
					b.Fatalf("groups = %q", id.Groups)
				}
			}
			s := p.Stats().Sub(before)
			b.ReportMetric(float64(s.Requests())/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkSync measures the directory side of a sync of 1,000 users.
func BenchmarkSync(b *testing.B) {
	e := testenv.Slapd(b)
	p := newProvider(b, bulkConfig(b, e))
	ctx := context.Background()
	before := p.Stats()
	for b.Loop() {
		users, err := p.ListUsers(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(users) != bulkUsers {
			b.Fatalf("%d users", len(users))
		}
	}
	b.ReportMetric(float64(p.Stats().Sub(before).Requests())/float64(b.N), "requests/op")
}

// BenchmarkLoginAD measures a login against Samba AD over LDAPS with
// in-chain group resolution.
func BenchmarkLoginAD(b *testing.B) {
	e := testenv.SambaAD(b)
	p := newProvider(b, adConfig(e))
	ctx := context.Background()
	pw := e.Password("alice")
	if _, err := p.Authenticate(ctx, "alice", pw); err != nil {
		b.Fatal(err)
	}
	before := p.Stats()
	for b.Loop() {
		id, err := p.Authenticate(ctx, "alice", pw)
		if err != nil {
			b.Fatal(err)
		}
		if len(id.Groups) != 3 {
			b.Fatalf("groups = %q", id.Groups)
		}
	}
	b.ReportMetric(float64(p.Stats().Sub(before).Requests())/float64(b.N), "requests/op")
}
