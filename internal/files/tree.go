package files

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/veloxhq/velox/internal/metadata"
)

// checkFree makes sure name can be added to folder parentID: no live
// sibling has it, or one that differs only in case. ignoreID is a node
// allowed to hold the name (the one being renamed).
func checkFree(ctx context.Context, tx *metadata.Tx, parentID, name, ignoreID string) error {
	existing, err := tx.LiveChild(ctx, parentID, name)
	switch {
	case err == nil && existing.ID != ignoreID:
		return &Error{Code: CodeConflict, Message: fmt.Sprintf("An item named %q already exists here.", name)}
	case err != nil && !errors.Is(err, metadata.ErrNotFound):
		return err
	}
	// The node being renamed may differ only in case from its new name
	// ("a.txt" to "A.txt"): that is a rename, not a clash.
	other, err := tx.CaseClash(ctx, parentID, name, FoldName(name), ignoreID)
	if err != nil {
		return err
	}
	if other != "" {
		return &Error{Code: CodeConflict, Message: fmt.Sprintf(
			"%q differs from the existing %q only in letter case; Windows and macOS cannot keep both in one folder.", name, other)}
	}
	return nil
}

// liveFolder loads a node inside a transaction and checks it is a live folder.
func liveFolder(ctx context.Context, tx *metadata.Tx, id string) (*Node, error) {
	n, err := tx.NodeByID(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, errorf(CodeNotFound, "The folder no longer exists.")
	}
	if err != nil {
		return nil, err
	}
	if !n.Live() {
		return nil, errorf(CodeNotFound, "The folder is in the trash.")
	}
	if !n.IsFolder() {
		return nil, errorf(CodeConflict, "%q is a file, not a folder.", n.Name)
	}
	return n, nil
}

// Mkdir creates a folder.
func (s *Service) Mkdir(ctx context.Context, u *User, parentID, name string) (*Node, error) {
	name, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.node(ctx, u, parentID, RoleEditor); err != nil {
		return nil, err
	}
	var n *Node
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		parent, err := liveFolder(ctx, tx, parentID)
		if err != nil {
			return err
		}
		if err := checkFree(ctx, tx, parent.ID, name, ""); err != nil {
			return err
		}
		n = &Node{SpaceID: parent.SpaceID, ParentID: parent.ID, Name: name, NameFold: FoldName(name),
			Kind: metadata.KindFolder, CreatedBy: u.ID, ModifiedBy: u.ID}
		if err := tx.InsertNode(ctx, n); err != nil {
			return err
		}
		return s.changed(ctx, tx, parent.ID, 0, n, metadata.OpCreate)
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// MkdirAll creates the folder at path in a space and any missing parents.
// Existing folders on the way are fine; an existing file is a conflict.
func (s *Service) MkdirAll(ctx context.Context, u *User, spaceID, p string) (*Node, error) {
	sv, err := s.Space(ctx, u, spaceID)
	if err != nil {
		return nil, err
	}
	names, err := SplitPath(p)
	if err != nil {
		return nil, err
	}
	if !sv.Role.CanWrite() {
		return nil, errorf(CodeForbidden, "You have read-only access to %q.", sv.Name)
	}
	cur, err := s.DB.NodeByID(ctx, sv.RootID)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		next, err := s.DB.LiveChild(ctx, cur.ID, name)
		if errors.Is(err, metadata.ErrNotFound) {
			next, err = s.Mkdir(ctx, u, cur.ID, name)
			if ErrorCode(err) == CodeConflict {
				// Created concurrently by someone else: use theirs.
				next, err = s.DB.LiveChild(ctx, cur.ID, name)
			}
		}
		if err != nil {
			return nil, err
		}
		if !next.IsFolder() {
			return nil, errorf(CodeConflict, "%q is a file, not a folder.", name)
		}
		cur = next
	}
	return cur, nil
}

// changed records a change to n (in folder parentID, whose size changes by
// sizeDelta): new ETags up to the root, the journal entry, and a wake-up
// for long-polling readers.
func (s *Service) changed(ctx context.Context, tx *metadata.Tx, parentID string, sizeDelta int64, n *Node, op string) error {
	if err := tx.TouchAncestors(ctx, parentID, sizeDelta); err != nil {
		return err
	}
	if _, err := tx.AppendChange(ctx, n.SpaceID, n.ID, op); err != nil {
		return err
	}
	if p, ok := s.pending.Load(tx); ok {
		list := p.(*[]string)
		*list = append(*list, n.SpaceID)
	} else {
		s.changes.notify(n.SpaceID)
	}
	return nil
}

