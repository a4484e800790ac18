package files

import (
	"context"

	"github.com/veloxhq/velox/internal/metadata"
)

// ChildProps returns the dead properties of children of a folder the user
// can see, keyed by node ID, in one query: a WebDAV Depth:1 listing of a
// large folder would otherwise cost one query per child. IDs that are not
// children of folderID are ignored.
func (s *Service) ChildProps(ctx context.Context, u *User, folderID string, ids []string) (map[string][]metadata.Prop, error) {
	if _, _, err := s.node(ctx, u, folderID, RoleViewer); err != nil {
		return nil, err
	}
	return s.DB.ChildProps(ctx, folderID, ids)
}
