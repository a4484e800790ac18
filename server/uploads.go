package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/internal/files"
)

func (s *Server) registerUploads(authed authedRouter) {
	authed.HandleFunc("/uploads", s.handleUploadSessions).Methods(http.MethodGet)
	authed.HandleFunc("/uploads", s.handleCreateUpload).Methods(http.MethodPost)
	authed.HandleFunc("/uploads/{id}", s.handleUploadStatus).Methods(http.MethodGet)
	authed.HandleFunc("/uploads/{id}", s.handleAbortUpload).Methods(http.MethodDelete)
	authed.HandleFunc("/uploads/{id}/chunks/{index}", s.handlePutChunk).Methods(http.MethodPut)
	authed.HandleFunc("/uploads/{id}/data", s.handlePutData).Methods(http.MethodPut)
	authed.HandleFunc("/uploads/{id}/finish", s.handleFinishUpload).Methods(http.MethodPost)
}

type createUploadRequest struct {
	ParentID  string     `json:"parent_id"`
	Name      string     `json:"name"`
	NodeID    string     `json:"node_id"`
	Size      *int64     `json:"size"`
	ChunkSize int64      `json:"chunk_size"`
	SHA256    string     `json:"sha256"`
	Conflict  string     `json:"conflict"`
	IfMatch   string     `json:"if_match"`
	MTime     *time.Time `json:"mtime"`
}

type uploadJSON struct {
	ID        string    `json:"id"`
	ParentID  string    `json:"parent_id"`
	Name      string    `json:"name"`
	NodeID    string    `json:"node_id,omitempty"`
	Size      int64     `json:"size"`
	ChunkSize int64     `json:"chunk_size"`
	Chunks    int       `json:"chunks"`
	Received  []int     `json:"received"`
	Bytes     int64     `json:"bytes_received"`
	SHA256    string    `json:"sha256,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func uploadToJSON(st files.UploadStatus) uploadJSON {
	return uploadJSON{ID: st.ID, ParentID: st.ParentID, Name: st.Name, NodeID: st.NodeID, Size: st.Size, ChunkSize: st.ChunkSize,
		Chunks: st.Chunks, Received: st.Received, Bytes: st.Bytes, SHA256: st.UploadSession.SHA256, CreatedAt: st.CreatedAt, ExpiresAt: st.ExpiresAt}
}

func (s *Server) handleCreateUpload(w http.ResponseWriter, r *http.Request) {
	var req createUploadRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Size == nil {
		s.error(w, r, badRequest("size is required: the file's exact size in bytes."))
		return
	}
	if max := s.Opts.MaxUploadBytes; max > 0 && *req.Size > max {
		s.error(w, r, &files.Error{Code: files.CodeTooLarge, Message: "The file is larger than this server accepts (" + strconv.FormatInt(max, 10) + " bytes)."})
		return
	}
	sr := files.SessionRequest{ParentID: req.ParentID, Name: req.Name, NodeID: req.NodeID, Size: *req.Size, ChunkSize: req.ChunkSize,
		SHA256: req.SHA256, Conflict: req.Conflict, IfMatch: etagValue(req.IfMatch)}
	if req.MTime != nil {
		sr.MTime = *req.MTime
	}
	u := UserFrom(r)
	sess, err := s.Files.CreateUploadSession(r.Context(), u, sr)
	if err != nil {
		s.error(w, r, err)
		return
	}
	st, err := s.Files.UploadSession(r.Context(), u, sess.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/uploads/"+sess.ID)
	writeJSON(w, http.StatusCreated, uploadToJSON(st))
}

func (s *Server) handleUploadSessions(w http.ResponseWriter, r *http.Request) {
	list, err := s.Files.UploadSessions(r.Context(), UserFrom(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]uploadJSON, 0, len(list))
	for _, st := range list {
		out = append(out, uploadToJSON(st))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) handleUploadStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Files.UploadSession(r.Context(), UserFrom(r), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, uploadToJSON(st))
}

func (s *Server) putChunk(w http.ResponseWriter, r *http.Request, index int) {
	body, size, err := s.uploadBody(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	u, id := UserFrom(r), mux.Vars(r)["id"]
	if err := s.Files.PutChunk(r.Context(), u, id, index, body, size); err != nil {
		s.error(w, r, err)
		return
	}
	st, err := s.Files.UploadSession(r.Context(), u, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, uploadToJSON(st))
}

// handlePutChunk stores a chunk by index.
func (s *Server) handlePutChunk(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.Atoi(mux.Vars(r)["index"])
	if err != nil {
		s.error(w, r, badRequest("The chunk index must be a number."))
		return
	}
	s.putChunk(w, r, index)
}

// handlePutData stores a chunk by byte offset (?offset=N, a multiple of
// the chunk size), for clients that think in offsets.
func (s *Server) handlePutData(w http.ResponseWriter, r *http.Request) {
	off, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || off < 0 {
		s.error(w, r, badRequest("offset must be a byte offset, a multiple of the session's chunk_size."))
		return
	}
	st, err := s.Files.UploadSession(r.Context(), UserFrom(r), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	if off%st.ChunkSize != 0 {
		s.error(w, r, badRequest("offset must be a multiple of the session's chunk_size ("+strconv.FormatInt(st.ChunkSize, 10)+")."))
		return
	}
	s.putChunk(w, r, int(off/st.ChunkSize))
}

func (s *Server) handleFinishUpload(w http.ResponseWriter, r *http.Request) {
	n, err := s.Files.FinishUpload(r.Context(), UserFrom(r), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+n.ETag+`"`)
	writeJSON(w, http.StatusCreated, s.nodeJSON(r, n))
}

func (s *Server) handleAbortUpload(w http.ResponseWriter, r *http.Request) {
	if err := s.Files.AbortUpload(r.Context(), UserFrom(r), mux.Vars(r)["id"]); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
