package identity_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/internal/identity"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// openDB opens a metadata database that is closed when the test ends.
func openDB(t *testing.T, driver, dsn string) *metadata.DB {
	t.Helper()
	db, err := metadata.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqliteDB opens a fresh SQLite metadata database.
func sqliteDB(t *testing.T) *metadata.DB {
	return openDB(t, "sqlite", filepath.Join(t.TempDir(), "m.db"))
}

// eachDB runs fn against SQLite and a real PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, db *metadata.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteDB(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openDB(t, "postgres", testenv.Postgres(t))) })
}

// fakeDir is a directory whose users and groups tests set.
type fakeDir struct {
	users []ldap.DirectoryUser
	err   error
	pw    map[string]string
}

func (d *fakeDir) Name() string                   { return "ldap" }
func (d *fakeDir) Ping(ctx context.Context) error { return d.err }
func (d *fakeDir) ListUsers(ctx context.Context) ([]ldap.DirectoryUser, error) {
	return d.users, d.err
}

func (d *fakeDir) Authenticate(ctx context.Context, username, password string) (*auth.Identity, error) {
	if d.err != nil {
		return nil, auth.ErrUnavailable
	}
	for _, u := range d.users {
		if u.Username == username {
			if d.pw[username] != password {
				return nil, auth.ErrInvalidCredentials
			}
			// As the LDAP provider does, for entries the directory marks.
			if u.Disabled {
				return nil, auth.ErrDisabled
			}
			if u.Locked {
				return nil, auth.ErrLocked
			}
			id := u.Identity
			return &id, nil
		}
	}
	return nil, auth.ErrUnknownUser
}

func dirUser(name string, groups ...string) ldap.DirectoryUser {
	return ldap.DirectoryUser{Identity: auth.Identity{Provider: "ldap", Username: name, DisplayName: name + " D", Groups: groups}}
}

func groupNames(t *testing.T, db *metadata.DB, userID string) []string {
	t.Helper()
	gs, err := db.UserGroups(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.Provider+"/"+g.Name)
	}
	return out
}

func TestLoginProvisionsAndSyncRefreshes(t *testing.T) {
	eachDB(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		dir := &fakeDir{pw: map[string]string{}}
		var names []string
		for i := 0; i < 10; i++ {
			n := string(rune('a'+i)) + "user"
			names = append(names, n)
			dir.pw[n] = "pw"
			dir.users = append(dir.users, dirUser(n, "staff"))
		}
		dir.users[0].Groups = []string{"engineering", "staff"}
		chain := &auth.Chain{Providers: []auth.Named{{Name: "ldap", Authenticator: dir}}}
		svc := identity.New(db, chain, dir, slog.New(slog.DiscardHandler))
		for _, n := range names {
			if _, err := svc.Login(ctx, identity.LoginRequest{Username: n, Password: "pw", IP: "192.0.2.1"}); err != nil {
				t.Fatalf("login %s: %v", n, err)
			}
		}
		a, _ := db.UserByName(ctx, "auser")
		// A local group survives directory refreshes.
		lg := &metadata.Group{Name: "staff", Provider: "local"}
		if err := db.CreateGroup(ctx, lg); err != nil {
			t.Fatal(err)
		}
		db.AddGroupMember(ctx, lg.ID, a.ID)
		if got := groupNames(t, db, a.ID); len(got) != 3 {
			t.Fatalf("groups after login: %v", got)
		}

		// The directory drops auser from engineering and buser entirely,
		// and disables cuser.
		dir.users[0].Groups = []string{"staff"}
		dir.users[2].Disabled = true
		dir.users = append(dir.users[:1], dir.users[2:]...)
		res, err := svc.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Disabled != 2 || res.Skipped != "" || res.Listed != 9 {
			t.Fatalf("sync result %+v", res)
		}
		if got := groupNames(t, db, a.ID); len(got) != 2 || got[0] != "ldap/staff" || got[1] != "local/staff" {
			t.Fatalf("groups after sync: %v", got)
		}
		for _, n := range []string{"buser", "cuser"} {
			u, _ := db.UserByName(ctx, n)
			if !u.Disabled {
				t.Errorf("%s not disabled by the sync", n)
			}
		}
		if _, err := svc.Login(ctx, identity.LoginRequest{Username: "cuser", Password: "pw"}); !errors.Is(err, auth.ErrDisabled) {
			t.Errorf("disabled user login: %v", err)
		}

		// Safety: a failing listing or a sudden drop disables nobody.
		dir.err = errors.New("boom")
		if _, err := svc.Sync(ctx); err == nil {
			t.Fatal("sync with a failing directory succeeded")
		}
		dir.err = nil
		saved := dir.users
		dir.users = nil
		if res, _ := svc.Sync(ctx); res.Disabled != 0 || res.Skipped == "" {
			t.Fatalf("empty listing: %+v", res)
		}
		dir.users = saved[:1]
		if res, _ := svc.Sync(ctx); res.Disabled != 0 || res.Skipped == "" {
			t.Fatalf("listing shrank from 8 to 1 active users: %+v", res)
		}
		for _, n := range names[3:] {
			if u, _ := db.UserByName(ctx, n); u.Disabled {
				t.Errorf("%s disabled despite the safety limit", n)
			}
		}
		if ev, _ := db.Audit(ctx, metadata.AuditFilter{Action: "user.disable"}); len(ev) != 2 {
			t.Errorf("audited disables: %d, want 2", len(ev))
		}
	})
}

