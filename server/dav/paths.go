package dav

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/veloxhq/velox/internal/files"
)

var errNoTree = &files.Error{Code: files.CodeNotFound, Message: "No such WebDAV folder."}

// splitDAVPath splits an escaped URL path under one of the user's DAV roots
// into the root as the client spelled it and the cleaned names below it.
//
// Segments are unescaped one at a time, after splitting on '/', so an
// encoded slash ("%2F") stays inside its segment and is then rejected as a
// character no name may contain, instead of silently adding a level. ".."
// and "." (also encoded) are rejected, never resolved, so no path can leave
// the space. Another user's tree is reported as not found.
func splitDAVPath(escaped, username string) (root string, names []string, err error) {
	var rest string
	switch {
	case escaped == prefixWebDAV || strings.HasPrefix(escaped, prefixWebDAV+"/"):
		root, rest = prefixWebDAV, escaped[len(prefixWebDAV):]
	case strings.HasPrefix(escaped, prefixFiles):
		seg, after, _ := strings.Cut(escaped[len(prefixFiles):], "/")
		name, err := url.PathUnescape(seg)
		if err != nil || name == "" || name != username {
			return "", nil, errNoTree
		}
		root, rest = prefixFiles+seg, after
	default:
		return "", nil, errNoTree
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" {
			continue
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", nil, &files.Error{Code: files.CodeInvalidName, Message: "The path is not validly percent-encoded."}
		}
		name, err := files.CleanName(dec)
		if err != nil {
			return "", nil, err
		}
		names = append(names, name)
	}
	return root, names, nil
}

var errBadDestination = &files.Error{Code: files.CodeInvalidRequest, Message: "The Destination header must be a URL or path in your WebDAV folder."}

// destination parses the Destination header of a COPY or MOVE: an absolute
// URL (rclone, litmus) or an absolute path (ownCloud and Nextcloud clients),
// which must lie in the same user's tree. Either DAV root is accepted, since
// both are the same tree.
func (h *Handler) destination(r *http.Request, src *target) (*target, int, error) {
	raw := r.Header.Get("Destination")
	if raw == "" {
		return nil, http.StatusBadRequest, errBadDestination
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, http.StatusBadRequest, errBadDestination
	}
	if u.Host != "" && !sameHost(r, u.Host) {
		// RFC 4918 §9.8.5: the destination is on another server.
		return nil, http.StatusBadGateway, errBadDestination
	}
	root, names, err := splitDAVPath(u.EscapedPath(), src.user.Username)
	if err != nil {
		if files.ErrorCode(err) == files.CodeNotFound {
			return nil, http.StatusForbidden, errBadDestination
		}
		return nil, http.StatusBadRequest, err
	}
	return &target{user: src.user, space: src.space, root: root, names: names}, 0, nil
}

// sameHost reports whether host names this server: the Host the request
// arrived with, or the one a reverse proxy in front of it forwarded. (The
// destination path is confined to the user's tree either way; the check
// only keeps a copy meant for another server from landing here.)
func sameHost(r *http.Request, host string) bool {
	if strings.EqualFold(host, r.Host) {
		return true
	}
	for _, v := range r.Header.Values("X-Forwarded-Host") {
		for _, h := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(h), host) {
				return true
			}
		}
	}
	return false
}
