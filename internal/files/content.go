package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
)

// Conflict policies for uploads of a name that already exists.
const (
	ConflictFail    = "fail"    // 409
	ConflictReplace = "replace" // a new version of the existing file
	ConflictRename  = "rename"  // keep both: "name (2).ext"
)

// UploadRequest describes an upload. Either NodeID (a new version of that
// file) or ParentID and Name (a file in that folder) is set.
type UploadRequest struct {
	NodeID   string
	ParentID string
	Name     string
	Body     io.Reader
	// Size is the exact length of Body, or -1 if unknown (chunked).
	Size int64
	// Conflict is what to do when Name exists: ConflictFail (default),
	// ConflictReplace or ConflictRename.
	Conflict string
	// IfMatch, if set, must equal the current ETag of the file being
	// replaced. IfNoneMatch "*" means the name must not exist.
	IfMatch     string
	IfNoneMatch string
	// SHA256, if set (hex), must match the received bytes.
	SHA256 string
	// MTime is the modification time to record; zero means now.
	MTime time.Time
}

// Uploads in flight, for metrics.
var uploadsInFlight atomic.Int64

// UploadsInFlight returns the number of uploads currently streaming.
func UploadsInFlight() int64 { return uploadsInFlight.Load() }

// Upload stores a file. The bytes are streamed to the blob store and
// hashed on the way; only when all of them are stored is the file (or its
// new version) committed, in one transaction. If the client goes away
// half-way, nothing becomes visible.
func (s *Service) Upload(ctx context.Context, u *User, req UploadRequest) (*Node, error) {
	if req.Conflict == "" {
		req.Conflict = ConflictFail
	}
	switch req.Conflict {
	case ConflictFail, ConflictReplace, ConflictRename:
	default:
		return nil, errorf(CodeInvalidRequest, "Unknown conflict policy %q (use fail, replace or rename).", req.Conflict)
	}
	if req.SHA256 != "" {
		req.SHA256 = strings.ToLower(req.SHA256)
		if b, err := hex.DecodeString(req.SHA256); err != nil || len(b) != sha256.Size {
			return nil, errorf(CodeInvalidRequest, "The SHA-256 checksum must be 64 hexadecimal characters.")
		}
	}
	// Check everything that can be checked before any byte is read, so a
	// doomed upload fails fast instead of after gigabytes.
	parentID, name, spaceID, err := s.uploadTarget(ctx, u, &req)
	if err != nil {
		return nil, err
	}
	blob, err := s.putBlob(ctx, req.Body, req.Size, req.SHA256)
	if err != nil {
		return nil, err
	}
	if req.Size < 0 {
		// The size was unknown up front: check the quota now.
		if err := s.checkQuota(ctx, spaceID, blob.Size); err != nil {
			s.deleteBlobs(ctx, []string{blob.ID})
			return nil, err
		}
	}
	n, err := s.commitUpload(ctx, u, parentID, name, blob, req)
	if err != nil {
		s.deleteBlobs(ctx, []string{blob.ID})
		return nil, err
	}
	return n, nil
}

func (s *Service) precheck(ctx context.Context, parentID, name string, req UploadRequest) error {
	existing, err := s.DB.LiveChild(ctx, parentID, name)
	if errors.Is(err, metadata.ErrNotFound) {
		if req.IfMatch != "" {
			return errorf(CodePreconditionFailed, "%q does not exist.", name)
		}
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case req.IfNoneMatch == "*":
		return errorf(CodePreconditionFailed, "%q already exists.", name)
	case req.IfMatch != "" && req.IfMatch != existing.ETag:
		return errorf(CodePreconditionFailed, "%q was changed by someone else.", name)
	case existing.IsFolder() && req.Conflict != ConflictRename:
		return errorf(CodeConflict, "A folder named %q already exists here.", name)
	case req.Conflict == ConflictFail:
		return errorf(CodeConflict, "A file named %q already exists here.", name)
	}
	return nil
}