// MoveRequest says where to move or copy a node. Empty fields keep the
// current value (so a rename sets only Name).
type MoveRequest struct {
	ParentID string
	Name     string
	// Overwrite replaces (moves to the trash) an existing item at the
	// destination instead of failing with a conflict.
	Overwrite bool
	// IfMatch, if set, must equal the node's current ETag.
	IfMatch string
}

// Move renames and/or moves a node. It is a single row update however many
// files are below it.
func (s *Service) Move(ctx context.Context, u *User, id string, req MoveRequest) (*Node, error) {
	n, _, err := s.node(ctx, u, id, RoleEditor)
	if err != nil {
		return nil, err
	}
	if n.ParentID == "" {
		return nil, errorf(CodeInvalidRequest, "The root folder of a space cannot be moved or renamed.")
	}
	name, destID, err := s.destination(ctx, u, n, req)
	if err != nil {
		return nil, err
	}
	if destID == n.ParentID && name == n.Name {
		return n, nil
	}
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		n, err = tx.NodeByID(ctx, id)
		if err != nil {
			return notFoundOr(err)
		}
		if !n.Live() {
			return errNotFound
		}
		if req.IfMatch != "" && req.IfMatch != n.ETag {
			return errorf(CodePreconditionFailed, "%q was changed by someone else.", n.Name)
		}
		dest, err := liveFolder(ctx, tx, destID)
		if err != nil {
			return err
		}
		if dest.SpaceID != n.SpaceID {
			return errorf(CodeInvalidRequest, "Moving between spaces is not supported; copy instead.")
		}
		if n.IsFolder() {
			anc, err := tx.Ancestors(ctx, dest.ID)
			if err != nil {
				return err
			}
			for _, a := range anc {
				if a == n.ID {
					return errorf(CodeConflict, "A folder cannot be moved into itself or one of its subfolders.")
				}
			}
		}
		if err := s.clearDestination(ctx, tx, u, dest.ID, name, n.ID, req.Overwrite); err != nil {
			return err
		}
		oldParent := n.ParentID
		if err := tx.MoveNode(ctx, n.ID, dest.ID, name, FoldName(name), u.ID); err != nil {
			return err
		}
		if err := tx.TouchAncestors(ctx, oldParent, -n.Size); err != nil {
			return err
		}
		n.ParentID, n.Name, n.NameFold = dest.ID, name, FoldName(name)
		return s.changed(ctx, tx, dest.ID, n.Size, n, metadata.OpMove)
	})
	if err != nil {
		return nil, err
	}
	return s.DB.NodeByID(ctx, id)
}

// destination validates a move or copy target and checks write access to it.
func (s *Service) destination(ctx context.Context, u *User, n *Node, req MoveRequest) (name, parentID string, err error) {
	name, parentID = n.Name, n.ParentID
	if req.Name != "" {
		if name, err = CleanName(req.Name); err != nil {
			return "", "", err
		}
	}
	if req.ParentID != "" {
		parentID = req.ParentID
	}
	if _, _, err := s.node(ctx, u, parentID, RoleEditor); err != nil {
		if ErrorCode(err) == CodeNotFound {
			return "", "", errorf(CodeNotFound, "The destination folder does not exist.")
		}
		return "", "", err
	}
	return name, parentID, nil
}

// clearDestination makes name free in folder destID: with overwrite, an
// existing item is moved to the trash (so nothing is lost); without, it is
// a conflict.
func (s *Service) clearDestination(ctx context.Context, tx *metadata.Tx, u *User, destID, name, selfID string, overwrite bool) error {
	err := checkFree(ctx, tx, destID, name, selfID)
	if err == nil || !overwrite {
		return err
	}
	existing, lerr := tx.LiveChild(ctx, destID, name)
	if lerr != nil {
		return err // a case-only clash: overwriting would not resolve it
	}
	if err := tx.TrashSubtree(ctx, existing.ID, u.ID); err != nil {
		return err
	}
	return s.changed(ctx, tx, destID, -existing.Size, existing, metadata.OpDelete)
}