// The sync enables again the accounts it disabled once the directory
// lists them as active, and a directory sign-in does the same at once;
// an account an administrator disabled stays disabled.
func TestDirectoryEnablesWhatItDisabled(t *testing.T) {
	eachDB(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		dir := &fakeDir{pw: map[string]string{}}
		names := []string{"ann", "ben", "cat", "dan", "eve", "fay"}
		for _, n := range names {
			dir.pw[n] = "pw"
			dir.users = append(dir.users, dirUser(n, "staff"))
		}
		chain := &auth.Chain{Providers: []auth.Named{{Name: "ldap", Authenticator: dir}}}
		svc := identity.New(db, chain, dir, slog.New(slog.DiscardHandler))
		for _, n := range names {
			if _, err := svc.Login(ctx, identity.LoginRequest{Username: n, Password: "pw"}); err != nil {
				t.Fatalf("login %s: %v", n, err)
			}
		}
		user := func(n string) *metadata.User {
			u, err := db.UserByName(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		root := &metadata.User{Username: "root", Provider: "local", IsAdmin: true}
		if err := db.CreateUser(ctx, root); err != nil {
			t.Fatal(err)
		}
		if err := svc.SetDisabled(ctx, identity.Actor{User: root}, user("dan").ID, true); err != nil {
			t.Fatal(err)
		}

		// ben leaves the directory, cat is disabled there.
		all := dir.users
		dir.users = append([]ldap.DirectoryUser{all[0]}, all[2:]...)
		dir.users[1].Disabled = true
		if res, err := svc.Sync(ctx); err != nil || res.Disabled != 2 || res.Enabled != 0 {
			t.Fatalf("sync: %+v, %v", res, err)
		}
		for n, want := range map[string]string{"ben": "directory", "cat": "directory", "dan": "admin", "ann": ""} {
			if u := user(n); u.DisabledBy != want || u.Disabled != (want != "") {
				t.Errorf("%s: disabled %v by %q, want by %q", n, u.Disabled, u.DisabledBy, want)
			}
		}

		// Both are back and active: the next sync enables them, not dan.
		dir.users = all
		dir.users[2].Disabled = false
		if res, err := svc.Sync(ctx); err != nil || res.Enabled != 2 || res.Disabled != 0 {
			t.Fatalf("sync after return: %+v, %v", res, err)
		}
		for _, n := range []string{"ben", "cat"} {
			if u := user(n); u.Disabled || u.DisabledBy != "" {
				t.Errorf("%s still disabled (by %q) after the directory lists them again", n, u.DisabledBy)
			}
			if _, err := svc.Login(ctx, identity.LoginRequest{Username: n, Password: "pw"}); err != nil {
				t.Errorf("%s cannot sign in after being enabled: %v", n, err)
			}
		}
		if u := user("dan"); !u.Disabled || u.DisabledBy != "admin" {
			t.Errorf("the sync enabled dan, whom an administrator disabled: %+v", u)
		}
		if _, err := svc.Login(ctx, identity.LoginRequest{Username: "dan", Password: "pw"}); !errors.Is(err, auth.ErrDisabled) {
			t.Errorf("admin-disabled dan signed in through the directory: %v", err)
		}

		// eve leaves and the sync disables her; back in the directory,
		// her own sign-in enables her before any sync runs.
		dir.users = append(all[:4:4], all[5])
		if res, _ := svc.Sync(ctx); res.Disabled != 1 {
			t.Fatalf("sync without eve: %+v", res)
		}
		dir.users = all
		if _, err := svc.Login(ctx, identity.LoginRequest{Username: "eve", Password: "pw"}); err != nil {
			t.Fatalf("eve, back in the directory, cannot sign in: %v", err)
		}
		if u := user("eve"); u.Disabled {
			t.Error("eve still disabled after signing in through the directory")
		}
		if ev, _ := db.Audit(ctx, metadata.AuditFilter{Action: "user.enable"}); len(ev) != 3 {
			t.Errorf("audited enables: %d, want 3 (ben, cat, eve)", len(ev))
		}
	})
}

func TestLocalNameNotTakenOverByDirectory(t *testing.T) {
	eachDB(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		db.CreateUser(ctx, &metadata.User{Username: "auser", Provider: "local"})
		dir := &fakeDir{pw: map[string]string{"auser": "pw"}, users: []ldap.DirectoryUser{dirUser("auser")}}
		// Without an owner lookup the chain asks the directory, which
		// vouches for "auser"; provisioning must still refuse.
		chain := &auth.Chain{Providers: []auth.Named{{Name: "ldap", Authenticator: dir}}}
		svc := identity.New(db, chain, dir, slog.New(slog.DiscardHandler))
		if _, err := svc.Login(ctx, identity.LoginRequest{Username: "auser", Password: "pw"}); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("directory took over a local account: %v", err)
		}
	})
}

