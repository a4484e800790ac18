package server

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// OpenAPI is the API description served at /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// prefixed registers routes under a path prefix on the main router. (A
// gorilla/mux subrouter would answer 404 instead of 405 for a known path
// with the wrong method.)
type prefixed struct {
	r      *mux.Router
	prefix string
}

func (p prefixed) HandleFunc(path string, fn http.HandlerFunc) *mux.Route {
	return p.r.HandleFunc(p.prefix+path, fn)
}

func (p prefixed) Handle(path string, h http.Handler) *mux.Route {
	return p.r.Handle(p.prefix+path, h)
}

func (s *Server) registerAPI(api prefixed) {
	api.HandleFunc("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI)
	}).Methods(http.MethodGet)
	api.HandleFunc("/auth/login", s.handleLogin).Methods(http.MethodPost)

	// Routes that need a signed-in user.
	authed := authedRouter{api, s.requireUser}
	authed.HandleFunc("/auth/logout", s.handleLogout).Methods(http.MethodPost)
	authed.HandleFunc("/me", s.handleMe).Methods(http.MethodGet)
	s.registerMeAPI(authed)
	s.registerAdminAPI(api)

	authed.HandleFunc("/spaces", s.handleSpaces).Methods(http.MethodGet)
	authed.HandleFunc("/spaces/{space}", s.handleSpace).Methods(http.MethodGet)
	authed.HandleFunc("/spaces/{space}/resolve", s.handleResolve).Methods(http.MethodGet)
	authed.HandleFunc("/spaces/{space}/folders", s.handleMkdirAll).Methods(http.MethodPost)
	authed.HandleFunc("/spaces/{space}/search", s.handleSearch).Methods(http.MethodGet)
	authed.HandleFunc("/spaces/{space}/trash", s.handleTrash).Methods(http.MethodGet)
	authed.HandleFunc("/spaces/{space}/trash", s.handleEmptyTrash).Methods(http.MethodDelete)
	authed.HandleFunc("/spaces/{space}/changes", s.handleChanges).Methods(http.MethodGet)

	authed.HandleFunc("/nodes/{id}", s.handleNode).Methods(http.MethodGet)
	authed.HandleFunc("/nodes/{id}", s.handleMove).Methods(http.MethodPatch)
	authed.HandleFunc("/nodes/{id}", s.handleDelete).Methods(http.MethodDelete)
	authed.HandleFunc("/nodes/{id}/children", s.handleList).Methods(http.MethodGet)
	authed.HandleFunc("/nodes/{id}/children", s.handleMkdir).Methods(http.MethodPost)
	authed.HandleFunc("/nodes/{id}/files", s.handleUpload).Methods(http.MethodPost)
	authed.HandleFunc("/nodes/{id}/content", s.handleDownload).Methods(http.MethodGet, http.MethodHead)
	authed.HandleFunc("/nodes/{id}/content", s.handleOverwrite).Methods(http.MethodPut)
	authed.HandleFunc("/nodes/{id}/copy", s.handleCopy).Methods(http.MethodPost)
	authed.HandleFunc("/nodes/{id}/versions", s.handleVersions).Methods(http.MethodGet)
	authed.HandleFunc("/nodes/{id}/versions/{version}/content", s.handleVersionDownload).Methods(http.MethodGet, http.MethodHead)
	authed.HandleFunc("/nodes/{id}/versions/{version}/restore", s.handleVersionRestore).Methods(http.MethodPost)
	authed.HandleFunc("/trash/{id}/restore", s.handleRestore).Methods(http.MethodPost)
	authed.HandleFunc("/trash/{id}", s.handlePurge).Methods(http.MethodDelete)
	s.registerUploads(authed)
	s.registerZip(authed)
	s.registerThumbs(authed)
}

type authedRouter struct {
	r    prefixed
	wrap func(http.Handler) http.Handler
}

func (a authedRouter) HandleFunc(path string, fn http.HandlerFunc) *mux.Route {
	return a.r.Handle(path, a.wrap(fn))
}

