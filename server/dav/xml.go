package dav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// contentTypeXML is the exact Content-Type of XML responses: ownCloud's
// client compares it byte for byte and rejects text/xml.
const contentTypeXML = "application/xml; charset=utf-8"

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// Namespaces with fixed prefixes in responses.
const (
	nsDAV = "DAV:"
	nsOC  = "http://owncloud.org/ns"
	nsNC  = "http://nextcloud.org/ns"
)

var (
	errBadXML      = errors.New("malformed XML request body")
	errBodyTooBig  = errors.New("XML request body too large")
	errEmptyPrefix = errors.New("namespace prefix bound to the empty string")
)

// readXMLBody reads a small XML request body. It returns nil for an empty
// body.
func readXMLBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxXMLBody {
		return nil, errBodyTooBig
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxXMLBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxXMLBody {
		return nil, errBodyTooBig
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return b, nil
}

// xmlBodyStatus is the status for a readXMLBody or parse error.
func xmlBodyStatus(err error) int {
	if errors.Is(err, errBodyTooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// nextStart returns the next start or end element, skipping text, comments
// and processing instructions (owncloud sends a stray "M" inside propfind).
// It rejects xmlns:p="" declarations, which XML Namespaces 1.0 forbids but
// encoding/xml accepts.
func nextStart(d *xml.Decoder) (xml.Token, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, errBadXML
			}
			return nil, fmt.Errorf("%w: %v", errBadXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := checkAttrs(t); err != nil {
				return nil, err
			}
			return t, nil
		case xml.EndElement:
			return t, nil
		}
	}
}

func checkAttrs(t xml.StartElement) error {
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" && a.Value == "" {
			return errEmptyPrefix
		}
	}
	return nil
}

// skipElement consumes the rest of the current element, still checking
// namespace declarations.
func skipElement(d *xml.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := nextStart(d)
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// propNames reads the children of a <prop> element as names.
func propNames(d *xml.Decoder) ([]xml.Name, error) {
	var names []xml.Name
	for {
		tok, err := nextStart(d)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			names = append(names, t.Name)
			if err := skipElement(d); err != nil {
				return nil, err
			}
		case xml.EndElement:
			return names, nil
		}
	}
}

// propfindMode says what a PROPFIND asks for.
type propfindMode int

const (
	modeAllProp propfindMode = iota
	modePropName
	modeProp
)

type propfindReq struct {
	mode    propfindMode
	names   []xml.Name // modeProp: the properties; modeAllProp: <include>d ones
	noBody  bool
	wantAny bool // some name is not a well-known live property
}

// parsePropfind parses a PROPFIND body; an empty body means allprop.
func parsePropfind(body []byte) (*propfindReq, error) {
	if body == nil {
		return &propfindReq{mode: modeAllProp, noBody: true}, nil
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	tok, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	root, ok := tok.(xml.StartElement)
	if !ok || root.Name != (xml.Name{Space: nsDAV, Local: "propfind"}) {
		return nil, errBadXML
	}
	req := &propfindReq{mode: -1}
	for {
		tok, err := nextStart(d)
		if err != nil {
			return nil, err
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			break // </propfind>
		}
		if t.Name.Space != nsDAV {
			if err := skipElement(d); err != nil {
				return nil, err
			}
			continue
		}
		switch t.Name.Local {
		case "prop", "include":
			names, err := propNames(d)
			if err != nil {
				return nil, err
			}
			if t.Name.Local == "prop" {
				if req.mode != -1 {
					return nil, errBadXML
				}
				req.mode = modeProp
			}
			req.names = append(req.names, names...)
		case "allprop", "propname":
			if req.mode != -1 {
				return nil, errBadXML
			}
			req.mode = modeAllProp
			if t.Name.Local == "propname" {
				req.mode = modePropName
			}
			if err := skipElement(d); err != nil {
				return nil, err
			}
		default:
			if err := skipElement(d); err != nil {
				return nil, err
			}
		}
	}
	if req.mode == -1 {
		return nil, errBadXML
	}
	// Anything after the root element must be well-formed too.
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadXML, err)
		}
	}
	return req, nil
}

// patchOp is one set or remove of a PROPPATCH, in document order.
type patchOp struct {
	name   xml.Name
	remove bool
	value  string // self-contained inner XML
	text   string // the character data alone, for live values such as mtimes
}