// TestLimiterBackoff runs the same backoff with the account counts in
// memory and in each database.
func TestLimiterBackoff(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testLimiterBackoff(t, nil) })
	eachDB(t, func(t *testing.T, db *metadata.DB) { testLimiterBackoff(t, db) })
}

func testLimiterBackoff(t *testing.T, accounts identity.AccountStore) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	l := identity.NewLimiter()
	l.Now = func() time.Time { return now }
	l.Accounts = accounts
	for i := 0; i < 4; i++ {
		l.Fail(ctx, "alice", "192.0.2.1")
	}
	if w := l.Wait(ctx, "alice", "192.0.2.1"); w != 0 {
		t.Fatalf("wait after 4 failures: %v", w)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		l.Fail(ctx, "ALICE", "192.0.2.1") // usernames compare case-insensitively
		if w := l.Wait(ctx, "alice", "198.51.100.7"); w != want {
			t.Fatalf("wait after %d failures: %v, want %v", 5+i, w, want)
		}
	}
	if w := l.Wait(ctx, "bob", "198.51.100.7"); w != 0 {
		t.Fatalf("bob waits %v", w)
	}
	for i := 0; i < 30; i++ {
		l.Fail(ctx, "x", "192.0.2.1")
	}
	if w := l.Wait(ctx, "bob", "192.0.2.1"); w != l.Max {
		t.Fatalf("address backoff: %v, want the maximum %v", w, l.Max)
	}
	if w := l.Wait(ctx, "x", "198.51.100.7"); w != l.Max {
		t.Fatalf("account backoff after 30 failures: %v, want the maximum %v", w, l.Max)
	}
	l.Succeed(ctx, "alice")
	if w := l.Wait(ctx, "alice", "198.51.100.7"); w != 0 {
		t.Fatalf("success did not clear: %v", w)
	}
	// After more than 2×Max without failures, the count starts over.
	now = now.Add(2*l.Max + time.Second)
	l.Fail(ctx, "x", "198.51.100.7")
	if w := l.Wait(ctx, "x", "198.51.100.7"); w != 0 {
		t.Fatalf("failure after a long quiet period: wait %v, want 0", w)
	}
}

