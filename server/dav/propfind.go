package dav

import (
	"bufio"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// listPage is how many children a Depth:1 PROPFIND reads per query. The
// response is written while the folder is paged through, so a huge folder
// costs bounded memory and two queries per page (children, dead props).
const listPage = 500

// Live properties. A live property is computed from the node; PROPPATCH
// cannot set it (except the modification time, see proppatch.go).
var (
	pResourceType  = xml.Name{Space: nsDAV, Local: "resourcetype"}
	pLastModified  = xml.Name{Space: nsDAV, Local: "getlastmodified"}
	pCreationDate  = xml.Name{Space: nsDAV, Local: "creationdate"}
	pContentLength = xml.Name{Space: nsDAV, Local: "getcontentlength"}
	pContentType   = xml.Name{Space: nsDAV, Local: "getcontenttype"}
	pETag          = xml.Name{Space: nsDAV, Local: "getetag"}
	pDisplayName   = xml.Name{Space: nsDAV, Local: "displayname"}
	pSupportedLock = xml.Name{Space: nsDAV, Local: "supportedlock"}
	pLockDiscovery = xml.Name{Space: nsDAV, Local: "lockdiscovery"}
	pQuotaUsed     = xml.Name{Space: nsDAV, Local: "quota-used-bytes"}
	pQuotaAvail    = xml.Name{Space: nsDAV, Local: "quota-available-bytes"}
	pOCID          = xml.Name{Space: nsOC, Local: "id"}
	pOCFileID      = xml.Name{Space: nsOC, Local: "fileid"}
	pOCPermissions = xml.Name{Space: nsOC, Local: "permissions"}
	pOCSize        = xml.Name{Space: nsOC, Local: "size"}
	pOCChecksums   = xml.Name{Space: nsOC, Local: "checksums"}
	pOCShareTypes  = xml.Name{Space: nsOC, Local: "share-types"}
)

// allProps are the live properties an allprop or propname request lists,
// in this order.
var allProps = []xml.Name{pResourceType, pLastModified, pCreationDate, pContentLength, pContentType, pETag,
	pDisplayName, pSupportedLock, pLockDiscovery, pOCID, pOCFileID, pOCPermissions, pOCSize, pOCChecksums}

// isLive reports whether liveProp knows name; PROPPATCH refuses to set
// such names.
func isLive(name xml.Name) bool {
	switch name {
	case pQuotaUsed, pQuotaAvail, pOCShareTypes:
		return true
	}
	return contains(allProps, name)
}

const supportedLockXML = `<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>` +
	`<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>`

// liveProp returns the inner XML of a live property of n and whether n
// has it.
func liveProp(n *files.Node, name xml.Name) (string, bool) {
	folder := n.IsFolder()
	switch name {
	case pResourceType:
		if folder {
			return "<d:collection/>", true
		}
		return "", true
	case pLastModified:
		return n.MTime.UTC().Format(http.TimeFormat), true
	case pCreationDate:
		return n.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), true
	case pContentLength:
		return strconv.FormatInt(n.Size, 10), !folder
	case pContentType:
		if folder {
			return "", false
		}
		return xmlText(contentType(n)), true
	case pETag:
		return `"` + xmlText(n.ETag) + `"`, true
	case pDisplayName:
		return xmlText(n.Name), true
	case pSupportedLock:
		return supportedLockXML, true
	case pLockDiscovery:
		return "", true
	case pOCID, pOCFileID:
		return xmlText(n.ID), true
	case pOCPermissions:
		// The owner's rights, as ownCloud spells them: (R)eshare,
		// (D)elete, re(N)ame, mo(V)e, and for folders add (C) files and
		// (K) folders, for files (W)rite.
		if folder {
			return "RDNVCK", true
		}
		return "RDNVW", true
	case pOCSize:
		return strconv.FormatInt(n.Size, 10), true
	case pOCChecksums:
		if folder || n.SHA256 == "" {
			return "", false
		}
		return "<oc:checksum>SHA256:" + xmlText(n.SHA256) + "</oc:checksum>", true
	case pOCShareTypes:
		return "", true
	case pQuotaUsed:
		return strconv.FormatInt(n.Size, 10), folder
	case pQuotaAvail:
		// -3: unlimited, in ownCloud's convention.
		return "-3", folder
	}
	return "", false
}

func contentType(n *files.Node) string {
	if n.ContentType != "" {
		return n.ContentType
	}
	return "application/octet-stream"
}

func xmlText(s string) string {
	var b strings.Builder
	escape(&b, s)
	return b.String()
}

