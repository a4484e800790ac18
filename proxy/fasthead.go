package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Strict parsers for the HTTP/1.1 fast path (fast.go). They accept only the
// plain, common form of a message; anything else is left to net/http
// (requests) or refused with 502 (upstream responses), so the fast path
// never has to be as lenient as a general HTTP server.

// headerLine is one "Name: value" line; both alias the read buffer.
type headerLine struct{ name, value []byte }

// Request headers that stop the fast path: they bring a body, a protocol
// switch or semantics it does not implement.
var fastRefuse = [][]byte{
	[]byte("Content-Length"), []byte("Transfer-Encoding"), []byte("Expect"),
	[]byte("Upgrade"), []byte("Te"), []byte("Trailer"), []byte("Http2-Settings"),
}

// fastRequest is a request head the fast path can serve.
type fastRequest struct {
	head    int // bytes of the head, blank line included
	method  []byte
	target  []byte
	host    []byte
	close   bool // the client sent Connection: close
	headers []headerLine
}

var (
	errHeadIncomplete = errors.New("head incomplete")
	errNotFast        = errors.New("request needs the general server")
)

// findHeadEnd returns the length of the head at the start of b, up to and
// including the empty line, or -1 when b holds no empty line yet. Both CRLF
// and bare LF count as line ends here, so a head with bare LFs is found and
// then refused, rather than waited on forever.
func findHeadEnd(b []byte) int {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		line := b[start : start+i]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return start + i + 1
		}
		start += i + 1
	}
}

// parseFastRequest parses the head at the start of b (as returned by
// findHeadEnd) into req, reusing req.headers. It returns errNotFast for
// anything outside the fast path's subset: methods other than GET and
// HEAD, versions other than HTTP/1.1, targets not in origin form, bare LF
// line ends, folded or malformed header lines, a missing or repeated Host,
// and the headers in fastRefuse.
func parseFastRequest(b []byte, req *fastRequest) error {
	n := findHeadEnd(b)
	if n < 0 {
		return errHeadIncomplete
	}
	*req = fastRequest{head: n, headers: req.headers[:0]}
	rest := b[:n]
	line, rest, ok := cutLine(rest)
	if !ok {
		return errNotFast
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return errNotFast
	}
	req.method = line[:sp]
	if string(req.method) != "GET" && string(req.method) != "HEAD" {
		return errNotFast
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp < 1 || string(line[sp+1:]) != "HTTP/1.1" {
		return errNotFast
	}
	req.target = line[:sp]
	if req.target[0] != '/' {
		return errNotFast
	}
	for _, c := range req.target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return errNotFast
		}
	}
	hosts := 0
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return errNotFast
		}
		if len(line) == 0 {
			break
		}
		h, ok := parseHeaderLine(line)
		if !ok {
			return errNotFast
		}
		switch {
		case bytes.EqualFold(h.name, []byte("Host")):
			hosts++
			if hosts > 1 || !validHost(h.value) {
				return errNotFast
			}
			req.host = h.value
			continue // written first, by the forwarder
		case bytes.EqualFold(h.name, []byte("Connection")):
			switch {
			case bytes.EqualFold(h.value, []byte("keep-alive")):
			case bytes.EqualFold(h.value, []byte("close")):
				req.close = true
			default:
				return errNotFast // it may name headers to drop
			}
			continue
		}
		for _, name := range fastRefuse {
			if bytes.EqualFold(h.name, name) {
				return errNotFast
			}
		}
		req.headers = append(req.headers, h)
	}
	if hosts != 1 {
		return errNotFast
	}
	return nil
}

// cutLine splits off the first CRLF-terminated line. A bare LF, or a CR
// anywhere but before the LF, is refused.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// parseHeaderLine splits "Name: value", trimming optional whitespace around
// the value. The name must be a token; the value may hold visible ASCII,
// spaces, tabs and bytes above 0x7f, as RFC 9110 allows. Folded lines
// (starting with whitespace) are refused.
func parseHeaderLine(line []byte) (headerLine, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return headerLine{}, false
	}
	name := line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return headerLine{}, false
		}
	}
	value := line[colon+1:]
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return headerLine{}, false
		}
	}
	return headerLine{name: name, value: bytes.Trim(value, " \t")}, true
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c < 0x7f && c > ' ' && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validHost accepts a host name, IPv4 or bracketed IPv6 address with an
// optional port: the characters of RFC 3986's reg-name without the
// sub-delimiters, which no real host name uses.
func validHost(h []byte) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
			return false
		}
	}
	return true
}

// fastResponse is an upstream response head.
type fastResponse struct {
	head    int
	status  int
	reason  []byte
	length  int64 // -1 when the response carries no Content-Length
	chunked bool
	close   bool // the upstream will close the connection after the body
	headers []headerLine
	// conn lists the names the Connection header marks as hop-by-hop.
	conn [][]byte
}

// Response headers that belong to a single hop and are never passed on.
var hopResponse = [][]byte{
	[]byte("Connection"), []byte("Proxy-Connection"), []byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"), []byte("Proxy-Authorization"), []byte("Te"),
	[]byte("Transfer-Encoding"), []byte("Upgrade"), []byte("Content-Length"),
}

var errBadResponse = errors.New("malformed upstream response")

