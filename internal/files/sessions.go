package files

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
)

// DefaultUploadTTL is how long an unfinished upload session lives.
const DefaultUploadTTL = 24 * time.Hour

// DefaultChunkSize is the chunk size proposed to clients that do not ask
// for one: large enough for throughput, small enough to retry cheaply.
const DefaultChunkSize = 8 << 20

// preferredParts is the most chunks of the sessions whose chunk size the
// server chooses: above DefaultChunkSize × preferredParts chunks grow
// instead. Clients may choose smaller chunks, up to storage.MaxParts of
// them, but fewer parts make finishing cheaper (on Swift, one manifest
// rather than a manifest of manifests, and fewer segments to check).
const preferredParts = 1000

// SessionRequest starts a resumable upload: a new file (ParentID, Name) or
// a new version of a file (NodeID).
type SessionRequest struct {
	// ID names the session when the protocol lets the client name its
	// transfer (WebDAV chunked uploads); empty: a new random ID.
	ID        string
	ParentID  string
	Name      string
	NodeID    string
	Size      int64
	ChunkSize int64 // 0: chosen by the server
	SHA256    string
	Conflict  string
	IfMatch   string
	MTime     time.Time
}

func (s *Service) parts() (storage.Parts, error) {
	p, ok := s.Blobs.(storage.Parts)
	if !ok {
		return nil, errorf(CodeInvalidRequest, "This server's storage does not support resumable uploads; upload in one request.")
	}
	return p, nil
}

func (s *Service) uploadTTL() time.Duration {
	if s.UploadTTL > 0 {
		return s.UploadTTL
	}
	return DefaultUploadTTL
}

// chunkCount is the number of chunks of a session (at least one, so that
// an empty file is one empty chunk).
func chunkCount(size, chunk int64) int {
	if size == 0 {
		return 1
	}
	return int((size + chunk - 1) / chunk)
}

// chunkLen is the exact size of chunk i.
func chunkLen(size, chunk int64, i int) int64 {
	if rest := size - int64(i)*chunk; rest < chunk {
		return rest
	}
	return chunk
}

// CreateUploadSession checks the upload could succeed (access, name,
// conflicts, size limits) and opens a session for its chunks.
func (s *Service) CreateUploadSession(ctx context.Context, u *User, req SessionRequest) (*metadata.UploadSession, error) {
	if _, err := s.parts(); err != nil {
		return nil, err
	}
	if req.Size < 0 {
		return nil, errorf(CodeInvalidRequest, "size must be the file's exact size in bytes.")
	}
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
	chunk := req.ChunkSize
	if chunk == 0 {
		chunk = max(DefaultChunkSize, (req.Size+preferredParts-1)/preferredParts)
		chunk = (chunk + storage.MinPartSize - 1) / storage.MinPartSize * storage.MinPartSize
	}
	if chunk < storage.MinPartSize && req.Size > chunk {
		return nil, errorf(CodeInvalidRequest, "chunk_size must be at least %d bytes.", storage.MinPartSize)
	}
	if n := chunkCount(req.Size, chunk); n > storage.MaxParts {
		return nil, errorf(CodeInvalidRequest, "With chunk_size %d this file needs %d chunks; at most %d are allowed, so use chunks of at least %d bytes.",
			chunk, n, storage.MaxParts, (req.Size+storage.MaxParts-1)/storage.MaxParts)
	}
	up := UploadRequest{ParentID: req.ParentID, Name: req.Name, NodeID: req.NodeID, Conflict: req.Conflict, IfMatch: req.IfMatch, Size: req.Size}
	parentID, name, spaceID, err := s.uploadTarget(ctx, u, &up)
	if err != nil {
		return nil, err
	}
	now := s.DB.Now()
	id := req.ID
	if id == "" {
		id = metadata.NewID()
	}
	sess := &metadata.UploadSession{ID: id, UserID: u.ID, SpaceID: spaceID, ParentID: parentID, Name: name,
		NodeID: req.NodeID, Size: req.Size, ChunkSize: chunk, SHA256: req.SHA256, Conflict: up.Conflict, IfMatch: req.IfMatch,
		MTime: req.MTime, CreatedAt: now, ExpiresAt: now.Add(s.uploadTTL())}
	if err := s.DB.CreateUploadSession(ctx, sess); err != nil {
		return nil, err
	}
	return sess, nil
}

