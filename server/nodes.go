package server

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/internal/blobhttp"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/storage"
)

// uploadBody limits the request body to the configured maximum.
func (s *Server) uploadBody(w http.ResponseWriter, r *http.Request) (io.Reader, int64, error) {
	size := r.ContentLength
	if max := s.Opts.MaxUploadBytes; max > 0 {
		if size > max {
			return nil, 0, &files.Error{Code: files.CodeTooLarge, Message: "The upload is larger than this server accepts (" + strconv.FormatInt(max, 10) + " bytes)."}
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	return r.Body, size, nil
}

func etagValue(h string) string {
	h = strings.TrimSpace(h)
	h = strings.TrimPrefix(h, "W/")
	return strings.Trim(h, `"`)
}

func parseMTime(r *http.Request) (time.Time, error) {
	v := r.URL.Query().Get("mtime")
	if v == "" {
		v = r.Header.Get("X-OC-Mtime")
	}
	if v == "" {
		return time.Time{}, nil
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(secs, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("mtime must be Unix seconds or an RFC 3339 time.")
	}
	return t, nil
}

// handleUpload creates a file in a folder. The body is either the raw
// bytes (name in ?name=) or multipart/form-data with one or more file
// parts (the browser's form upload); either way it is streamed, never held
// in memory or on a temporary disk.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	u, parent := UserFrom(r), mux.Vars(r)["id"]
	q := r.URL.Query()
	mtime, err := parseMTime(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	body, size, err := s.uploadBody(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	req := files.UploadRequest{ParentID: parent, Conflict: q.Get("conflict"), SHA256: q.Get("sha256"), MTime: mtime,
		IfMatch: etagValue(r.Header.Get("If-Match")), IfNoneMatch: strings.TrimSpace(r.Header.Get("If-None-Match"))}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		s.uploadMultipart(w, r, req, multipart.NewReader(body, params["boundary"]))
		return
	}
	req.Name, req.Body, req.Size = q.Get("name"), body, size
	if req.Name == "" {
		s.error(w, r, badRequest("name is required: POST /api/v1/nodes/{folder}/files?name=report.pdf"))
		return
	}
	n, err := s.Files.Upload(r.Context(), u, req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+n.ETag+`"`)
	writeJSON(w, http.StatusCreated, s.nodeJSON(r, n))
}

func (s *Server) uploadMultipart(w http.ResponseWriter, r *http.Request, req files.UploadRequest, mr *multipart.Reader) {
	var out []nodeJSON
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.error(w, r, &files.Error{Code: files.CodeIncomplete, Message: "The multipart upload is malformed or was cut off.", Err: err})
			return
		}
		if part.FileName() == "" {
			part.Close()
			continue // a form field, not a file
		}
		req.Name, req.Body, req.Size = part.FileName(), part, -1
		n, err := s.Files.Upload(r.Context(), UserFrom(r), req)
		part.Close()
		if err != nil {
			s.error(w, r, err)
			return
		}
		out = append(out, s.nodeJSON(r, n))
	}
	if len(out) == 0 {
		s.error(w, r, badRequest("The form contains no file."))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"items": out})
}

