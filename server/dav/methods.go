package dav

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/veloxhq/velox/internal/blobhttp"
	"github.com/veloxhq/velox/internal/files"
)

// setNodeHeaders sets the headers the sync clients store after a write or
// download: the ETag (also as OC-ETag, which they prefer) and the file ID.
func setNodeHeaders(w http.ResponseWriter, n *files.Node) {
	etag := `"` + n.ETag + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("OC-ETag", etag)
	w.Header().Set("OC-FileId", n.ID)
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request, t *target) {
	ctx := r.Context()
	n, err := h.resolve(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if n.IsFolder() {
		w.Header().Set("Allow", "OPTIONS, PROPFIND, PROPPATCH, MKCOL, DELETE, COPY, MOVE, LOCK, UNLOCK")
		h.davError(w, r, http.StatusMethodNotAllowed, "", "This is a folder; list it with PROPFIND.")
		return
	}
	n, obj, err := h.files.Open(ctx, t.user, n.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer obj.Close()
	setNodeHeaders(w, n)
	w.Header().Set("Content-Type", contentType(n))
	// Files are served from the application's origin: never let a
	// browser run uploaded HTML or guess a more dangerous type.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox")
	if err := blobhttp.Serve(w, r, n.MTime, obj); err != nil {
		for _, k := range []string{"ETag", "OC-ETag", "OC-FileId", "Content-Type", "Content-Security-Policy"} {
			w.Header().Del(k)
		}
		h.fail(w, r, err)
	}
}

// etagList parses an If-Match or If-None-Match value into unquoted tags;
// weak tags compare like strong ones, since ours are never weak.
func etagList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, "W/")
		s = strings.Trim(s, `"`)
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func precondition(msg string) error {
	return &files.Error{Code: files.CodePreconditionFailed, Message: msg}
}

// checkConditions evaluates If-Match and If-None-Match against the node at
// the target (nil if there is none). It returns the ETag the write must
// still match when it commits, so that a concurrent change between this
// check and the commit is caught too.
func checkConditions(r *http.Request, existing *files.Node) (ifMatch string, err error) {
	if v := r.Header.Get("If-Match"); v != "" {
		if existing == nil {
			return "", precondition("The file does not exist (If-Match).")
		}
		tags := etagList(v)
		if !contains1(tags, "*") {
			if !contains1(tags, existing.ETag) {
				return "", precondition("The file was changed by someone else (If-Match).")
			}
		}
		ifMatch = existing.ETag
	}
	if v := r.Header.Get("If-None-Match"); v != "" && existing != nil {
		tags := etagList(v)
		if contains1(tags, "*") || contains1(tags, existing.ETag) {
			return "", precondition("The file already exists (If-None-Match).")
		}
	}
	return ifMatch, nil
}

func contains1(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lookup resolves t, returning nil without error if nothing is there.
func (h *Handler) lookup(r *http.Request, t *target) (*files.Node, error) {
	n, err := h.resolve(r.Context(), t)
	if files.ErrorCode(err) == files.CodeNotFound {
		return nil, nil
	}
	return n, err
}

// ocMTime parses the X-OC-Mtime header (Unix seconds). ok is false when
// the header is absent.
func ocMTime(r *http.Request) (mtime time.Time, ok bool, err error) {
	v := r.Header.Get("X-OC-Mtime")
	if v == "" {
		return time.Time{}, false, nil
	}
	mtime, err = parseMTime(v)
	if err != nil || mtime.Unix() <= 0 {
		return time.Time{}, false, &files.Error{Code: files.CodeInvalidRequest, Message: "X-OC-Mtime must be Unix seconds."}
	}
	return mtime, true, nil
}

// handlePut streams the body into a new file or a new version of an
// existing one. The file service commits only after every byte is stored,
// so a PUT that is cut off leaves nothing behind.
func (h *Handler) handlePut(w http.ResponseWriter, r *http.Request, t *target) {
	if len(t.names) == 0 {
		h.davError(w, r, http.StatusMethodNotAllowed, "", "Cannot PUT to the root folder.")
		return
	}
	if r.Header.Get("OC-Chunked") != "" {
		h.handleChunkedPut(w, r, t)
		return
	}
	if r.Header.Get("Content-Range") != "" {
		// RFC 7231 §4.3.4: a partial PUT must be refused, not applied
		// as if it were the whole file.
		h.davError(w, r, http.StatusBadRequest, "", "Partial PUT (Content-Range) is not supported.")
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
	existing, ifMatch, ok := h.putTarget(w, r, t)
	if !ok {
		return
	}
	req := files.UploadRequest{
		ParentID: parent.ID,
		Name:     t.names[len(t.names)-1],
		Body:     r.Body,
		Size:     r.ContentLength, // -1 when chunked
		Conflict: files.ConflictReplace,
		IfMatch:  ifMatch,
		MTime:    mtime,
	}
	if existing == nil && r.Header.Get("If-None-Match") != "" {
		req.IfNoneMatch = "*" // still absent at commit time
	}
	if v := r.Header.Get("OC-Checksum"); v != "" {
		req.Body, req.SHA256 = checksumBody(req.Body, v)
	}
	n, err := h.files.Upload(ctx, t.user, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if existing != nil && existing.ID == n.ID {
		status = http.StatusNoContent
	}
	writePutResult(w, n, hasMTime, status)
}

// putTarget checks what a PUT (whole or chunked) would replace at t:
// nothing, or a file the request's If-Match/If-None-Match allow. When the
// PUT must not go ahead it answers the request itself and ok is false.
func (h *Handler) putTarget(w http.ResponseWriter, r *http.Request, t *target) (existing *files.Node, ifMatch string, ok bool) {
	existing, err := h.lookup(r, t)
	if err != nil {
		h.fail(w, r, err)
		return nil, "", false
	}
	if existing != nil && existing.IsFolder() {
		h.davError(w, r, http.StatusMethodNotAllowed, "", "A folder of that name exists.")
		return nil, "", false
	}
	if ifMatch, err = checkConditions(r, existing); err != nil {
		h.fail(w, r, err)
		return nil, "", false
	}
	return existing, ifMatch, true
}

// writePutResult answers a PUT that stored n: the headers the sync
// clients record (ETag, OC-ETag, OC-FileId, and whether X-OC-Mtime was
// applied), then status.
func writePutResult(w http.ResponseWriter, n *files.Node, hasMTime bool, status int) {
	setNodeHeaders(w, n)
	w.Header().Set("Last-Modified", n.MTime.UTC().Format(http.TimeFormat))
	if hasMTime {
		w.Header().Set("X-OC-Mtime", "accepted")
	}
	w.WriteHeader(status)
}

func (h *Handler) handleMkcol(w http.ResponseWriter, r *http.Request, t *target) {
	if r.ContentLength > 0 || (r.ContentLength < 0 && len(r.TransferEncoding) > 0) {
		// RFC 4918 §9.3: bodies (extended MKCOL) are not understood.
		h.davError(w, r, http.StatusUnsupportedMediaType, "", "MKCOL with a body is not supported.")
		return
	}
	if len(t.names) == 0 {
		h.davError(w, r, http.StatusMethodNotAllowed, "", "The folder already exists.")
		return
	}
	ctx := r.Context()
	parent, err := h.resolveParent(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := h.files.Mkdir(ctx, t.user, parent.ID, t.names[len(t.names)-1])
	if files.ErrorCode(err) == files.CodeConflict {
		// Clients read 405 as "already exists" and carry on.
		h.davError(w, r, http.StatusMethodNotAllowed, "", "An item of that name already exists.")
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setNodeHeaders(w, n)
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request, t *target) {
	if len(t.names) == 0 {
		h.davError(w, r, http.StatusForbidden, "", "The root folder cannot be deleted.")
		return
	}
	n, err := h.resolve(r.Context(), t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ifMatch, err := checkConditions(r, n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.files.Delete(r.Context(), t.user, n.ID, ifMatch); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleCopyMove implements COPY and MOVE within the user's tree.
func (h *Handler) handleCopyMove(w http.ResponseWriter, r *http.Request, t *target) {
	move := r.Method == "MOVE"
	dst, status, err := h.destination(r, t)
	if err != nil {
		msg := errBadDestination.Message
		var fe *files.Error
		if errors.As(err, &fe) {
			msg = fe.Message
		}
		h.davError(w, r, status, "", msg)
		return
	}
	depth := r.Header.Get("Depth")
	switch {
	case depth == "" || strings.EqualFold(depth, "infinity"):
		depth = "infinity"
	case depth == "0" && !move:
	default:
		h.davError(w, r, http.StatusBadRequest, "", "Depth must be infinity, or 0 for COPY.")
		return
	}
	overwrite := true
	switch strings.ToUpper(r.Header.Get("Overwrite")) {
	case "", "T":
	case "F":
		overwrite = false
	default:
		h.davError(w, r, http.StatusBadRequest, "", "Overwrite must be T or F.")
		return
	}
	if len(t.names) == 0 || len(dst.names) == 0 {
		h.davError(w, r, http.StatusForbidden, "", "The root folder cannot be copied, moved or replaced.")
		return
	}
	if t.path() == dst.path() {
		h.davError(w, r, http.StatusForbidden, "", "Source and destination are the same.")
		return
	}
	mtime, hasMTime, err := ocMTime(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	src, err := h.resolve(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ifMatch, err := checkConditions(r, src)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	parent, err := h.resolveParent(ctx, dst)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	existing, err := h.lookup(r, dst)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if existing != nil && !overwrite {
		h.davError(w, r, http.StatusPreconditionFailed, "", "The destination exists and Overwrite is F.")
		return
	}
	req := files.MoveRequest{ParentID: parent.ID, Name: dst.names[len(dst.names)-1], Overwrite: overwrite, IfMatch: ifMatch}
	var n *files.Node
	switch {
	case move:
		n, err = h.files.Move(ctx, t.user, src.ID, req)
	case depth == "0" && src.IsFolder():
		n, err = h.shallowCopy(r, t, src, parent, existing, req.Name)
	default:
		n, err = h.files.Copy(ctx, t.user, src.ID, req)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if hasMTime {
		if n, err = h.files.SetMTime(ctx, t.user, n.ID, mtime); err != nil {
			h.fail(w, r, err)
			return
		}
		w.Header().Set("X-OC-Mtime", "accepted")
	}
	setNodeHeaders(w, n)
	if existing != nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// shallowCopy is COPY with Depth: 0 of a folder: a new folder with the same
// dead properties and none of the members (RFC 4918 §9.8.3).
func (h *Handler) shallowCopy(r *http.Request, t *target, src, parent, existing *files.Node, name string) (*files.Node, error) {
	ctx := r.Context()
	props, err := h.files.Props(ctx, t.user, src.ID)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		if err := h.files.Delete(ctx, t.user, existing.ID, ""); err != nil {
			return nil, err
		}
	}
	n, err := h.files.Mkdir(ctx, t.user, parent.ID, name)
	if err != nil {
		return nil, err
	}
	if len(props) > 0 {
		if err := h.files.PatchProps(ctx, t.user, n.ID, props, nil); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// handleLock grants advisory locks: a token is returned and nothing is
// enforced. Clients such as Finder and Windows refuse to write to a class 2
// server without one; real sync clients never lock. Locking an unmapped
// URL creates an empty file, as RFC 4918 §9.10.4 asks.
func (h *Handler) handleLock(w http.ResponseWriter, r *http.Request, t *target) {
	body, err := readXMLBody(r)
	if err != nil {
		h.davError(w, r, xmlBodyStatus(err), "", err.Error())
		return
	}
	ctx := r.Context()
	status := http.StatusOK
	n, err := h.lookup(r, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if n == nil {
		if body == nil {
			h.davError(w, r, http.StatusPreconditionFailed, "lock-token-matches-request-uri", "No lock to refresh.")
			return
		}
		parent, err := h.resolveParent(ctx, t)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		n, err = h.files.Upload(ctx, t.user, files.UploadRequest{ParentID: parent.ID, Name: t.names[len(t.names)-1],
			Body: strings.NewReader(""), Size: 0, Conflict: files.ConflictFail})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		status = http.StatusCreated
	}
	token := ""
	if body == nil {
		// A refresh names its token in the If header.
		if _, rest, ok := strings.Cut(r.Header.Get("If"), "<"); ok {
			token, _, _ = strings.Cut(rest, ">")
		}
	}
	if token == "" {
		b := make([]byte, 16)
		rand.Read(b)
		token = "opaquelocktoken:" + hex.EncodeToString(b)
		w.Header().Set("Lock-Token", "<"+token+">")
	}
	scope := "exclusive"
	var info struct {
		Scope struct {
			Shared *struct{} `xml:"DAV: shared"`
		} `xml:"DAV: lockscope"`
	}
	if body != nil && xml.Unmarshal(body, &info) == nil && info.Scope.Shared != nil {
		scope = "shared"
	}
	depth := "infinity"
	if r.Header.Get("Depth") == "0" {
		depth = "0"
	}
	var b strings.Builder
	b.WriteString(xmlHeader + `<d:prop xmlns:d="DAV:"><d:lockdiscovery><d:activelock>` +
		`<d:locktype><d:write/></d:locktype><d:lockscope><d:` + scope + `/></d:lockscope>` +
		`<d:depth>` + depth + `</d:depth><d:timeout>Second-3600</d:timeout><d:locktoken><d:href>`)
	escape(&b, token)
	b.WriteString(`</d:href></d:locktoken><d:lockroot><d:href>`)
	escape(&b, t.href(t.names, n.IsFolder()))
	b.WriteString("</d:href></d:lockroot></d:activelock></d:lockdiscovery></d:prop>\n")
	w.Header().Set("Content-Type", contentTypeXML)
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}