// parseProppatch parses a propertyupdate body.
func parseProppatch(body []byte) ([]patchOp, error) {
	if body == nil {
		return nil, errBadXML
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	tok, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	root, ok := tok.(xml.StartElement)
	if !ok || root.Name != (xml.Name{Space: nsDAV, Local: "propertyupdate"}) {
		return nil, errBadXML
	}
	var ops []patchOp
	for {
		tok, err := nextStart(d)
		if err != nil {
			return nil, err
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			break
		}
		remove := t.Name == xml.Name{Space: nsDAV, Local: "remove"}
		if !remove && t.Name != (xml.Name{Space: nsDAV, Local: "set"}) {
			if err := skipElement(d); err != nil {
				return nil, err
			}
			continue
		}
		// <set> and <remove> hold <prop> elements.
		for {
			tok, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			p, ok := tok.(xml.StartElement)
			if !ok {
				break
			}
			if p.Name != (xml.Name{Space: nsDAV, Local: "prop"}) {
				if err := skipElement(d); err != nil {
					return nil, err
				}
				continue
			}
			for {
				tok, err := nextStart(d)
				if err != nil {
					return nil, err
				}
				prop, ok := tok.(xml.StartElement)
				if !ok {
					break
				}
				op := patchOp{name: prop.Name, remove: remove}
				if op.value, op.text, err = innerXML(d); err != nil {
					return nil, err
				}
				ops = append(ops, op)
			}
		}
	}
	if len(ops) == 0 {
		return nil, errBadXML
	}
	return ops, nil
}

// innerXML re-serializes the content of the current element so that it is
// self-contained: each element declares its own namespace, since the
// prefixes of the request are gone when the value is sent back in another
// document.
func innerXML(d *xml.Decoder) (value, text string, err error) {
	var v, txt strings.Builder
	var stack []string
	for {
		tok, err := d.Token()
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", errBadXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := checkAttrs(t); err != nil {
				return "", "", err
			}
			v.WriteString("<" + t.Name.Local + ` xmlns="`)
			escape(&v, t.Name.Space)
			v.WriteString(`"`)
			n := 0
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				if a.Name.Space == "" {
					v.WriteString(" " + a.Name.Local + `="`)
				} else {
					n++
					p := "a" + strconv.Itoa(n)
					v.WriteString(" xmlns:" + p + `="`)
					escape(&v, a.Name.Space)
					v.WriteString(`" ` + p + ":" + a.Name.Local + `="`)
				}
				escape(&v, a.Value)
				v.WriteString(`"`)
			}
			v.WriteString(">")
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			if len(stack) == 0 {
				return v.String(), txt.String(), nil
			}
			v.WriteString("</" + stack[len(stack)-1] + ">")
			stack = stack[:len(stack)-1]
		case xml.CharData:
			escape(&v, string(t))
			txt.Write(t)
		}
	}
}

// escape writes s with XML special characters escaped.
func escape(b *strings.Builder, s string) {
	xml.EscapeText(b, []byte(s))
}

// openTag and closeTag write a property element, with the fixed prefixes
// for DAV:, ownCloud and Nextcloud names and a default-namespace
// declaration for any other (including none).
func openTag(b *strings.Builder, n xml.Name, empty bool) {
	switch n.Space {
	case nsDAV:
		b.WriteString("<d:" + n.Local)
	case nsOC:
		b.WriteString("<oc:" + n.Local)
	case nsNC:
		b.WriteString("<nc:" + n.Local)
	default:
		b.WriteString("<" + n.Local + ` xmlns="`)
		escape(b, n.Space)
		b.WriteString(`"`)
	}
	if empty {
		b.WriteString("/>")
	} else {
		b.WriteString(">")
	}
}

func closeTag(b *strings.Builder, n xml.Name) {
	switch n.Space {
	case nsDAV:
		b.WriteString("</d:" + n.Local + ">")
	case nsOC:
		b.WriteString("</oc:" + n.Local + ">")
	case nsNC:
		b.WriteString("</nc:" + n.Local + ">")
	default:
		b.WriteString("</" + n.Local + ">")
	}
}

// statusLine is the <d:status> text for code.
func statusLine(code int) string {
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code)
}

// propstat is one <d:propstat>: properties with their inner XML, all with
// the same status.
type propstat struct {
	status int
	names  []xml.Name
	values []string
}

func (ps *propstat) add(n xml.Name, v string) {
	ps.names = append(ps.names, n)
	ps.values = append(ps.values, v)
}

// writeResponse writes one <d:response> with the non-empty propstats.
func writeResponse(b *strings.Builder, href string, stats ...*propstat) {
	b.WriteString("<d:response><d:href>")
	escape(b, href)
	b.WriteString("</d:href>")
	for _, ps := range stats {
		if ps == nil || len(ps.names) == 0 {
			continue
		}
		b.WriteString("<d:propstat><d:prop>")
		for i, n := range ps.names {
			if ps.values[i] == "" {
				openTag(b, n, true)
				continue
			}
			openTag(b, n, false)
			b.WriteString(ps.values[i])
			closeTag(b, n)
		}
		b.WriteString("</d:prop><d:status>" + statusLine(ps.status) + "</d:status></d:propstat>")
	}
	b.WriteString("</d:response>\n")
}

const multistatusOpen = xmlHeader + `<d:multistatus xmlns:d="DAV:" xmlns:oc="` + nsOC + `" xmlns:nc="` + nsNC + `">` + "\n"
const multistatusClose = "</d:multistatus>\n"