// handleOverwrite stores a new version of a file. If-Match guards against
// overwriting someone else's change.
func (s *Server) handleOverwrite(w http.ResponseWriter, r *http.Request) {
	mtime, err := parseMTime(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	body, size, err := s.uploadBody(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	n, err := s.Files.Upload(r.Context(), UserFrom(r), files.UploadRequest{NodeID: mux.Vars(r)["id"], Body: body, Size: size,
		IfMatch: etagValue(r.Header.Get("If-Match")), SHA256: r.URL.Query().Get("sha256"), MTime: mtime})
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+n.ETag+`"`)
	writeJSON(w, http.StatusOK, s.nodeJSON(r, n))
}

// serveContent streams a blob with Range, If-None-Match and
// If-Modified-Since handled by http.ServeContent.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, name, ctype, etag string, mtime time.Time, obj storage.Object) {
	h := w.Header()
	h.Set("ETag", `"`+etag+`"`)
	h.Set("Content-Type", ctype)
	// User content is never rendered as part of Velox's origin: a shared
	// HTML file must not run script with the viewer's session.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'")
	disp := "attachment"
	if r.URL.Query().Get("inline") == "1" {
		disp = "inline"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	h.Set("Cache-Control", "private, no-cache")
	if err := blobhttp.Serve(w, r, mtime, obj); err != nil {
		for _, k := range []string{"ETag", "Content-Type", "Content-Disposition", "Cache-Control"} {
			h.Del(k)
		}
		s.error(w, r, err)
	}
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	n, obj, err := s.Files.Open(r.Context(), UserFrom(r), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	defer obj.Close()
	s.serveContent(w, r, n.Name, n.ContentType, n.ETag, n.MTime, obj)
}

func (s *Server) handleVersionDownload(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	n, ver, obj, err := s.Files.OpenVersion(r.Context(), UserFrom(r), v["id"], v["version"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	defer obj.Close()
	// A version's ETag is its ID: immutable content.
	s.serveContent(w, r, n.Name, n.ContentType, ver.ID, ver.CreatedAt, obj)
}

type versionJSON struct {
	ID        string    `json:"id"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	MTime     time.Time `json:"mtime"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by_name,omitempty"`
	Current   bool      `json:"current"`
}

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request) {
	u, id := UserFrom(r), mux.Vars(r)["id"]
	n, err := s.Files.Get(r.Context(), u, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	vs, err := s.Files.Versions(r.Context(), u, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]versionJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionJSON{ID: v.ID, Size: v.Size, SHA256: v.SHA256, MTime: v.MTime, CreatedAt: v.CreatedAt,
			CreatedBy: s.names.name(r, v.CreatedBy), Current: v.ID == n.VersionID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) handleVersionRestore(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	n, err := s.Files.RestoreVersion(r.Context(), UserFrom(r), v["id"], v["version"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.nodeJSON(r, n))
}

type moveRequest struct {
	Name      string `json:"name"`
	ParentID  string `json:"parent_id"`
	Overwrite bool   `json:"overwrite"`
}

// handleMove renames and/or moves a node (PATCH with name and/or parent_id).
func (s *Server) handleMove(w http.ResponseWriter, r *http.Request) {
	var req moveRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Name == "" && req.ParentID == "" {
		s.error(w, r, badRequest("Give a new name, a new parent_id, or both."))
		return
	}
	n, err := s.Files.Move(r.Context(), UserFrom(r), mux.Vars(r)["id"], files.MoveRequest{ParentID: req.ParentID, Name: req.Name,
		Overwrite: req.Overwrite, IfMatch: etagValue(r.Header.Get("If-Match"))})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.nodeJSON(r, n))
}

func (s *Server) handleCopy(w http.ResponseWriter, r *http.Request) {
	var req moveRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	n, err := s.Files.Copy(r.Context(), UserFrom(r), mux.Vars(r)["id"], files.MoveRequest{ParentID: req.ParentID, Name: req.Name, Overwrite: req.Overwrite})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.nodeJSON(r, n))
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.Files.Delete(r.Context(), UserFrom(r), mux.Vars(r)["id"], etagValue(r.Header.Get("If-Match"))); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type restoreRequest struct {
	ParentID string `json:"parent_id"`
	Name     string `json:"name"`
}

func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	var req restoreRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.error(w, r, err)
			return
		}
	}
	n, err := s.Files.Restore(r.Context(), UserFrom(r), mux.Vars(r)["id"], files.RestoreRequest{ParentID: req.ParentID, Name: req.Name})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.nodeJSON(r, n))
}

func (s *Server) handlePurge(w http.ResponseWriter, r *http.Request) {
	if err := s.Files.Purge(r.Context(), UserFrom(r), mux.Vars(r)["id"]); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// contextStoppedBy returns a context that is also cancelled when stop closes.
func contextStoppedBy(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
