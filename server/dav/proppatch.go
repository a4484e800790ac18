package dav

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
)

// Modification-time properties clients set with PROPPATCH: rclone sets
// {DAV:}lastmodified to Unix seconds; others set getlastmodified to an HTTP
// date.
var pLastModifiedRclone = xml.Name{Space: nsDAV, Local: "lastmodified"}

// handleProppatch sets and removes dead properties, all or nothing
// (RFC 4918 §9.2): if any instruction fails, none is applied and the others
// are reported as 424 Failed Dependency.
func (h *Handler) handleProppatch(w http.ResponseWriter, r *http.Request, t *target) {
	body, err := readXMLBody(r)
	if err != nil {
		h.davError(w, r, xmlBodyStatus(err), "", err.Error())
		return
	}
	ops, err := parseProppatch(body)
	if err != nil {
		h.davError(w, r, http.StatusBadRequest, "", err.Error())
		return
	}
	ctx := r.Context()
	n, err := h.resolve(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}

	// Later instructions for a name override earlier ones, so a remove
	// followed by a set leaves the property set and vice versa.
	final := map[xml.Name]patchOp{}
	var order []xml.Name
	var mtime time.Time
	ok := &propstat{status: http.StatusOK}
	forbidden := &propstat{status: http.StatusForbidden}
	conflict := &propstat{status: http.StatusConflict}
	for _, op := range ops {
		switch {
		case op.name == pLastModifiedRclone || op.name == pLastModified:
			mt, perr := parseMTime(op.text)
			if op.remove || perr != nil {
				conflict.add(op.name, "")
				continue
			}
			mtime = mt
			ok.add(op.name, "")
		case op.name == pOCChecksums && !op.remove:
			// rclone sends the checksums it knows along with the mtime.
			// The server computes its own from the bytes, so the value
			// is accepted and not stored: a stored copy would go stale
			// with the next upload.
			ok.add(op.name, "")
		case isLive(op.name):
			forbidden.add(op.name, "")
		default:
			if _, seen := final[op.name]; !seen {
				order = append(order, op.name)
				ok.add(op.name, "")
			}
			final[op.name] = op
		}
	}
	if len(forbidden.names) > 0 || len(conflict.names) > 0 {
		ok.status = http.StatusFailedDependency
	} else {
		var set, remove []metadata.Prop
		for _, name := range order {
			op := final[name]
			p := metadata.Prop{NS: name.Space, Name: name.Local, Value: op.value}
			if op.remove {
				remove = append(remove, p)
			} else {
				set = append(set, p)
			}
		}
		if len(set)+len(remove) > 0 {
			if err := h.files.PatchProps(ctx, t.user, n.ID, set, remove); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		if !mtime.IsZero() {
			if _, err := h.files.SetMTime(ctx, t.user, n.ID, mtime); err != nil {
				h.fail(w, r, err)
				return
			}
		}
	}
	var b strings.Builder
	b.WriteString(multistatusOpen)
	writeResponse(&b, t.href(t.names, n.IsFolder()), ok, forbidden, conflict)
	b.WriteString(multistatusClose)
	w.Header().Set("Content-Type", contentTypeXML)
	w.WriteHeader(http.StatusMultiStatus)
	w.Write([]byte(b.String()))
}

// parseMTime accepts Unix seconds (rclone, X-OC-Mtime) or an HTTP date.
func parseMTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0).UTC(), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e12 {
		return time.Unix(0, int64(f*1e9)).UTC(), nil
	}
	return http.ParseTime(s)
}
