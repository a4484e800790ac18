package dav

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/veloxhq/velox/internal/files"
)

// The server version reported to clients. The clients gate behaviour on it
// (share types from 10.0, Depth:0 etag polls from 8.1), so it has the shape
// of a current Nextcloud version; status.php and the capabilities must
// agree.
const (
	serverVersion       = "25.0.3.2"
	serverVersionString = "25.0.3"
	productName         = "Velox"
)

func statusBody() map[string]any {
	return map[string]any{
		"installed":       true,
		"maintenance":     false,
		"needsDbUpgrade":  false,
		"version":         serverVersion,
		"versionstring":   serverVersionString,
		"edition":         "",
		"productname":     productName,
		"extendedSupport": false,
	}
}

// serveStatus answers GET /status.php, which the Nextcloud client requires
// before anything else (200, JSON, with "installed").
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, statusBody())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of plain values are marshalled here
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// capabilities lists what the sync clients read (sync-protocol.md §1.4).
//
// Chunked uploads of the "chunking NG" kind (/remote.php/dav/uploads/) are
// not implemented, so files.bigfilechunking is false and there is no
// dav.chunking: owncloudcmd then uploads every file with a single PUT. The
// Nextcloud client 3.x still sends files above 10 MB as legacy chunks
// (OC-Chunked), which the server assembles (chunked.go). TUS, bulk upload
// and file locking are deliberately absent: advertising them changes how
// clients upload.
func capabilities() map[string]any {
	return map[string]any{
		"version": map[string]any{"major": 25, "minor": 0, "micro": 3, "string": serverVersionString,
			"edition": "", "extendedSupport": false},
		"capabilities": map[string]any{
			"core": map[string]any{
				"pollinterval": 60,
				"webdav-root":  "remote.php/webdav",
				"status":       statusBody(),
			},
			"files": map[string]any{
				"bigfilechunking":   false,
				"blacklisted_files": []string{".htaccess"},
				"undelete":          false,
				"versioning":        false,
			},
			"checksums": map[string]any{
				"supportedTypes":      []string{"SHA1"},
				"preferredUploadType": "SHA1",
			},
			"files_sharing": map[string]any{
				"api_enabled": false,
				"public":      map[string]any{"enabled": false},
			},
		},
	}
}

// serveOCS answers the OCS endpoints the clients bootstrap with.
func (h *Handler) serveOCS(w http.ResponseWriter, r *http.Request, u *files.User) {
	v2 := strings.HasPrefix(r.URL.Path, prefixOCSv2)
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, prefixOCSv1), prefixOCSv2)
	rest = strings.TrimSuffix(rest, "/")
	var data any
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.ocsReply(w, r, v2, http.StatusMethodNotAllowed, 405, "Method not allowed.", nil)
		return
	case rest == "cloud/capabilities":
		data = capabilities()
	case rest == "cloud/user":
		name := u.DisplayName
		if name == "" {
			name = u.Username
		}
		data = map[string]any{"id": u.Username, "display-name": name, "displayname": name, "email": u.Email}
	default:
		h.ocsReply(w, r, v2, http.StatusNotFound, 998, "Not found.", nil)
		return
	}
	h.ocsReply(w, r, v2, http.StatusOK, 0, "OK", data)
}

// ocsReply writes the OCS envelope. v1 always answers HTTP 200 with the
// result in statuscode (100 = OK); v2 mirrors the status in HTTP and uses
// 200 for OK.
func (h *Handler) ocsReply(w http.ResponseWriter, r *http.Request, v2 bool, httpStatus, code int, msg string, data any) {
	status := "ok"
	if httpStatus != http.StatusOK {
		status = "failure"
	} else if v2 {
		code = 200
	} else {
		code = 100
	}
	if !v2 {
		httpStatus = http.StatusOK
	}
	if data == nil {
		data = []any{}
	}
	env := map[string]any{"ocs": map[string]any{
		"meta": map[string]any{"status": status, "statuscode": code, "message": msg},
		"data": data,
	}}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, httpStatus, env)
		return
	}
	var b strings.Builder
	b.WriteString(xmlHeader)
	writeOCSXML(&b, "ocs", env["ocs"])
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	w.WriteHeader(httpStatus)
	w.Write([]byte(b.String()))
}

// writeOCSXML renders the plain maps, slices and scalars of an OCS reply
// as OCS XML: map keys become elements, list items become <element>.
func writeOCSXML(b *strings.Builder, name string, v any) {
	b.WriteString("<" + name + ">")
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			writeOCSXML(b, k, t[k])
		}
	case []string:
		for _, s := range t {
			writeOCSXML(b, "element", s)
		}
	case []any:
		for _, s := range t {
			writeOCSXML(b, "element", s)
		}
	case string:
		xml.EscapeText(b, []byte(t))
	case bool:
		if t {
			b.WriteString("1")
		}
	case int:
		b.WriteString(strconv.Itoa(t))
	}
	b.WriteString("</" + name + ">")
}
