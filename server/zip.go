package server

import (
	"archive/zip"
	"compress/flate"
	"context"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
)

// Zip downloads stream an archive straight into the response: each file
// is read from storage and deflated as it goes, so the server holds one
// copy buffer per download, never the archive. Every listing and read
// goes through files.Service, so the archive holds exactly what the user
// may read.

// maxZipItems bounds how many ids one zip request may name.
const maxZipItems = 1000

// registerZip adds the zip download routes.
func (s *Server) registerZip(authed authedRouter) {
	authed.HandleFunc("/nodes/{id}/zip", s.handleNodeZip).Methods(http.MethodGet)
	authed.HandleFunc("/zip", s.handleSelectionZip).Methods(http.MethodGet, http.MethodPost)
}

func (s *Server) handleNodeZip(w http.ResponseWriter, r *http.Request) {
	n, err := s.Files.Get(r.Context(), UserFrom(r), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	name := n.Name
	if n.ParentID == "" {
		// A space's top folder: name the archive after the space.
		if sv, err := s.Files.Space(r.Context(), UserFrom(r), n.SpaceID); err == nil {
			name = sv.Name
		}
	}
	s.writeZip(w, r, strings.TrimSuffix(name, ".zip")+".zip", []*files.Node{n}, n.ParentID == "")
}

type zipRequest struct {
	IDs  []string `json:"ids"`
	Name string   `json:"name"`
}

// handleSelectionZip archives several nodes: GET ?ids=a,b,c&name=x (for
// links in the browser, which cannot attach a CSRF header to a download)
// or POST {"ids": [...], "name": "x"}.
func (s *Server) handleSelectionZip(w http.ResponseWriter, r *http.Request) {
	var req zipRequest
	if r.Method == http.MethodPost {
		if err := decodeJSON(w, r, &req); err != nil {
			s.error(w, r, err)
			return
		}
	} else {
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if id = strings.TrimSpace(id); id != "" {
				req.IDs = append(req.IDs, id)
			}
		}
		req.Name = r.URL.Query().Get("name")
	}
	if len(req.IDs) == 0 || len(req.IDs) > maxZipItems {
		s.error(w, r, badRequest("ids must name from 1 to 1000 files or folders."))
		return
	}
	nodes := make([]*files.Node, 0, len(req.IDs))
	for _, id := range req.IDs {
		n, err := s.Files.Get(r.Context(), UserFrom(r), id)
		if err != nil {
			s.error(w, r, err)
			return
		}
		nodes = append(nodes, n)
	}
	name := strings.TrimSuffix(strings.TrimSpace(req.Name), ".zip")
	if name == "" || strings.ContainsAny(name, "/\\") {
		name = "download"
	}
	s.writeZip(w, r, name+".zip", nodes, false)
}

// writeZip streams the archive. With flatten, a single folder's contents
// go at the top of the archive instead of inside a folder entry.
func (s *Server) writeZip(w http.ResponseWriter, r *http.Request, name string, nodes []*files.Node, flatten bool) {
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	z := &zipper{s: s, r: r, zw: zw, seen: map[string]bool{}}
	var err error
	for _, n := range nodes {
		prefix := ""
		if !(flatten && n.IsFolder()) {
			prefix = z.unique(n.Name)
		}
		if err = z.add(n, prefix); err != nil {
			break
		}
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		if r.Context().Err() == nil {
			s.Logger.Warn("zip download failed", "request_id", requestID(r), "err", err)
		}
		// The status line is gone; cut the connection so the client sees
		// a failed download instead of a truncated archive that looks whole.
		panic(http.ErrAbortHandler)
	}
}

type zipper struct {
	s    *Server
	r    *http.Request
	zw   *zip.Writer
	seen map[string]bool
	buf  []byte
}

// unique returns p, or p with " (2)", " (3)"… if two selected items share a name.
func (z *zipper) unique(p string) string {
	cand := p
	for i := 2; z.seen[cand]; i++ {
		ext := path.Ext(p)
		cand = strings.TrimSuffix(p, ext) + " (" + itoa(i) + ")" + ext
	}
	z.seen[cand] = true
	return cand
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// add writes node n at archive path p (folders recursively; "" is the top).
func (z *zipper) add(n *files.Node, p string) error {
	ctx, u := z.r.Context(), UserFrom(z.r)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.IsFolder() {
		_, obj, err := z.s.Files.Open(ctx, u, n.ID)
		if err != nil {
			return err
		}
		defer obj.Close()
		fh := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: n.MTime}
		if compressed(n.Name) {
			fh.Method = zip.Store
		}
		fw, err := z.zw.CreateHeader(fh)
		if err != nil {
			return err
		}
		if z.buf == nil {
			z.buf = make([]byte, 256<<10)
		}
		_, err = io.CopyBuffer(fw, readSeeker{ctx: ctx, obj: obj}, z.buf)
		return err
	}
	if p != "" {
		if _, err := z.zw.CreateHeader(&zip.FileHeader{Name: p + "/", Modified: n.MTime}); err != nil {
			return err
		}
	}
	opt := metadata.ListOptions{Limit: files.MaxPageSize}
	for {
		page, err := z.s.Files.List(ctx, u, n.ID, opt)
		if err != nil {
			return err
		}
		for _, c := range page.Items {
			cp := c.Name
			if p != "" {
				cp = p + "/" + c.Name
			}
			if err := z.add(c, cp); err != nil {
				return err
			}
		}
		if page.Next == nil {
			return nil
		}
		opt.After = page.Next
	}
}

// compressed reports whether a file name suggests already-compressed
// content, which is stored rather than deflated again.
func compressed(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jpg", ".jpeg", ".png", ".gif", ".webp",
		".mp4", ".mov", ".mkv", ".webm", ".mp3", ".m4a", ".ogg", ".docx", ".xlsx", ".pptx", ".odt", ".ods":
		return true
	}
	return false
}

// readSeeker reads a blob until the request's context ends, so a zip or
// thumbnail stops reading storage when the client goes away.
type readSeeker struct {
	ctx context.Context
	obj storage.Object
}

func (rs readSeeker) Read(p []byte) (int, error) {
	if err := rs.ctx.Err(); err != nil {
		return 0, err
	}
	return rs.obj.Read(p)
}