// uploadTarget resolves and checks where an upload goes, before any byte
// is read: the parent folder and name, and the space.
func (s *Service) uploadTarget(ctx context.Context, u *User, req *UploadRequest) (parentID, name, spaceID string, err error) {
	if req.NodeID != "" {
		n, _, err := s.node(ctx, u, req.NodeID, RoleEditor)
		if err != nil {
			return "", "", "", err
		}
		if n.IsFolder() {
			return "", "", "", errorf(CodeConflict, "%q is a folder.", n.Name)
		}
		if req.IfMatch != "" && req.IfMatch != n.ETag {
			return "", "", "", errorf(CodePreconditionFailed, "%q was changed by someone else.", n.Name)
		}
		req.Conflict = ConflictReplace
		return n.ParentID, n.Name, n.SpaceID, s.checkQuota(ctx, n.SpaceID, req.Size-n.Size)
	}
	if name, err = CleanName(req.Name); err != nil {
		return "", "", "", err
	}
	parent, _, err := s.node(ctx, u, req.ParentID, RoleEditor)
	if err != nil {
		return "", "", "", err
	}
	if !parent.IsFolder() {
		return "", "", "", errorf(CodeConflict, "%q is a file, not a folder.", parent.Name)
	}
	if err := s.precheck(ctx, parent.ID, name, *req); err != nil {
		return "", "", "", err
	}
	return parent.ID, name, parent.SpaceID, s.checkQuota(ctx, parent.SpaceID, req.Size)
}

// session loads a session of the user's that has not expired.
func (s *Service) session(ctx context.Context, u *User, id string) (*metadata.UploadSession, error) {
	sess, err := s.DB.UploadSessionByID(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) || (err == nil && sess.UserID != u.ID) {
		return nil, errorf(CodeNotFound, "No such upload session; it may have finished, been cancelled, or expired.")
	}
	if err != nil {
		return nil, err
	}
	if s.DB.Now().After(sess.ExpiresAt) {
		return nil, errorf(CodeNotFound, "The upload session expired; start the upload again.")
	}
	return sess, nil
}

// UploadStatus is a session with the chunks received so far.
type UploadStatus struct {
	*metadata.UploadSession
	Chunks   int
	Received []int
	Bytes    int64
}

// UploadSession returns a session's progress.
func (s *Service) UploadSession(ctx context.Context, u *User, id string) (UploadStatus, error) {
	sess, err := s.session(ctx, u, id)
	if err != nil {
		return UploadStatus{}, err
	}
	return s.status(ctx, sess)
}

func (s *Service) status(ctx context.Context, sess *metadata.UploadSession) (UploadStatus, error) {
	chunks, err := s.DB.Chunks(ctx, sess.ID)
	if err != nil {
		return UploadStatus{}, err
	}
	st := UploadStatus{UploadSession: sess, Chunks: chunkCount(sess.Size, sess.ChunkSize), Received: []int{}}
	for i, n := range chunks {
		st.Received = append(st.Received, i)
		st.Bytes += n
	}
	sort.Ints(st.Received)
	return st, nil
}

// UploadProgress returns a session's chunk count and how many chunks
// have arrived, without listing them (Received is nil): a protocol that
// asks after every chunk whether the upload is complete then costs one
// count, not a read of up to storage.MaxParts rows.
func (s *Service) UploadProgress(ctx context.Context, u *User, id string) (UploadStatus, int, error) {
	sess, err := s.session(ctx, u, id)
	if err != nil {
		return UploadStatus{}, 0, err
	}
	n, err := s.DB.ChunkCount(ctx, sess.ID)
	if err != nil {
		return UploadStatus{}, 0, err
	}
	return UploadStatus{UploadSession: sess, Chunks: chunkCount(sess.Size, sess.ChunkSize)}, n, nil
}

