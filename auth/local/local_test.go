package local_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/metadata"
)

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	db, err := metadata.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hash, err := local.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*metadata.User{
		{Username: "alice", PasswordHash: hash},
		{Username: "dave", PasswordHash: hash, Disabled: true},
		{Username: "lena", Provider: "ldap"},
	} {
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	p := local.New(db)
	tests := []struct {
		user, pass string
		want       error
	}{
		{"alice", "correct horse", nil},
		{"alice", "wrong", auth.ErrInvalidCredentials},
		{"alice", "", auth.ErrInvalidCredentials},
		{"Alice", "correct horse", auth.ErrUnknownUser}, // usernames are exact
		{"nobody", "correct horse", auth.ErrUnknownUser},
		{"dave", "correct horse", auth.ErrDisabled},
		{"dave", "wrong", auth.ErrInvalidCredentials}, // no hint that dave exists but is disabled
		{"lena", "anything", auth.ErrUnknownUser},     // owned by another provider
	}
	for _, tc := range tests {
		id, err := p.Authenticate(ctx, tc.user, tc.pass)
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("Authenticate(%q, %q) error = %v, want %v", tc.user, tc.pass, err, tc.want)
		}
		if tc.want == nil && (id == nil || id.Username != tc.user || id.Provider != "local") {
			t.Errorf("Authenticate(%q) identity = %+v", tc.user, id)
		}
	}
}

func TestHashFormat(t *testing.T) {
	h1, _ := local.HashPassword("pw")
	h2, _ := local.HashPassword("pw")
	if h1 == h2 {
		t.Fatal("hashes of the same password must differ (random salt)")
	}
	if !local.VerifyPassword(h1, "pw") || local.VerifyPassword(h1, "pW") {
		t.Fatal("verify is wrong")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2id$v=19$m=0,t=0,p=0$$", "plaintext"} {
		if local.VerifyPassword(bad, "") || local.VerifyPassword(bad, "pw") {
			t.Errorf("malformed hash %q verified", bad)
		}
	}
}