// putBlob streams body into a new blob, hashing it on the way.
func (s *Service) putBlob(ctx context.Context, body io.Reader, size int64, wantSHA string) (*metadata.Blob, error) {
	uploadsInFlight.Add(1)
	defer uploadsInFlight.Add(-1)
	h := newHashingReader(body)
	defer h.Close()
	key := metadata.NewID()
	if err := s.Blobs.Put(ctx, key, h, size); err != nil {
		switch {
		case errors.Is(err, storage.ErrSizeMismatch) || h.err != nil || ctx.Err() != nil:
			return nil, &Error{Code: CodeIncomplete, Message: fmt.Sprintf(
				"The upload ended after %d bytes, before all of the file arrived; nothing was saved.", h.n), Err: err}
		case errors.Is(err, storage.ErrUnavailable):
			return nil, &Error{Code: CodeUnavailable, Message: "File storage is unavailable; try again shortly.", Err: err}
		}
		return nil, fmt.Errorf("store blob: %w", err)
	}
	sum := hex.EncodeToString(h.Sum())
	if size >= 0 && h.n != size {
		s.deleteBlobs(ctx, []string{key})
		return nil, &Error{Code: CodeIncomplete, Message: fmt.Sprintf("Received %d bytes, expected %d; nothing was saved.", h.n, size)}
	}
	if wantSHA != "" && wantSHA != sum {
		s.deleteBlobs(ctx, []string{key})
		return nil, errorf(CodeInvalidRequest, "The content's SHA-256 is %s, not %s as declared; nothing was saved.", sum, wantSHA)
	}
	return &metadata.Blob{ID: key, Size: h.n, SHA256: sum}, nil
}

func (s *Service) commitUpload(ctx context.Context, u *User, parentID, name string, blob *metadata.Blob, req UploadRequest) (*Node, error) {
	mtime := req.MTime
	if mtime.IsZero() {
		mtime = s.DB.Now()
	}
	ctype := contentType(name)
	var result *Node
	// The bytes are stored: commit even if the client hung up right after
	// the last byte, so an acknowledged-by-TCP upload is not lost.
	ctx = context.WithoutCancel(ctx)
	err := s.tx(ctx, func(tx *metadata.Tx) error {
		parent, err := liveFolder(ctx, tx, parentID)
		if err != nil {
			return err
		}
		if err := tx.InsertBlob(ctx, blob); err != nil {
			return err
		}
		target := name
		existing, err := tx.LiveChild(ctx, parentID, name)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
			existing = nil
			if req.IfMatch != "" {
				return errorf(CodePreconditionFailed, "%q no longer exists.", name)
			}
		case err != nil:
			return err
		case req.IfNoneMatch == "*":
			return errorf(CodePreconditionFailed, "%q already exists.", name)
		case req.IfMatch != "" && req.IfMatch != existing.ETag:
			return errorf(CodePreconditionFailed, "%q was changed by someone else while uploading.", name)
		case req.Conflict == ConflictRename:
			ext := path.Ext(name)
			target = s.freeNameTx(ctx, tx, parentID, strings.TrimSuffix(name, ext), ext)
			existing = nil
		case existing.IsFolder():
			return errorf(CodeConflict, "A folder named %q already exists here.", name)
		case req.Conflict == ConflictFail:
			return errorf(CodeConflict, "A file named %q was created by someone else while uploading.", name)
		}
		v := &metadata.Version{BlobID: blob.ID, Size: blob.Size, SHA256: blob.SHA256, MTime: mtime, CreatedBy: u.ID}
		etag := metadata.NewID()
		if existing != nil {
			v.NodeID = existing.ID
			if err := tx.InsertVersion(ctx, v); err != nil {
				return err
			}
			if err := tx.SetContent(ctx, existing.ID, v.ID, v.Size, mtime, etag, ctype, u.ID); err != nil {
				return err
			}
			result = existing
			return s.changed(ctx, tx, parent.ID, v.Size-existing.Size, existing, metadata.OpModify)
		}
		if err := checkFree(ctx, tx, parentID, target, ""); err != nil {
			return err
		}
		n := &Node{SpaceID: parent.SpaceID, ParentID: parent.ID, Name: target, NameFold: FoldName(target),
			Kind: metadata.KindFile, MTime: mtime, ETag: etag, ContentType: ctype, CreatedBy: u.ID, ModifiedBy: u.ID}
		if err := tx.InsertNode(ctx, n); err != nil {
			return err
		}
		v.NodeID = n.ID
		if err := tx.InsertVersion(ctx, v); err != nil {
			return err
		}
		if err := tx.SetContent(ctx, n.ID, v.ID, v.Size, mtime, etag, ctype, u.ID); err != nil {
			return err
		}
		result = n
		return s.changed(ctx, tx, parent.ID, v.Size, n, metadata.OpCreate)
	})
	if err != nil {
		return nil, err
	}
	return s.DB.NodeByID(ctx, result.ID)
}

func (s *Service) freeNameTx(ctx context.Context, tx *metadata.Tx, parentID, base, ext string) string {
	for i := 2; ; i++ {
		name := fmt.Sprintf("%s (%d)%s", base, i, ext)
		if err := checkFree(ctx, tx, parentID, name, ""); err == nil || i > 10000 {
			return name
		}
	}
}