// TestLimiterSharedBetweenNodes signs in through two Services on one
// database, as two app nodes behind the proxy do: the account's failures
// add up across them.
func TestLimiterSharedBetweenNodes(t *testing.T) {
	eachDB(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		dir := &fakeDir{pw: map[string]string{"alice": "pw"}, users: []ldap.DirectoryUser{dirUser("alice")}}
		chain := &auth.Chain{Providers: []auth.Named{{Name: "ldap", Authenticator: dir}}}
		now := time.Unix(1000, 0)
		node := func() *identity.Service {
			svc := identity.New(db, chain, dir, slog.New(slog.DiscardHandler))
			svc.Limiter.Now = func() time.Time { return now }
			return svc
		}
		nodes := map[string]*identity.Service{"A": node(), "B": node()}
		login := func(name, password string) error {
			_, err := nodes[name].Login(ctx, identity.LoginRequest{Username: "alice", Password: password, IP: "192.0.2.1"})
			return err
		}
		// 5 failures are free; 3 on each node stay under that on either.
		// A guess a minute outlasts the 1s wait after the fifth.
		for i := 0; i < 3; i++ {
			for _, name := range []string{"A", "B"} {
				now = now.Add(time.Minute)
				if err := login(name, "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Fatalf("failure %d on node %s: %v", i+1, name, err)
				}
			}
		}
		for _, name := range []string{"A", "B"} {
			var rl *identity.RateLimitedError
			if err := login(name, "pw"); !errors.As(err, &rl) || rl.Wait != 2*time.Second {
				t.Fatalf("node %s after 6 failures across both nodes: %v, want a 2s wait", name, err)
			}
		}
		now = now.Add(2 * time.Second)
		if err := login("B", "pw"); err != nil {
			t.Fatalf("correct password on node B after the wait: %v", err)
		}
		// Had the success on B not cleared the count for A, this would be
		// failure 7, with a 4s wait.
		if err := login("A", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("failure on node A: %v", err)
		}
		for name, svc := range nodes {
			if w := svc.Limiter.Wait(ctx, "alice", "198.51.100.7"); w != 0 {
				t.Fatalf("node %s waits %v after a success and one failure", name, w)
			}
		}
	})
}

// TestLimiterFallsBackToMemory checks that a failing database neither
// locks users out nor lets guesses through unlimited.
func TestLimiterFallsBackToMemory(t *testing.T) {
	ctx := context.Background()
	db, err := metadata.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // every call fails from now on
	var logs bytes.Buffer
	now := time.Unix(1000, 0)
	l := identity.NewLimiter()
	l.Now = func() time.Time { return now }
	l.Accounts = db
	l.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if w := l.Wait(ctx, "alice", "192.0.2.1"); w != 0 {
		t.Fatalf("wait before any failure: %v", w)
	}
	for i := 0; i < 5; i++ {
		l.Fail(ctx, "alice", "192.0.2.1")
	}
	if w := l.Wait(ctx, "alice", "198.51.100.7"); w != time.Second {
		t.Fatalf("wait after 5 failures: %v, want 1s from the in-memory count", w)
	}
	l.Succeed(ctx, "alice")
	if w := l.Wait(ctx, "alice", "198.51.100.7"); w != 0 {
		t.Fatalf("success did not clear: %v", w)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "database is closed") {
		t.Fatalf("database errors not logged as warnings:\n%s", logs.String())
	}
}

// flakyStore is an AccountStore whose calls fail while down is set.
type flakyStore struct {
	identity.AccountStore
	down atomic.Bool
}

var errStoreDown = errors.New("test: store down")

func (s *flakyStore) LoginWaitUntil(ctx context.Context, username string) (time.Time, error) {
	if s.down.Load() {
		return time.Time{}, errStoreDown
	}
	return s.AccountStore.LoginWaitUntil(ctx, username)
}

func (s *flakyStore) RecordLoginFailure(ctx context.Context, username string, now, forgetBefore time.Time, wait func(int) time.Duration) (int, error) {
	if s.down.Load() {
		return 0, errStoreDown
	}
	return s.AccountStore.RecordLoginFailure(ctx, username, now, forgetBefore, wait)
}

func (s *flakyStore) ClearLoginFailures(ctx context.Context, username string) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.AccountStore.ClearLoginFailures(ctx, username)
}

func (s *flakyStore) DeleteLoginFailuresBefore(ctx context.Context, t time.Time) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.AccountStore.DeleteLoginFailuresBefore(ctx, t)
}

// TestLimiterOutageLogging: a database outage is logged when it starts,
// then at most once a minute with the count of failed calls left out, and
// once when it ends, however many sign-ins happen meanwhile.
func TestLimiterOutageLogging(t *testing.T) {
	ctx := context.Background()
	db := sqliteDB(t)
	var logs bytes.Buffer
	now := time.Unix(1000, 0)
	store := &flakyStore{AccountStore: db}
	l := identity.NewLimiter()
	l.Now = func() time.Time { return now }
	l.Accounts = store
	l.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	attempt := func() { // what a failed sign-in does: two calls
		l.Wait(ctx, "alice", "192.0.2.1")
		l.Fail(ctx, "alice", "192.0.2.1")
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(logs.String()), "\n") }
	// Fail also cleans up now and then, one more call.
	unlogged := func(line string) int {
		m := regexp.MustCompile(`failed_calls_not_logged=(\d+)`).FindStringSubmatch(line)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}

	attempt()
	if logs.Len() != 0 {
		t.Fatalf("logged while the store works:\n%s", logs.String())
	}
	store.down.Store(true)
	for range 50 {
		attempt()
		now = now.Add(time.Second)
	}
	got := lines()
	if len(got) != 1 || !strings.Contains(got[0], "level=WARN") || !strings.Contains(got[0], "failed_calls_not_logged=0") {
		t.Fatalf("50 s of failing sign-ins logged, want one warning:\n%s", logs.String())
	}
	now = now.Add(20 * time.Second) // a minute after the first warning
	attempt()
	got = lines()
	if len(got) != 2 || !strings.Contains(got[1], "level=WARN") || unlogged(got[1]) < 99 {
		t.Fatalf("a minute on, want a second warning counting the 99 or more calls left out:\n%s", logs.String())
	}
	store.down.Store(false)
	attempt()
	attempt()
	got = lines()
	if len(got) != 3 || !strings.Contains(got[2], "level=INFO") || !strings.Contains(got[2], "work again") ||
		unlogged(got[2]) < 1 {
		t.Fatalf("after the store came back, want one line saying so:\n%s", logs.String())
	}
}