// UploadSessions lists the user's unfinished sessions (to resume after a
// page reload).
func (s *Service) UploadSessions(ctx context.Context, u *User) ([]UploadStatus, error) {
	list, err := s.DB.UploadSessions(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := []UploadStatus{}
	now := s.DB.Now()
	for _, sess := range list {
		if now.After(sess.ExpiresAt) {
			continue
		}
		st, err := s.status(ctx, sess)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// PutChunk stores chunk idx of a session. Chunks may come in any order
// and be sent again; the last one stored wins.
func (s *Service) PutChunk(ctx context.Context, u *User, id string, idx int, body io.Reader, size int64) error {
	parts, err := s.parts()
	if err != nil {
		return err
	}
	sess, err := s.session(ctx, u, id)
	if err != nil {
		return err
	}
	n := chunkCount(sess.Size, sess.ChunkSize)
	if idx < 0 || idx >= n {
		return errorf(CodeInvalidRequest, "Chunk %d does not exist; this upload has chunks 0 to %d.", idx, n-1)
	}
	want := chunkLen(sess.Size, sess.ChunkSize, idx)
	if size >= 0 && size != want {
		return errorf(CodeInvalidRequest, "Chunk %d must be exactly %d bytes, not %d.", idx, want, size)
	}
	offset := int64(idx) * sess.ChunkSize
	// Hash on the way in when this chunk continues the hashed prefix, so
	// finishing an in-order upload needs no second read.
	var h hash.Hash
	if sess.HashedUpto == offset {
		if h, err = restoreHash(sess.HashState); err != nil {
			return err
		}
		body = io.TeeReader(body, h)
	}
	uploadsInFlight.Add(1)
	err = parts.PutPart(ctx, sess.ID, idx, body, want)
	uploadsInFlight.Add(-1)
	if err != nil {
		return storeError(err, ctx)
	}
	if err := s.DB.RecordChunk(ctx, sess.ID, idx, want); err != nil {
		return err
	}
	if h != nil {
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := s.DB.AdvanceHash(ctx, sess.ID, offset, offset+want, state); err != nil {
			return err
		}
	}
	return nil
}

func restoreHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(state) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			return nil, fmt.Errorf("upload session hash state: %w", err)
		}
	}
	return h, nil
}

// storeError turns a failed write to storage into a user error.
func storeError(err error, ctx context.Context) error {
	switch {
	case errors.Is(err, storage.ErrSizeMismatch) || ctx.Err() != nil:
		return &Error{Code: CodeIncomplete, Message: "The chunk did not arrive whole; send it again.", Err: err}
	case errors.Is(err, storage.ErrUnavailable):
		return &Error{Code: CodeUnavailable, Message: "File storage is unavailable; try again shortly.", Err: err}
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: CodeIncomplete, Message: "The chunk did not arrive whole; send it again.", Err: err}
}

