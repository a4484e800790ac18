// Package dav serves a user's files over WebDAV in the shape ownCloud and
// Nextcloud sync clients, rclone and litmus expect: /remote.php/dav/files/{user}/
// and the legacy /remote.php/webdav/, plus the small status.php and OCS
// endpoints the desktop clients read while bootstrapping.
//
// It is a purpose-built handler on encoding/xml rather than an adapter for
// golang.org/x/net/webdav. The sync clients need exact multistatus
// Content-Types, ETags on folders taken from the metadata store, oc:id and
// friends, conditional and mtime-setting PUTs, finite-depth PROPFIND and
// streamed listings of huge folders. Each of those would mean intercepting
// or wrapping x/net/webdav, and at that point the adapter would be larger
// and harder to reason about than the handler itself.
//
// Locking is advisory only: LOCK hands out tokens so that clients which
// insist on locking before writing (Finder, Windows) can proceed, but locks
// are neither stored nor enforced.
package dav

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/veloxhq/velox/internal/files"
)

// URL prefixes this handler serves. The router must pass requests under
// them unchanged (no prefix stripping).
const (
	prefixWebDAV  = "/remote.php/webdav"
	prefixFiles   = "/remote.php/dav/files/"
	prefixUploads = "/remote.php/dav/uploads/"
	pathStatus    = "/status.php"
	prefixOCSv1   = "/ocs/v1.php/"
	prefixOCSv2   = "/ocs/v2.php/"
)

// maxXMLBody bounds PROPFIND, PROPPATCH and LOCK bodies, which are parsed in
// memory.
const maxXMLBody = 1 << 20

// Handler serves WebDAV, status.php and the OCS endpoints.
type Handler struct {
	files  *files.Service
	user   func(r *http.Request) *files.User
	logger *slog.Logger
}