func TestCredentialsSessionsAndAudit(t *testing.T) {
	eachDB(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		admin := &metadata.User{Username: "root", IsAdmin: true}
		u := &metadata.User{Username: "alice", Email: "alice@example.test"}
		for _, x := range []*metadata.User{admin, u} {
			if err := db.CreateUser(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		svc := identity.New(db, &auth.Chain{}, nil, slog.New(slog.DiscardHandler))
		p, secret, err := svc.CreateAppPassword(ctx, u, "laptop", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"alice", "alice@example.test"} {
			if got, err := svc.Login(ctx, identity.LoginRequest{Username: name, Password: secret, AllowAppPassword: true}); err != nil || got.ID != u.ID {
				t.Fatalf("app password as %s: %v", name, err)
			}
		}
		if _, err := svc.Login(ctx, identity.LoginRequest{Username: "alice", Password: secret}); err == nil {
			t.Fatal("app password accepted where only account passwords are")
		}
		list, _ := db.AppPasswords(ctx, u.ID)
		if len(list) != 1 || list[0].LastUsedAt.IsZero() {
			t.Fatalf("app passwords %+v", list)
		}
		if err := svc.RevokeAppPassword(ctx, admin, p.ID, ""); err == nil {
			t.Fatal("revoked someone else's app password")
		}
		if err := svc.RevokeAppPassword(ctx, u, p.ID, ""); err != nil {
			t.Fatal(err)
		}

		tok, tsecret, err := svc.CreateToken(ctx, admin, "ci", "alice", []string{"files:read"}, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, scopes, err := svc.TokenUser(ctx, tsecret); err != nil || got.ID != u.ID || len(scopes) != 1 {
			t.Fatalf("token: %v %v %v", got, scopes, err)
		}
		db.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		if _, _, err := svc.TokenUser(ctx, tsecret); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("expired token: %v", err)
		}
		db.Now = time.Now
		if err := svc.RevokeToken(ctx, admin, tok.ID, ""); err != nil {
			t.Fatal(err)
		}

		now := time.Now()
		for _, id := range []string{"s1", "s2", "s3"} {
			db.CreateSession(ctx, &metadata.Session{ID: id, UserID: u.ID, CSRFToken: "c", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
		}
		if err := db.DeleteUserSession(ctx, admin.ID, "s1"); err != metadata.ErrNotFound {
			t.Fatalf("deleted another user's session: %v", err)
		}
		db.DeleteUserSession(ctx, u.ID, "s1")
		db.DeleteOtherSessions(ctx, u.ID, "s2")
		if ss, _ := db.UserSessions(ctx, u.ID); len(ss) != 1 || ss[0].ID != "s2" {
			t.Fatalf("sessions left: %+v", ss)
		}

		all, _ := db.Audit(ctx, metadata.AuditFilter{})
		page, _ := db.Audit(ctx, metadata.AuditFilter{Limit: 2})
		rest, _ := db.Audit(ctx, metadata.AuditFilter{Before: page[1].Seq})
		if len(all) < 5 || len(page) != 2 || len(rest) != len(all)-2 || page[0].Seq <= page[1].Seq {
			t.Fatalf("audit paging: all %d, page %d, rest %d", len(all), len(page), len(rest))
		}
		if ev, _ := db.Audit(ctx, metadata.AuditFilter{Action: "token.create", Actor: "root", Since: now.Add(-time.Minute)}); len(ev) != 1 {
			t.Fatalf("filtered audit: %d events", len(ev))
		}
	})
}
