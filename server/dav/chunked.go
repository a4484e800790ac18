package dav

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/storage"
)

// Legacy ("v1") chunked uploads: the Nextcloud desktop client 3.x sends
// files above its chunk size (10 MB) as PUTs of
// "<name>-chunking-<transfer>-<count>-<index>" with "OC-Chunked: 1" and
// "OC-Total-Length", whatever the capabilities say, one chunk after the
// other; every chunk but the last has the same size. The answer to the
// last chunk carries the file's ETag, the others none: that is how the
// client knows the file is complete.
//
// Each transfer is a resumable upload session of the file service
// (internal/files), so chunks are stored as storage parts, a retried chunk
// replaces its earlier copy, a cut-off chunk leaves nothing, and the file
// appears in the tree only once the last chunk has arrived, in one commit.
// The session ID is derived from the user, the client's transfer ID and
// the target, so every chunk finds the session without extra state.

// chunkedName splits "<name>-chunking-<transfer>-<count>-<index>".
var chunkedName = regexp.MustCompile(`^(.+)-chunking-([0-9]{1,20})-([0-9]{1,5})-([0-9]{1,5})$`)

// sessionIDEncoding is the alphabet of metadata IDs (and storage keys).
var sessionIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func chunkedSessionID(userID, transfer, parentID, name string) string {
	sum := sha256.Sum256([]byte("dav-chunked\x00" + userID + "\x00" + transfer + "\x00" + parentID + "\x00" + name))
	return sessionIDEncoding.EncodeToString(sum[:16])
}

func (h *Handler) handleChunkedPut(w http.ResponseWriter, r *http.Request, t *target) {
	m := chunkedName.FindStringSubmatch(t.names[len(t.names)-1])
	if m == nil {
		h.davError(w, r, http.StatusBadRequest, "", "A chunked upload is named <name>-chunking-<transfer>-<count>-<index>.")
		return
	}
	name, transfer := m[1], m[2]
	count, _ := strconv.Atoi(m[3])
	idx, _ := strconv.Atoi(m[4])
	if count > storage.MaxParts {
		h.davError(w, r, http.StatusBadRequest, "", fmt.Sprintf(
			"This upload is cut into %d chunks; at most %d are allowed. Use larger chunks "+
				"(the desktop client's chunkSize setting) or upload the file in the web interface.", count, storage.MaxParts))
		return
	}
	if count < 1 || idx >= count {
		h.davError(w, r, http.StatusBadRequest, "", "The chunk index or count is out of range.")
		return
	}
	total, err := strconv.ParseInt(r.Header.Get("OC-Total-Length"), 10, 64)
	if err != nil || total < 0 {
		h.davError(w, r, http.StatusBadRequest, "", "A chunked upload needs OC-Total-Length, the size of the whole file.")
		return
	}
	if r.ContentLength < 0 {
		h.davError(w, r, http.StatusLengthRequired, "", "Each chunk needs a Content-Length.")
		return
	}
	mtime, hasMTime, err := ocMTime(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	parent, err := h.resolveParent(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	file := &target{user: t.user, space: t.space, root: t.root, names: append(slices.Clone(t.names[:len(t.names)-1]), name)}
	id := chunkedSessionID(t.user.ID, transfer, parent.ID, name)
	st, _, err := h.files.UploadProgress(ctx, t.user, id)
	if files.ErrorCode(err) == files.CodeNotFound {
		// The transfer's first chunk (or the first after the session
		// expired): check the target like a PUT would, then open it.
		_, ifMatch, ok := h.putTarget(w, r, file)
		if !ok {
			return
		}
		chunk := r.ContentLength
		if idx == count-1 && count > 1 {
			// The last chunk came first; the others share one size.
			rest := total - r.ContentLength
			if rest <= 0 || rest%int64(count-1) != 0 {
				h.davError(w, r, http.StatusBadRequest, "", "The chunk sizes do not add up to OC-Total-Length.")
				return
			}
			chunk = rest / int64(count-1)
		}
		_, err = h.files.CreateUploadSession(ctx, t.user, files.SessionRequest{
			ID: id, ParentID: parent.ID, Name: name, Size: total, ChunkSize: chunk,
			Conflict: files.ConflictReplace, IfMatch: ifMatch, MTime: mtime,
		})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		st, _, err = h.files.UploadProgress(ctx, t.user, id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if st.Size != total || st.Chunks != count {
		h.davError(w, r, http.StatusBadRequest, "", "This chunk's OC-Total-Length or count differs from the transfer's earlier chunks.")
		return
	}
	if err := h.files.PutChunk(ctx, t.user, id, idx, r.Body, r.ContentLength); err != nil {
		h.fail(w, r, err)
		return
	}
	st, received, err := h.files.UploadProgress(ctx, t.user, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if received < st.Chunks {
		// No ETag: the client sends the next chunk.
		w.WriteHeader(http.StatusCreated)
		return
	}
	n, err := h.files.FinishUpload(ctx, t.user, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writePutResult(w, n, hasMTime, http.StatusCreated)
}
