// Package blobhttp serves stored blobs over HTTP, for the REST API and for
// WebDAV alike: Range and conditional requests through http.ServeContent,
// sendfile(2) for plain local files, and for other objects a reader a
// buffer ahead of the client.
package blobhttp

import (
	"net/http"
	"os"
	"time"

	"github.com/veloxhq/velox/internal/storage"
)

// Serve answers r with the contents of obj; the caller sets Content-Type,
// ETag and the like first. When the first bytes of a whole-file GET cannot
// be read (a blob that fails its integrity check, a store that is down),
// Serve writes nothing and returns the error, so that the caller can
// answer with a proper error response instead of a cut-off download. An
// error later in the file can only cut the response short.
func Serve(w http.ResponseWriter, r *http.Request, mtime time.Time, obj storage.Object) error {
	if f, ok := obj.(interface{ OSFile() *os.File }); ok {
		// A plain local file: net/http sends it with sendfile(2).
		http.ServeContent(w, r, "", mtime, f.OSFile())
		return nil
	}
	ra := newReadAhead(r.Context(), obj)
	defer ra.Close()
	if wholeBody(r) {
		// The first chunk (at least 256 KiB, or the whole file) is read
		// anyway; reading it before the headers costs nothing and turns a
		// failure there into an error response.
		if err := ra.prime(); err != nil {
			return err
		}
	}
	http.ServeContent(readAheadWriter{w, ra}, r, "", mtime, ra)
	return nil
}

// wholeBody reports whether r will be answered with the whole body from
// its first byte: a GET without Range or validators that might make the
// answer a 304 or 412 with no body at all.
func wholeBody(r *http.Request) bool {
	h := r.Header
	return r.Method == http.MethodGet && h.Get("Range") == "" && h.Get("If-None-Match") == "" &&
		h.Get("If-Modified-Since") == "" && h.Get("If-Match") == "" && h.Get("If-Unmodified-Since") == ""
}
