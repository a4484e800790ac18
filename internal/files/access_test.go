package files_test

import (
	"context"
	"strings"
	"testing"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// Team space access through group links, on both engines.
func TestGroupAccessAndQuota(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		quota := int64(8)
		sp, err := e.db.CreateSpace(ctx, &metadata.Space{Kind: metadata.SpaceTeam, Name: "Team", QuotaBytes: &quota})
		if err != nil {
			t.Fatal(err)
		}
		readers := &metadata.Group{Name: "readers", Provider: "ldap"}
		writers := &metadata.Group{Name: "writers", Provider: "local"}
		for _, g := range []*metadata.Group{readers, writers} {
			if err := e.db.CreateGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.Space(ctx, e.bob, sp.ID); files.ErrorCode(err) != files.CodeNotFound {
			t.Fatalf("bob before any link: %v", err)
		}
		e.db.LinkGroup(ctx, sp.ID, readers.ID, metadata.RoleViewer)
		e.db.LinkGroup(ctx, sp.ID, writers.ID, metadata.RoleViewer)
		e.db.LinkGroup(ctx, sp.ID, writers.ID, metadata.RoleEditor) // replaces
		if err := e.db.SetUserGroups(ctx, e.bob.ID, "ldap", []string{"readers", "unlinked"}); err != nil {
			t.Fatal(err)
		}
		sv, err := e.svc.Space(ctx, e.bob, sp.ID)
		if err != nil || sv.Role != files.RoleViewer {
			t.Fatalf("bob as reader: %v %v", sv.Role, err)
		}
		if _, err := e.svc.Upload(ctx, e.bob, files.UploadRequest{ParentID: sp.RootID, Name: "x", Body: strings.NewReader("x"), Size: 1}); files.ErrorCode(err) != files.CodeForbidden {
			t.Fatalf("viewer upload: %v", err)
		}
		e.db.AddGroupMember(ctx, writers.ID, e.bob.ID)
		list, err := e.svc.Spaces(ctx, e.bob)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[1].ID != sp.ID || list[1].Role != files.RoleEditor {
			t.Fatalf("bob's spaces: %+v", list)
		}
		if _, err := e.svc.Upload(ctx, e.bob, files.UploadRequest{ParentID: sp.RootID, Name: "a", Body: strings.NewReader("12345"), Size: 5}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Upload(ctx, e.bob, files.UploadRequest{ParentID: sp.RootID, Name: "b", Body: strings.NewReader("12345"), Size: 5}); files.ErrorCode(err) != files.CodeQuotaExceeded {
			t.Fatalf("over quota: %v", err)
		}
		if used, _ := e.db.SpaceUsage(ctx, sp.ID); used != 5 {
			t.Fatalf("usage %d", used)
		}
		// Leaving the ldap group keeps the local one.
		e.db.SetUserGroups(ctx, e.bob.ID, "ldap", nil)
		if sv, _ := e.svc.Space(ctx, e.bob, sp.ID); sv.Role != files.RoleEditor {
			t.Fatalf("role after leaving readers: %v", sv.Role)
		}
		e.db.UnlinkGroup(ctx, sp.ID, writers.ID)
		if _, err := e.svc.Space(ctx, e.bob, sp.ID); files.ErrorCode(err) != files.CodeNotFound {
			t.Fatalf("after unlinking: %v", err)
		}
		if err := e.db.WithTx(ctx, func(tx *metadata.Tx) error { return tx.DeleteEmptySpace(ctx, sp.ID) }); err != metadata.ErrConflict {
			t.Fatalf("delete non-empty space: %v", err)
		}
		empty, _ := e.db.CreateSpace(ctx, &metadata.Space{Kind: metadata.SpaceTeam, Name: "Empty"})
		e.db.LinkGroup(ctx, empty.ID, readers.ID, metadata.RoleViewer)
		if err := e.db.WithTx(ctx, func(tx *metadata.Tx) error { return tx.DeleteEmptySpace(ctx, empty.ID) }); err != nil {
			t.Fatalf("delete empty space: %v", err)
		}
	})
}