// parseFastResponse parses an upstream response head at the start of b,
// reusing resp.headers. Only what a correct HTTP/1.x server sends is
// accepted: a status line, well-formed header lines, at most one distinct
// Content-Length, and no Transfer-Encoding other than chunked (never
// together with Content-Length, the classic smuggling vector).
func parseFastResponse(b []byte, resp *fastResponse) error {
	n := findHeadEnd(b)
	if n < 0 {
		return errHeadIncomplete
	}
	*resp = fastResponse{head: n, length: -1, headers: resp.headers[:0], conn: resp.conn[:0]}
	rest := b[:n]
	line, rest, ok := cutLine(rest)
	if !ok || len(line) < 12 || line[8] != ' ' {
		return errBadResponse
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		resp.close = true
	default:
		return errBadResponse
	}
	code := line[9:12]
	for _, c := range code {
		if c < '0' || c > '9' {
			return errBadResponse
		}
	}
	resp.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if resp.status < 100 {
		return errBadResponse
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return errBadResponse
		}
		resp.reason = line[13:]
		for _, c := range resp.reason {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errBadResponse
			}
		}
	}
	keepAlive := false
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return errBadResponse
		}
		if len(line) == 0 {
			break
		}
		h, ok := parseHeaderLine(line)
		if !ok {
			return errBadResponse
		}
		switch {
		case bytes.EqualFold(h.name, []byte("Content-Length")):
			v, err := parseContentLength(h.value)
			if err != nil || resp.length >= 0 && resp.length != v {
				return errBadResponse
			}
			resp.length = v
		case bytes.EqualFold(h.name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(h.value, []byte("chunked")) || resp.chunked {
				return errBadResponse
			}
			resp.chunked = true
		case bytes.EqualFold(h.name, []byte("Connection")):
			for tok := range bytes.SplitSeq(h.value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case len(tok) == 0:
				case bytes.EqualFold(tok, []byte("close")):
					resp.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				default:
					resp.conn = append(resp.conn, tok)
				}
			}
		}
		resp.headers = append(resp.headers, h)
	}
	if resp.chunked && (resp.length >= 0 || string(b[:8]) == "HTTP/1.0") {
		return errBadResponse // HTTP/1.0 has no chunked coding
	}
	if keepAlive && string(b[:8]) == "HTTP/1.0" {
		resp.close = false
	}
	if !resp.chunked && resp.length < 0 && resp.status >= 200 && resp.status != 204 && resp.status != 304 {
		// The body, if any, ends when the upstream closes (RFC 9112 6.3).
		// After a HEAD there is none, but the connection is not
		// trusted to be in sync either.
		resp.close = true
	}
	return nil
}

func parseContentLength(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 18 {
		return 0, errBadResponse
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errBadResponse
		}
	}
	return strconv.ParseInt(string(v), 10, 64)
}

// parseChunkSize reads a chunk size: hex digits only, as net/http takes
// them (strconv would also take a sign), at most 15 so that it fits.
func parseChunkSize(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

// skipHeader reports whether a response header must not be passed on:
// hop-by-hop headers, those the Connection header names, and Trailer
// unless the body stays chunked.
func (r *fastResponse) skipHeader(name []byte) bool {
	for _, h := range hopResponse {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	for _, h := range r.conn {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return !r.chunked && bytes.EqualFold(name, []byte("Trailer"))
}

// hasBody reports whether the response to a request with method carries a
// body on the wire (RFC 9112 section 6.3).
func (r *fastResponse) hasBody(method []byte) bool {
	return string(method) != "HEAD" && r.status >= 200 && r.status != 204 && r.status != 304
}

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4096

// copyChunked reads a chunked body from src and writes it to dst in the
// same framing, dropping chunk extensions and passing well-formed trailer
// lines on. flush runs whenever src has nothing more buffered, so a
// streaming upstream is never held back. It returns the body bytes copied.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, buf []byte, flush func() error) (int64, error) {
	var total int64
	for {
		line, err := readChunkLine(src)
		if err != nil {
			return total, err
		}
		// As net/http reads it: trailing blanks off the whole line, then
		// the extensions; a blank before ";" is refused there, so here too.
		line = bytes.TrimRight(line, " \t")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return total, errBadResponse
		}
		if size == 0 {
			break
		}
		dst.WriteString(strconv.FormatInt(size, 16))
		dst.WriteString("\r\n")
		n, err := copyN(dst, src, size, buf, flush)
		total += n
		if err != nil {
			return total, err
		}
		if crlf, err := readChunkLine(src); err != nil || len(crlf) != 0 {
			return total, errBadResponse
		}
		dst.WriteString("\r\n")
		if src.Buffered() == 0 {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	dst.WriteString("0\r\n")
	for {
		line, err := readChunkLine(src)
		if err != nil {
			return total, err
		}
		if len(line) == 0 {
			break
		}
		h, ok := parseHeaderLine(line)
		if !ok {
			return total, errBadResponse
		}
		dst.Write(h.name)
		dst.WriteString(": ")
		dst.Write(h.value)
		dst.WriteString("\r\n")
	}
	_, err := dst.WriteString("\r\n")
	return total, err
}

// readChunkLine reads one CRLF-terminated line of chunked framing.
func readChunkLine(src *bufio.Reader) ([]byte, error) {
	line, err := src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > 0 {
			return nil, errBadResponse
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' || len(line) > maxChunkLine {
		return nil, errBadResponse
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, errBadResponse
	}
	return line, nil
}

// copyN copies n bytes from src to dst through buf, flushing whenever src
// has nothing more buffered. n < 0 copies until EOF.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, buf []byte, flush func() error) (int64, error) {
	var total int64
	for n < 0 || total < n {
		b := buf
		if n >= 0 && int64(len(b)) > n-total {
			b = b[:n-total]
		}
		k, err := src.Read(b)
		if k > 0 {
			if _, werr := dst.Write(b[:k]); werr != nil {
				return total, werr
			}
			total += int64(k)
			if src.Buffered() == 0 {
				if werr := flush(); werr != nil {
					return total, werr
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				if n < 0 {
					return total, nil
				}
				err = io.ErrUnexpectedEOF
			}
			return total, err
		}
	}
	return total, nil
}
