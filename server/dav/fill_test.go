package dav

import (
	"context"
	"fmt"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// fillFolder inserts n empty folders into parent in one transaction:
// creating them one request at a time would make the test slow.
func fillFolder(e *env, parent *files.Node, n int) error {
	ctx := context.Background()
	return e.svc.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("entry-%05d", i)
			if err := tx.InsertNode(ctx, &metadata.Node{SpaceID: parent.SpaceID, ParentID: parent.ID, Name: name,
				NameFold: name, Kind: metadata.KindFolder}); err != nil {
				return err
			}
		}
		return nil
	})
}