func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Open returns a file and its contents for reading. The caller closes the
// object.
func (s *Service) Open(ctx context.Context, u *User, id string) (*Node, storage.Object, error) {
	n, _, err := s.node(ctx, u, id, RoleViewer)
	if err != nil {
		return nil, nil, err
	}
	if n.IsFolder() {
		return nil, nil, errorf(CodeInvalidRequest, "%q is a folder; download it as a zip archive instead.", n.Name)
	}
	obj, err := s.openBlob(ctx, n.BlobID)
	if err != nil {
		return nil, nil, err
	}
	return n, obj, nil
}

func (s *Service) openBlob(ctx context.Context, blobID string) (storage.Object, error) {
	obj, err := s.Blobs.Open(ctx, blobID)
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return nil, &Error{Code: CodeUnavailable, Message: "File storage is unavailable; try again shortly.", Err: err}
	case err != nil:
		return nil, fmt.Errorf("open blob %s: %w", blobID, err)
	}
	return obj, nil
}

// Versions lists a file's versions, newest (the current one) first.
func (s *Service) Versions(ctx context.Context, u *User, id string) ([]*metadata.Version, error) {
	n, _, err := s.node(ctx, u, id, RoleViewer)
	if err != nil {
		return nil, err
	}
	if n.IsFolder() {
		return nil, errorf(CodeInvalidRequest, "Folders have no versions.")
	}
	return s.DB.Versions(ctx, n.ID)
}

// OpenVersion returns the contents of one version of a file.
func (s *Service) OpenVersion(ctx context.Context, u *User, id, versionID string) (*Node, *metadata.Version, storage.Object, error) {
	n, _, err := s.node(ctx, u, id, RoleViewer)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := s.DB.VersionByID(ctx, n.ID, versionID)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil, nil, errorf(CodeNotFound, "No such version.")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	obj, err := s.openBlob(ctx, v.BlobID)
	if err != nil {
		return nil, nil, nil, err
	}
	return n, v, obj, nil
}

// RestoreVersion makes an old version current again. It adds a new version
// with the old contents, so the history keeps what is replaced.
func (s *Service) RestoreVersion(ctx context.Context, u *User, id, versionID string) (*Node, error) {
	n, _, err := s.node(ctx, u, id, RoleEditor)
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		old, err := tx.VersionByID(ctx, n.ID, versionID)
		if errors.Is(err, metadata.ErrNotFound) {
			return errorf(CodeNotFound, "No such version.")
		}
		if err != nil {
			return err
		}
		cur, err := tx.NodeByID(ctx, n.ID)
		if err != nil {
			return notFoundOr(err)
		}
		if !cur.Live() {
			return errNotFound
		}
		v := &metadata.Version{NodeID: n.ID, BlobID: old.BlobID, Size: old.Size, SHA256: old.SHA256, MTime: s.DB.Now(), CreatedBy: u.ID}
		if err := tx.InsertVersion(ctx, v); err != nil {
			return err
		}
		if err := tx.SetContent(ctx, n.ID, v.ID, v.Size, v.MTime, metadata.NewID(), cur.ContentType, u.ID); err != nil {
			return err
		}
		return s.changed(ctx, tx, cur.ParentID, v.Size-cur.Size, cur, metadata.OpModify)
	})
	if err != nil {
		return nil, err
	}
	return s.DB.NodeByID(ctx, n.ID)
}

// SetMTime records a client-supplied modification time.
func (s *Service) SetMTime(ctx context.Context, u *User, id string, mtime time.Time) (*Node, error) {
	n, _, err := s.node(ctx, u, id, RoleEditor)
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *metadata.Tx) error {
		if err := tx.SetMTime(ctx, n.ID, mtime); err != nil {
			return err
		}
		if n.ParentID == "" {
			return nil
		}
		return s.changed(ctx, tx, n.ParentID, 0, n, metadata.OpModify)
	})
	if err != nil {
		return nil, err
	}
	return s.DB.NodeByID(ctx, n.ID)
}

// Props returns a node's WebDAV dead properties.
func (s *Service) Props(ctx context.Context, u *User, id string) ([]metadata.Prop, error) {
	if _, _, err := s.node(ctx, u, id, RoleViewer); err != nil {
		return nil, err
	}
	return s.DB.Props(ctx, id)
}

// PatchProps sets (Value != nil) and removes (Value == nil) dead
// properties atomically.
func (s *Service) PatchProps(ctx context.Context, u *User, id string, set []metadata.Prop, remove []metadata.Prop) error {
	if _, _, err := s.node(ctx, u, id, RoleEditor); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *metadata.Tx) error {
		for _, p := range set {
			if err := tx.SetProp(ctx, id, p); err != nil {
				return err
			}
		}
		for _, p := range remove {
			if err := tx.RemoveProp(ctx, id, p.NS, p.Name); err != nil {
				return err
			}
		}
		return nil
	})
}