// Copy copies a node (a whole folder with everything live below it) to a
// new place. Contents are shared: a copy adds rows, never bytes.
func (s *Service) Copy(ctx context.Context, u *User, id string, req MoveRequest) (*Node, error) {
	n, _, err := s.node(ctx, u, id, RoleViewer)
	if err != nil {
		return nil, err
	}
	if req.ParentID == "" && req.Name == "" {
		req.Name = s.copyName(ctx, n)
	}
	if n.ParentID == "" && req.ParentID == "" {
		return nil, errorf(CodeInvalidRequest, "Choose a destination folder to copy the root folder to.")
	}
	name, destID, err := s.destination(ctx, u, n, req)
	if err != nil {
		return nil, err
	}
	var top *Node
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		dest, err := liveFolder(ctx, tx, destID)
		if err != nil {
			return err
		}
		if n.IsFolder() {
			anc, err := tx.Ancestors(ctx, dest.ID)
			if err != nil {
				return err
			}
			for _, a := range anc {
				if a == n.ID {
					return errorf(CodeConflict, "A folder cannot be copied into itself or one of its subfolders.")
				}
			}
		}
		if err := s.clearDestination(ctx, tx, u, dest.ID, name, "", req.Overwrite); err != nil {
			return err
		}
		src, err := tx.Subtree(ctx, n.ID)
		if err != nil {
			return err
		}
		newIDs := map[string]string{}
		for i, c := range src {
			if !c.Live() {
				continue
			}
			parent, ok := newIDs[c.ParentID]
			cp := &Node{SpaceID: dest.SpaceID, ParentID: parent, Name: c.Name, NameFold: c.NameFold, Kind: c.Kind,
				Size: c.Size, MTime: c.MTime, ContentType: c.ContentType, CreatedBy: u.ID, ModifiedBy: u.ID}
			if i == 0 {
				cp.ParentID, cp.Name, cp.NameFold = dest.ID, name, FoldName(name)
			} else if !ok {
				continue // below a trashed folder
			}
			cp.ID = metadata.NewID()
			newIDs[c.ID] = cp.ID
			if err := tx.InsertNode(ctx, cp); err != nil {
				return err
			}
			if c.Kind == metadata.KindFile && c.VersionID != "" {
				v, err := tx.VersionByID(ctx, c.ID, c.VersionID)
				if err != nil {
					return err
				}
				nv := &metadata.Version{NodeID: cp.ID, BlobID: v.BlobID, Size: v.Size, SHA256: v.SHA256, MTime: v.MTime, CreatedBy: u.ID}
				if err := tx.InsertVersion(ctx, nv); err != nil {
					return err
				}
				if err := tx.SetContent(ctx, cp.ID, nv.ID, nv.Size, c.MTime, cp.ETag, c.ContentType, u.ID); err != nil {
					return err
				}
			}
			props, err := tx.Props(ctx, c.ID)
			if err != nil {
				return err
			}
			for _, p := range props {
				if err := tx.SetProp(ctx, cp.ID, p); err != nil {
					return err
				}
			}
			if i == 0 {
				top = cp
			}
		}
		return s.changed(ctx, tx, dest.ID, top.Size, top, metadata.OpCreate)
	})
	if err != nil {
		return nil, err
	}
	return s.DB.NodeByID(ctx, top.ID)
}

// copyName picks "name (copy).ext" for a copy in the same folder.
func (s *Service) copyName(ctx context.Context, n *Node) string {
	ext := path.Ext(n.Name)
	if n.IsFolder() || ext == n.Name {
		ext = ""
	}
	base := strings.TrimSuffix(n.Name, ext)
	return s.freeName(ctx, n.ParentID, base+" (copy)", ext)
}

// freeName returns base+ext, or base+" (N)"+ext, whichever is free first.
func (s *Service) freeName(ctx context.Context, parentID, base, ext string) string {
	for i := 1; ; i++ {
		name := base + ext
		if i > 1 {
			name = fmt.Sprintf("%s (%d)%s", base, i, ext)
		}
		if len(name) > MaxNameBytes {
			return name // CleanName will reject it with a clear message
		}
		_, err := s.DB.LiveChild(ctx, parentID, name)
		if errors.Is(err, metadata.ErrNotFound) {
			if other, _ := s.DB.CaseClash(ctx, parentID, name, FoldName(name), ""); other == "" {
				return name
			}
		}
		if i > 10000 {
			return name
		}
	}
}

// Delete moves a node and everything below it to the trash.
func (s *Service) Delete(ctx context.Context, u *User, id, ifMatch string) error {
	n, _, err := s.node(ctx, u, id, RoleEditor)
	if err != nil {
		return err
	}
	if n.ParentID == "" {
		return errorf(CodeInvalidRequest, "The root folder of a space cannot be deleted.")
	}
	return s.tx(ctx, func(tx *metadata.Tx) error {
		n, err := tx.NodeByID(ctx, id)
		if err != nil {
			return notFoundOr(err)
		}
		if !n.Live() {
			return errNotFound
		}
		if ifMatch != "" && ifMatch != n.ETag {
			return errorf(CodePreconditionFailed, "%q was changed by someone else.", n.Name)
		}
		if err := tx.TrashSubtree(ctx, n.ID, u.ID); err != nil {
			return err
		}
		return s.changed(ctx, tx, n.ParentID, -n.Size, n, metadata.OpDelete)
	})
}