// FinishUpload assembles the chunks into a blob (on Swift: a manifest over
// them, no bytes copied), verifies size and SHA-256, and commits the file
// as a single upload would.
func (s *Service) FinishUpload(ctx context.Context, u *User, id string) (*Node, error) {
	parts, err := s.parts()
	if err != nil {
		return nil, err
	}
	sess, err := s.session(ctx, u, id)
	if err != nil {
		return nil, err
	}
	chunks, err := s.DB.Chunks(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	n := chunkCount(sess.Size, sess.ChunkSize)
	sizes := make([]int64, n)
	var missing []string
	for i := range sizes {
		got, ok := chunks[i]
		if !ok {
			if len(missing) < 10 {
				missing = append(missing, fmt.Sprint(i))
			}
			continue
		}
		sizes[i] = got
	}
	if len(missing) > 0 {
		return nil, errorf(CodeIncomplete, "Chunks %s have not arrived yet.", strings.Join(missing, ", "))
	}
	req := UploadRequest{NodeID: sess.NodeID, ParentID: sess.ParentID, Name: sess.Name, Conflict: sess.Conflict,
		IfMatch: sess.IfMatch, MTime: sess.MTime, Size: sess.Size}
	// Check again before assembling: the name may have been taken since
	// the session began.
	if sess.NodeID == "" {
		if err := s.precheck(ctx, sess.ParentID, sess.Name, req); err != nil {
			return nil, err
		}
	}
	key := metadata.NewID()
	if err := parts.CompleteParts(ctx, key, sess.ID, sizes); err != nil {
		return nil, storeError(err, ctx)
	}
	blob, err := s.verifyAssembled(ctx, sess, key)
	if err == nil {
		var node *Node
		node, err = s.commitUpload(ctx, u, sess.ParentID, sess.Name, blob, req)
		if err == nil {
			if derr := s.DB.DeleteUploadSession(ctx, sess.ID); derr != nil {
				s.Logger.Warn("delete finished upload session", "session", sess.ID, "err", derr)
			}
			return node, nil
		}
	}
	// The parts now belong to key: deleting it removes them, and the
	// session cannot be finished again.
	s.deleteBlobs(ctx, []string{key})
	s.DB.DeleteUploadSession(context.WithoutCancel(ctx), sess.ID)
	return nil, err
}

// verifyAssembled completes the SHA-256 (reading back only the bytes not
// hashed on the way in) and checks it against the declared one.
func (s *Service) verifyAssembled(ctx context.Context, sess *metadata.UploadSession, key string) (*metadata.Blob, error) {
	h, err := restoreHash(sess.HashState)
	if err != nil {
		return nil, err
	}
	if sess.HashedUpto < sess.Size {
		obj, err := s.Blobs.Open(ctx, key)
		if err != nil {
			return nil, err
		}
		defer obj.Close()
		if _, err := obj.Seek(sess.HashedUpto, io.SeekStart); err != nil {
			return nil, err
		}
		n, err := io.Copy(h, obj)
		if err != nil {
			return nil, fmt.Errorf("read back assembled upload: %w", err)
		}
		if sess.HashedUpto+n != sess.Size {
			return nil, errorf(CodeIncomplete, "The assembled file has %d bytes, not the %d declared.", sess.HashedUpto+n, sess.Size)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sess.SHA256 != "" && sum != sess.SHA256 {
		return nil, errorf(CodeInvalidRequest, "The uploaded file's SHA-256 is %s, not %s as declared; nothing was saved.", sum, sess.SHA256)
	}
	return &metadata.Blob{ID: key, Size: sess.Size, SHA256: sum}, nil
}

// AbortUpload cancels a session and deletes its chunks.
func (s *Service) AbortUpload(ctx context.Context, u *User, id string) error {
	parts, err := s.parts()
	if err != nil {
		return err
	}
	sess, err := s.session(ctx, u, id)
	if err != nil {
		return err
	}
	if err := parts.AbortParts(ctx, sess.ID); err != nil {
		return storeError(err, ctx)
	}
	return s.DB.DeleteUploadSession(ctx, sess.ID)
}

// ExpireUploads deletes sessions past their expiry and their chunks.
func (s *Service) ExpireUploads(ctx context.Context) (int, error) {
	parts, ok := s.Blobs.(storage.Parts)
	if !ok {
		return 0, nil
	}
	done := 0
	for {
		list, err := s.DB.ExpiredUploadSessions(ctx, s.DB.Now(), 100)
		if err != nil || len(list) == 0 {
			return done, err
		}
		for _, sess := range list {
			if err := parts.AbortParts(ctx, sess.ID); err != nil {
				return done, err
			}
			if err := s.DB.DeleteUploadSession(ctx, sess.ID); err != nil {
				return done, err
			}
			done++
		}
	}
}
