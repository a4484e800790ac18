package files_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// bulkTree inserts a folder holding n descendants (100 subfolders of n/100
// files) straight into the database.
func bulkTree(b *testing.B, e *env, n int) *metadata.Node {
	b.Helper()
	ctx := context.Background()
	top := &metadata.Node{SpaceID: e.space, ParentID: e.root, Name: "big", NameFold: "big", Kind: metadata.KindFolder}
	err := e.db.WithTx(ctx, func(tx *metadata.Tx) error {
		if err := tx.InsertNode(ctx, top); err != nil {
			return err
		}
		for d := 0; d < 100; d++ {
			dir := &metadata.Node{SpaceID: e.space, ParentID: top.ID, Name: fmt.Sprint("d", d), NameFold: fmt.Sprint("d", d), Kind: metadata.KindFolder}
			if err := tx.InsertNode(ctx, dir); err != nil {
				return err
			}
			for i := 0; i < n/100-1; i++ {
				name := fmt.Sprint("f", i)
				if err := tx.InsertNode(ctx, &metadata.Node{SpaceID: e.space, ParentID: dir.ID, Name: name, NameFold: name, Kind: metadata.KindFile}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return top
}

func benchEnv(b *testing.B) *env {
	return newEnv(b, "sqlite", filepath.Join(b.TempDir(), "meta.db"))
}

// BenchmarkRenameFolder100k renames (and moves) a folder with 100,000
// descendants: one row update plus the ancestors' ETags, whatever the size.
func BenchmarkRenameFolder100k(b *testing.B) {
	e := benchEnv(b)
	top := bulkTree(b, e, 100_000)
	other, err := e.svc.Mkdir(context.Background(), e.alice, e.root, "other")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		parent := e.root
		if i%2 == 1 {
			parent = other.ID
		}
		if _, err := e.svc.Move(context.Background(), e.alice, top.ID, files.MoveRequest{ParentID: parent, Name: fmt.Sprint("big-", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListFirstPage10k lists the first page (200, the API default) of
// a folder of 10,000 files.
func BenchmarkListFirstPage10k(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	dir, _ := e.svc.Mkdir(ctx, e.alice, e.root, "many")
	err := e.db.WithTx(ctx, func(tx *metadata.Tx) error {
		for i := 0; i < 10_000; i++ {
			name := fmt.Sprintf("file-%05d.txt", i)
			if err := tx.InsertNode(ctx, &metadata.Node{SpaceID: e.space, ParentID: dir.ID, Name: name, NameFold: name, Kind: metadata.KindFile, Size: int64(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, sort := range []string{metadata.SortName, metadata.SortSize} {
		b.Run(sort, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, err := e.svc.List(ctx, e.alice, dir.ID, metadata.ListOptions{Sort: sort, Limit: 200})
				if err != nil || len(p.Items) != 200 {
					b.Fatal(err)
				}
			}
		})
	}
}