// Trash lists what was deleted in a space, newest first.
func (s *Service) Trash(ctx context.Context, u *User, spaceID string) ([]*Node, error) {
	if _, err := s.Space(ctx, u, spaceID); err != nil {
		return nil, err
	}
	return s.DB.Trash(ctx, spaceID, 0)
}

// trashed loads a node the user deleted (a trash entry) and checks access.
func (s *Service) trashed(ctx context.Context, u *User, id string, want Role) (*Node, SpaceView, error) {
	n, err := s.DB.NodeByID(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, SpaceView{}, errorf(CodeNotFound, "No such item in the trash.")
	}
	if err != nil {
		return nil, SpaceView{}, err
	}
	sv, err := s.Space(ctx, u, n.SpaceID)
	if err != nil || n.TrashedAt.IsZero() {
		return nil, SpaceView{}, errorf(CodeNotFound, "No such item in the trash.")
	}
	if sv.Role < want {
		if sv.Role.CanWrite() {
			return nil, SpaceView{}, errorf(CodeForbidden, "Only a manager of %q can delete items for good.", sv.Name)
		}
		return nil, SpaceView{}, errorf(CodeForbidden, "You have read-only access to %q.", sv.Name)
	}
	return n, sv, nil
}

// RestoreRequest optionally restores to another place than the original.
type RestoreRequest struct {
	ParentID string
	Name     string
}

// Restore takes a node out of the trash, back to where it was (or to the
// requested place). If the name is taken or the original folder is gone it
// fails with a conflict that says so.
func (s *Service) Restore(ctx context.Context, u *User, id string, req RestoreRequest) (*Node, error) {
	n, _, err := s.trashed(ctx, u, id, RoleEditor)
	if err != nil {
		return nil, err
	}
	name, parentID := n.Name, n.ParentID
	if req.Name != "" {
		if name, err = CleanName(req.Name); err != nil {
			return nil, err
		}
	}
	if req.ParentID != "" {
		if _, _, err := s.node(ctx, u, req.ParentID, RoleEditor); err != nil {
			return nil, err
		}
		parentID = req.ParentID
	}
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		parent, err := tx.NodeByID(ctx, parentID)
		if err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return err
		}
		if err != nil || !parent.Live() {
			return errorf(CodeConflict, "The folder %q was in is deleted too; restore it first or choose another folder.", n.Name)
		}
		if parent.SpaceID != n.SpaceID {
			return errorf(CodeInvalidRequest, "Items can only be restored within their space.")
		}
		if err := checkFree(ctx, tx, parentID, name, ""); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code == CodeConflict {
				e.Message += " Restore it under another name."
			}
			return err
		}
		if err := tx.RestoreSubtree(ctx, n.ID, parentID, name, FoldName(name)); err != nil {
			return err
		}
		return s.changed(ctx, tx, parentID, n.Size, n, metadata.OpRestore)
	})
	if err != nil {
		return nil, err
	}
	return s.DB.NodeByID(ctx, id)
}

// Purge deletes a trash entry for good: rows first, then contents no
// other version shares.
//
// Purging needs the manager role: editors can delete to the trash and
// restore, but only managers (and a personal space's owner) destroy data.
func (s *Service) Purge(ctx context.Context, u *User, id string) error {
	n, _, err := s.trashed(ctx, u, id, RoleManager)
	if err != nil {
		return err
	}
	var blobs []string
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		blobs, err = tx.DeleteSubtree(ctx, n.ID)
		if err != nil {
			return err
		}
		_, err = tx.AppendChange(ctx, n.SpaceID, n.ID, metadata.OpPurge)
		return err
	})
	if err != nil {
		return err
	}
	s.deleteBlobs(ctx, blobs)
	return nil
}

// EmptyTrash purges everything in a space's trash.
func (s *Service) EmptyTrash(ctx context.Context, u *User, spaceID string) (int, error) {
	items, err := s.Trash(ctx, u, spaceID)
	if err != nil {
		return 0, err
	}
	for i, n := range items {
		if err := s.Purge(ctx, u, n.ID); err != nil && ErrorCode(err) != CodeNotFound {
			return i, err
		}
	}
	return len(items), nil
}

// deleteBlobs removes contents whose rows are gone. A failure leaves an
// orphan blob, which the garbage collector removes later; it is logged,
// not returned, because the user-visible operation already succeeded.
func (s *Service) deleteBlobs(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := s.Blobs.Delete(context.WithoutCancel(ctx), id); err != nil {
			s.Logger.Warn("delete blob failed; the garbage collector will retry", "blob", id, "err", err)
		}
	}
}
