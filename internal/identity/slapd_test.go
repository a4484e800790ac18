package identity_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/internal/identity"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/testenv"
)

// TestSyncThousandUsers syncs 1,000 provisioned directory users, whose
// groups nest three levels, from a real slapd: a handful of LDAP requests
// in all, not one per user per level.
func TestSyncThousandUsers(t *testing.T) {
	const n = 1000
	e := testenv.Slapd(t)
	ou := e.BulkUsers(t, "bulk", n)
	dir, err := ldap.New(ldap.Config{Preset: "openldap", URLs: []string{e.URL}, StartTLS: true, CAFile: e.CAFile,
		BindDN: e.BindDN, BindPassword: e.BindPassword, BaseDN: e.BaseDN, UserBase: ou, GroupBase: ou})
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	ctx := context.Background()
	db := sqliteDB(t)
	for i := 0; i < n; i++ {
		if err := db.CreateUser(ctx, &metadata.User{Username: fmt.Sprintf("bulk-%04d", i), Provider: "ldap"}); err != nil {
			t.Fatal(err)
		}
	}
	svc := identity.New(db, &auth.Chain{}, dir, slog.New(slog.DiscardHandler))
	before := dir.Stats()
	start := time.Now()
	res, err := svc.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	st := dir.Stats().Sub(before)
	if res.Listed != n || res.Updated != n || res.Disabled != 0 {
		t.Fatalf("sync result %+v", res)
	}
	u, _ := db.UserByName(ctx, "bulk-0042")
	gs, _ := db.UserGroups(ctx, u.ID)
	var names []string
	for _, g := range gs {
		names = append(names, g.Name)
	}
	if want := []string{"bulk-all", "bulk-leaf-2", "bulk-mid-2"}; !slices.Equal(names, want) {
		t.Fatalf("groups of bulk-0042: %v, want %v", names, want)
	}
	t.Logf("sync of %d users with 3-level groups: %d LDAP requests (%d binds, %d searches) in %v",
		n, st.Requests(), st.Binds, st.Searches, elapsed.Round(time.Millisecond))
	if st.Requests() > 10 {
		t.Errorf("sync used %d LDAP requests, want ≤ 10", st.Requests())
	}
	// A second sync changes nothing and is cheaper in the database.
	start = time.Now()
	if _, err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("second sync (no changes): %v", time.Since(start).Round(time.Millisecond))
}