// New returns the WebDAV handler for the files of the user returned by
// user(r) (nil → 401 with WWW-Authenticate: Basic realm="Velox").
//
// Route these paths to it without stripping the prefix:
// /remote.php/webdav (and below), /remote.php/dav/ (and below), /status.php,
// /ocs/v1.php/cloud/ and /ocs/v2.php/cloud/.
func New(svc *files.Service, user func(r *http.Request) *files.User, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{files: svc, user: user, logger: logger}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == pathStatus {
		// Unauthenticated: clients probe it before they have credentials.
		h.serveStatus(w, r)
		return
	}
	u := h.user(r)
	if u == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="Velox"`)
		http.Error(w, "Authentication required.", http.StatusUnauthorized)
		return
	}
	switch {
	case strings.HasPrefix(p, prefixOCSv1) || strings.HasPrefix(p, prefixOCSv2):
		h.serveOCS(w, r, u)
	case strings.HasPrefix(p, prefixUploads):
		// Chunking NG (MKCOL/PUT chunks/MOVE .file) is not implemented;
		// the capabilities say so (files.bigfilechunking=false, no
		// dav.chunking), so well-behaved clients never come here. An
		// uploads handler slots in at this point.
		h.davError(w, r, http.StatusNotImplemented, "",
			"Chunked uploads through /remote.php/dav/uploads/ are not supported: upload with a single PUT "+
				"(with rclone, use vendor=owncloud, or --webdav-nextcloud-chunk-size 0 with vendor=nextcloud).")
	default:
		t, err := h.target(r.Context(), u, r.URL.EscapedPath())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.serveDAV(w, r, t)
	}
}

// serveDAV dispatches a request for a path in the user's tree.
func (h *Handler) serveDAV(w http.ResponseWriter, r *http.Request, t *target) {
	switch r.Method {
	case http.MethodOptions:
		h.handleOptions(w, r)
	case "PROPFIND":
		h.handlePropfind(w, r, t)
	case "PROPPATCH":
		h.handleProppatch(w, r, t)
	case http.MethodGet, http.MethodHead:
		h.handleGet(w, r, t)
	case http.MethodPut:
		h.handlePut(w, r, t)
	case "MKCOL":
		h.handleMkcol(w, r, t)
	case http.MethodDelete:
		h.handleDelete(w, r, t)
	case "MOVE", "COPY":
		h.handleCopyMove(w, r, t)
	case "LOCK":
		h.handleLock(w, r, t)
	case "UNLOCK":
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", allowedMethods)
		h.davError(w, r, http.StatusMethodNotAllowed, "", "Method not supported.")
	}
}

const allowedMethods = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK"

func (h *Handler) handleOptions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("DAV", "1, 2")
	w.Header().Set("Allow", allowedMethods)
	// Microsoft clients look for this before they write.
	w.Header().Set("MS-Author-Via", "DAV")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// target is a resolved request path in a user's tree.
type target struct {
	user  *files.User
	space files.SpaceView
	// root is the URL path of the tree's root as the client addressed
	// it, without a trailing slash: hrefs in responses must start with
	// the path the client asked for.
	root  string
	names []string
}

// path returns the target's path in the space, "/" for the root.
func (t *target) path() string { return "/" + strings.Join(t.names, "/") }

// href returns the escaped URL path of the node at names.
func (t *target) href(names []string, folder bool) string {
	var b strings.Builder
	b.WriteString(t.root)
	for _, n := range names {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(n))
	}
	if folder {
		b.WriteByte('/')
	}
	return b.String()
}

// target resolves an escaped URL path to a place in u's personal space.
func (h *Handler) target(ctx context.Context, u *files.User, escaped string) (*target, error) {
	root, names, err := splitDAVPath(escaped, u.Username)
	if err != nil {
		return nil, err
	}
	sv, err := h.files.PersonalSpace(ctx, u)
	if err != nil {
		return nil, err
	}
	return &target{user: u, space: sv, root: root, names: names}, nil
}

// resolve returns the node at t, or a not_found *files.Error.
func (h *Handler) resolve(ctx context.Context, t *target) (*files.Node, error) {
	return h.files.Resolve(ctx, t.user, t.space.ID, t.path())
}

// resolveParent returns the folder that holds t. A missing parent, or a
// file where a folder should be, is a conflict: WebDAV answers 409 when the
// intermediate collections do not exist.
func (h *Handler) resolveParent(ctx context.Context, t *target) (*files.Node, error) {
	parent, err := h.files.Resolve(ctx, t.user, t.space.ID, "/"+strings.Join(t.names[:len(t.names)-1], "/"))
	if files.ErrorCode(err) == files.CodeNotFound {
		return nil, &files.Error{Code: files.CodeConflict, Message: "The parent folder does not exist."}
	}
	if err != nil {
		return nil, err
	}
	if !parent.IsFolder() {
		return nil, &files.Error{Code: files.CodeConflict, Message: "The parent is a file, not a folder."}
	}
	return parent, nil
}

// errStatus maps an error to an HTTP status.
func errStatus(err error) int {
	var e *files.Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return 499 // client went away; logged at debug level only
		}
		return http.StatusInternalServerError
	}
	switch e.Code {
	case files.CodeNotFound:
		return http.StatusNotFound
	case files.CodeConflict:
		return http.StatusConflict
	case files.CodeInvalidName, files.CodeInvalidRequest, files.CodeIncomplete:
		return http.StatusBadRequest
	case files.CodePreconditionFailed:
		return http.StatusPreconditionFailed
	case files.CodeForbidden:
		return http.StatusForbidden
	case files.CodeTooLarge:
		return http.StatusInsufficientStorage
	case files.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail writes err as a DAV error response. Internal errors are logged here,
// once, and their details are not shown to the client.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := errStatus(err)
	msg := "Internal error."
	var e *files.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	switch {
	case status == 499:
		h.logger.Debug("dav: client went away", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	case status >= 500:
		h.logger.Error("dav request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h.davError(w, r, status, "", msg)
}

// davError writes a Sabre-style error body, which the ownCloud and
// Nextcloud clients show to users. cond, if set, is a DAV: precondition
// element name (RFC 4918 §16).
func (h *Handler) davError(w http.ResponseWriter, r *http.Request, status int, cond, msg string) {
	w.Header().Set("Content-Type", contentTypeXML)
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	var b strings.Builder
	b.WriteString(xmlHeader + `<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">`)
	if cond != "" {
		b.WriteString("<d:" + cond + "/>")
	}
	b.WriteString("<s:message>")
	escape(&b, msg)
	b.WriteString("</s:message></d:error>\n")
	w.Write([]byte(b.String()))
}