// nodeJSON is a file or folder as the API shows it.
type nodeJSON struct {
	ID             string     `json:"id"`
	SpaceID        string     `json:"space_id"`
	ParentID       string     `json:"parent_id,omitempty"`
	Name           string     `json:"name"`
	Kind           string     `json:"kind"`
	Size           int64      `json:"size"`
	MTime          time.Time  `json:"mtime"`
	ETag           string     `json:"etag"`
	ContentType    string     `json:"content_type,omitempty"`
	SHA256         string     `json:"sha256,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	ModifiedBy     string     `json:"modified_by,omitempty"`
	ModifiedByName string     `json:"modified_by_name,omitempty"`
	TrashedAt      *time.Time `json:"trashed_at,omitempty"`
	Path           string     `json:"path,omitempty"`
}

func (s *Server) nodeJSON(r *http.Request, n *files.Node) nodeJSON {
	j := nodeJSON{ID: n.ID, SpaceID: n.SpaceID, ParentID: n.ParentID, Name: n.Name, Kind: n.Kind.String(), Size: n.Size,
		MTime: n.MTime.UTC(), ETag: n.ETag, CreatedAt: n.CreatedAt, ModifiedBy: n.ModifiedBy,
		ModifiedByName: s.names.name(r, n.ModifiedBy)}
	if n.Kind == metadata.KindFile {
		j.ContentType, j.SHA256 = n.ContentType, n.SHA256
	}
	if !n.TrashedAt.IsZero() {
		t := n.TrashedAt
		j.TrashedAt = &t
	}
	return j
}

func (s *Server) nodesJSON(r *http.Request, ns []*files.Node) []nodeJSON {
	out := make([]nodeJSON, 0, len(ns))
	for _, n := range ns {
		out = append(out, s.nodeJSON(r, n))
	}
	return out
}

type spaceJSON struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	RootID     string `json:"root_id"`
	Role       string `json:"role"`
	QuotaBytes *int64 `json:"quota_bytes,omitempty"`
	UsedBytes  int64  `json:"used_bytes"`
}

func (s *Server) spaceJSON(r *http.Request, sv files.SpaceView) spaceJSON {
	j := spaceJSON{ID: sv.ID, Kind: sv.Kind, Name: sv.Name, RootID: sv.RootID, Role: sv.Role.String(), QuotaBytes: sv.QuotaBytes}
	if root, err := s.DB.NodeByID(r.Context(), sv.RootID); err == nil {
		j.UsedBytes = root.Size
	}
	return j
}

func (s *Server) handleSpaces(w http.ResponseWriter, r *http.Request) {
	spaces, err := s.Files.Spaces(r.Context(), UserFrom(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]spaceJSON, 0, len(spaces))
	for _, sv := range spaces {
		out = append(out, s.spaceJSON(r, sv))
	}
	writeJSON(w, http.StatusOK, map[string]any{"spaces": out})
}

func (s *Server) handleSpace(w http.ResponseWriter, r *http.Request) {
	sv, err := s.Files.Space(r.Context(), UserFrom(r), mux.Vars(r)["space"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.spaceJSON(r, sv))
}

// cursor is the opaque pagination token of folder listings. It carries the
// sort so a token cannot be replayed against another order.
type cursor struct {
	Sort string `json:"s"`
	Desc bool   `json:"d,omitempty"`
	Kind int    `json:"k"`
	Key  int64  `json:"v,omitempty"`
	Name string `json:"n"`
}

func encodeCursor(c *metadata.Cursor, sort string, desc bool) string {
	b, _ := json.Marshal(cursor{Sort: sort, Desc: desc, Kind: int(c.Kind), Key: c.Key, Name: c.Name})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string, desc bool) (*metadata.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Sort != sort || c.Desc != desc {
		return nil, badRequest("The cursor is invalid or belongs to a listing with another sort order.")
	}
	return &metadata.Cursor{Kind: metadata.Kind(c.Kind), Key: c.Key, Name: c.Name}, nil
}

// DefaultPageSize is the listing page size when the client does not ask.
const DefaultPageSize = 200

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opt := metadata.ListOptions{Sort: q.Get("sort"), Desc: q.Get("order") == "desc", Limit: DefaultPageSize}
	switch opt.Sort {
	case "", "name":
		opt.Sort = metadata.SortName
	case "size":
		opt.Sort = metadata.SortSize
	case "mtime", "modified":
		opt.Sort = metadata.SortMTime
	default:
		s.error(w, r, badRequest("sort must be name, size or mtime."))
		return
	}
	if o := q.Get("order"); o != "" && o != "asc" && o != "desc" {
		s.error(w, r, badRequest("order must be asc or desc."))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		switch {
		case l == "all":
			opt.Limit = 0
		case err != nil || n < 1 || n > files.MaxPageSize:
			s.error(w, r, badRequest("limit must be a number from 1 to 1000, or \"all\"."))
			return
		default:
			opt.Limit = n
		}
	}
	if c := q.Get("cursor"); c != "" {
		after, err := decodeCursor(c, opt.Sort, opt.Desc)
		if err != nil {
			s.error(w, r, err)
			return
		}
		opt.After = after
	}
	page, err := s.Files.List(r.Context(), UserFrom(r), mux.Vars(r)["id"], opt)
	if err != nil {
		s.error(w, r, err)
		return
	}
	resp := map[string]any{"items": s.nodesJSON(r, page.Items), "next_cursor": nil}
	if page.Next != nil {
		resp["next_cursor"] = encodeCursor(page.Next, opt.Sort, opt.Desc)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleNode(w http.ResponseWriter, r *http.Request) {
	u, id := UserFrom(r), mux.Vars(r)["id"]
	n, err := s.Files.Get(r.Context(), u, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	j := s.nodeJSON(r, n)
	if j.Path, err = s.Files.Path(r.Context(), u, id); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) handleResolve(w http.ResponseWriter, r *http.Request) {
	n, err := s.Files.Resolve(r.Context(), UserFrom(r), mux.Vars(r)["space"], r.URL.Query().Get("path"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	j := s.nodeJSON(r, n)
	j.Path, _ = s.Files.Path(r.Context(), UserFrom(r), n.ID)
	writeJSON(w, http.StatusOK, j)
}

type mkdirRequest struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

func (s *Server) handleMkdir(w http.ResponseWriter, r *http.Request) {
	var req mkdirRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	n, err := s.Files.Mkdir(r.Context(), UserFrom(r), mux.Vars(r)["id"], req.Name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.nodeJSON(r, n))
}

func (s *Server) handleMkdirAll(w http.ResponseWriter, r *http.Request) {
	var req mkdirRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Path == "" {
		s.error(w, r, badRequest("path is required, e.g. \"/projects/2026/q1\"."))
		return
	}
	n, err := s.Files.MkdirAll(r.Context(), UserFrom(r), mux.Vars(r)["space"], req.Path)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.nodeJSON(r, n))
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	res, err := s.Files.Search(r.Context(), UserFrom(r), mux.Vars(r)["space"], r.URL.Query().Get("q"), limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": s.nodesJSON(r, res)})
}

func (s *Server) handleTrash(w http.ResponseWriter, r *http.Request) {
	items, err := s.Files.Trash(r.Context(), UserFrom(r), mux.Vars(r)["space"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": s.nodesJSON(r, items)})
}

func (s *Server) handleEmptyTrash(w http.ResponseWriter, r *http.Request) {
	n, err := s.Files.EmptyTrash(r.Context(), UserFrom(r), mux.Vars(r)["space"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": n})
}

type changeJSON struct {
	Seq    int64     `json:"seq"`
	NodeID string    `json:"node_id"`
	Op     string    `json:"op"`
	At     time.Time `json:"at"`
}

// handleChanges is the sync delta: journal entries after a cursor, with an
// optional long-poll (wait, in seconds, at most 120).
func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u, space := UserFrom(r), mux.Vars(r)["space"]
	if q.Get("cursor") == "" {
		cur, err := s.Files.LatestCursor(r.Context(), u, space)
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"cursor": strconv.FormatInt(cur, 10), "changes": []changeJSON{}, "more": false})
		return
	}
	cur, err := strconv.ParseInt(q.Get("cursor"), 10, 64)
	if err != nil || cur < 0 {
		s.error(w, r, badRequest("cursor must be a value returned by this endpoint."))
		return
	}
	wait := 0
	if ws := q.Get("wait"); ws != "" {
		if wait, err = strconv.Atoi(ws); err != nil || wait < 0 || wait > 120 {
			s.error(w, r, badRequest("wait must be a number of seconds from 0 to 120."))
			return
		}
	}
	ctx := r.Context()
	ctx, cancel := contextStoppedBy(ctx, s.Stopping)
	defer cancel()
	cs, err := s.Files.Changes(ctx, u, space, cur, 0, time.Duration(wait)*time.Second)
	if err != nil {
		if ctx.Err() != nil && r.Context().Err() == nil {
			cs.Cursor = cur // shutting down: an empty answer, try again
		} else {
			s.error(w, r, err)
			return
		}
	}
	out := make([]changeJSON, 0, len(cs.Changes))
	for _, c := range cs.Changes {
		out = append(out, changeJSON{Seq: c.Seq, NodeID: c.NodeID, Op: c.Op, At: c.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"cursor": strconv.FormatInt(cs.Cursor, 10), "changes": out, "more": cs.More})
}