// needsDeadProps reports whether answering req needs the dead properties.
func (req *propfindReq) needsDeadProps() bool {
	if req.mode != modeProp {
		return true
	}
	for _, n := range req.names {
		if !isLive(n) {
			return true
		}
	}
	return false
}

// propResponse writes the <d:response> of one node.
func propResponse(b *strings.Builder, href string, n *files.Node, req *propfindReq, dead []metadata.Prop) {
	ok := &propstat{status: http.StatusOK}
	missing := &propstat{status: http.StatusNotFound}
	deadValue := func(name xml.Name) (string, bool) {
		for _, p := range dead {
			if p.NS == name.Space && p.Name == name.Local {
				return p.Value, true
			}
		}
		return "", false
	}
	switch req.mode {
	case modeProp:
		for _, name := range req.names {
			if v, has := liveProp(n, name); has {
				ok.add(name, v)
			} else if v, has := deadValue(name); has {
				ok.add(name, v)
			} else {
				missing.add(name, "")
			}
		}
	case modeAllProp, modePropName:
		for _, name := range allProps {
			if v, has := liveProp(n, name); has {
				if req.mode == modePropName {
					v = ""
				}
				ok.add(name, v)
			}
		}
		for _, p := range dead {
			v := p.Value
			if req.mode == modePropName {
				v = ""
			}
			ok.add(xml.Name{Space: p.NS, Local: p.Name}, v)
		}
		// <include> asks for properties allprop leaves out.
		for _, name := range req.names {
			if v, has := liveProp(n, name); has && !contains(ok.names, name) {
				ok.add(name, v)
			}
		}
	}
	writeResponse(b, href, ok, missing)
}

func contains(names []xml.Name, n xml.Name) bool {
	for _, m := range names {
		if m == n {
			return true
		}
	}
	return false
}

// handlePropfind answers Depth 0 and 1. Depth infinity (also implied by a
// missing Depth header) is refused, as oCIS and Nextcloud do: walking a
// whole tree in one response is a denial-of-service vector and no sync
// client needs it.
func (h *Handler) handlePropfind(w http.ResponseWriter, r *http.Request, t *target) {
	depth := r.Header.Get("Depth")
	if depth != "0" && depth != "1" {
		h.davError(w, r, http.StatusForbidden, "propfind-finite-depth", "PROPFIND needs Depth: 0 or 1.")
		return
	}
	body, err := readXMLBody(r)
	if err != nil {
		h.davError(w, r, xmlBodyStatus(err), "", err.Error())
		return
	}
	req, err := parsePropfind(body)
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
	var dead []metadata.Prop
	if req.needsDeadProps() {
		if dead, err = h.files.Props(ctx, t.user, n.ID); err != nil {
			h.fail(w, r, err)
			return
		}
	}

	w.Header().Set("Content-Type", contentTypeXML)
	w.WriteHeader(http.StatusMultiStatus)
	bw := bufio.NewWriterSize(w, 32<<10)
	var b strings.Builder
	b.WriteString(multistatusOpen)
	propResponse(&b, t.href(t.names, n.IsFolder()), n, req, dead)
	bw.WriteString(b.String())

	if depth == "1" && n.IsFolder() {
		names := append(t.names[:len(t.names):len(t.names)], "")
		opt := metadata.ListOptions{Limit: listPage}
		for {
			page, err := h.files.List(ctx, t.user, n.ID, opt)
			if err != nil {
				h.abort(r, err)
			}
			var props map[string][]metadata.Prop
			if req.needsDeadProps() && len(page.Items) > 0 {
				ids := make([]string, len(page.Items))
				for i, c := range page.Items {
					ids[i] = c.ID
				}
				if props, err = h.files.ChildProps(ctx, t.user, n.ID, ids); err != nil {
					h.abort(r, err)
				}
			}
			for _, c := range page.Items {
				b.Reset()
				names[len(names)-1] = c.Name
				propResponse(&b, t.href(names, c.IsFolder()), c, req, props[c.ID])
				if _, err := bw.WriteString(b.String()); err != nil {
					h.abort(r, err)
				}
			}
			if page.Next == nil {
				break
			}
			opt.After = page.Next
		}
	}
	bw.WriteString(multistatusClose)
	bw.Flush()
}

// abort ends a response whose status is already sent: the connection is
// cut, so the client sees a broken response rather than a truncated but
// well-formed listing it might trust.
func (h *Handler) abort(r *http.Request, err error) {
	if r.Context().Err() == nil {
		h.logger.Error("dav: response aborted", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}
