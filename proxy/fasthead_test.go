package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseFastRequest: whatever the fast path accepts, net/http reads the
// same way: same method, target, Host, header values and head length, and
// no body. (The fast path may refuse more; those requests go to net/http.)
func FuzzParseFastRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /x?y=1 HTTP/1.1\r\nHost: a:1\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
		"GET /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"GET /f HTTP/1.1\nHost: h\n\n",
		"GET /f HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: [::1]:80\r\nX-Pad: \t v \r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	var req fastRequest
	f.Fuzz(func(t *testing.T, b []byte) {
		if parseFastRequest(b, &req) != nil {
			return
		}
		r := bufio.NewReader(bytes.NewReader(b))
		hr, err := http.ReadRequest(r)
		if err != nil {
			t.Fatalf("fast path accepts what net/http refuses (%v): %q", err, b)
		}
		if consumed := len(b) - r.Buffered(); consumed != req.head {
			t.Fatalf("head length %d, net/http read %d: %q", req.head, consumed, b)
		}
		if hr.Method != string(req.method) || hr.RequestURI != string(req.target) || hr.Host != string(req.host) {
			t.Fatalf("fast %q %q %q, net/http %q %q %q", req.method, req.target, req.host, hr.Method, hr.RequestURI, hr.Host)
		}
		if hr.ContentLength != 0 || len(hr.TransferEncoding) > 0 || hr.Body != http.NoBody {
			t.Fatalf("fast path accepted a request with a body: %q", b)
		}
		for _, h := range req.headers {
			if !contains1(hr.Header.Values(string(h.name)), string(h.value)) {
				t.Fatalf("header %q: %q not among net/http's %q", h.name, h.value, hr.Header.Values(string(h.name)))
			}
		}
	})
}

func contains1(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// FuzzParseFastResponse: an upstream response head the fast path accepts
// is read the same way by net/http: status, framing and header values.
func FuzzParseFastResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.1 299\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	var resp fastResponse
	f.Fuzz(func(t *testing.T, b []byte) {
		if parseFastResponse(b, &resp) != nil {
			return
		}
		r := bufio.NewReader(bytes.NewReader(b))
		hr, err := http.ReadResponse(r, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("fast path accepts what net/http refuses (%v): %q", err, b)
		}
		if consumed := len(b) - r.Buffered(); consumed != resp.head {
			t.Fatalf("head length %d, net/http read %d: %q", resp.head, consumed, b)
		}
		if hr.StatusCode != resp.status {
			t.Fatalf("status %d, net/http %d", resp.status, hr.StatusCode)
		}
		chunked := len(hr.TransferEncoding) == 1 && hr.TransferEncoding[0] == "chunked"
		if resp.status >= 200 && resp.status != 204 && resp.status != 304 {
			if chunked != resp.chunked || (!chunked && hr.ContentLength != resp.length) {
				t.Fatalf("framing: fast chunked=%v length=%d, net/http chunked=%v length=%d: %q",
					resp.chunked, resp.length, chunked, hr.ContentLength, b)
			}
			if hr.Close != resp.close && hr.ProtoMinor == 1 {
				t.Fatalf("close: fast %v, net/http %v: %q", resp.close, hr.Close, b)
			}
		}
		for _, h := range resp.headers {
			name := http.CanonicalHeaderKey(string(h.name))
			if name == "Transfer-Encoding" || name == "Content-Length" || name == "Connection" {
				continue // net/http moves these into fields
			}
			if !contains1(hr.Header.Values(name), string(h.value)) {
				t.Fatalf("header %q: %q not among net/http's %q", h.name, h.value, hr.Header.Values(name))
			}
		}
	})
}

// FuzzCopyChunked: a chunked body the fast path passes on decodes, on the
// client side, to exactly what net/http decodes from the original.
func FuzzCopyChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
		"0\r\n\r\n",
		"zz\r\nok\r\n0\r\n\r\n",
		"2\r\nok\r\n0\r\n",
		"3 \r\nabc\r\n0\r\n\r\n",
		"0 ;\r\n\r\n", // a blank before the extension: net/http refuses it
		"+0\r\n\r\n",  // a sign: strconv takes it, net/http does not
		"-0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		n, err := copyChunked(bw, bufio.NewReaderSize(bytes.NewReader(b), 16<<10), make([]byte, 64), bw.Flush)
		if err != nil {
			return
		}
		bw.Flush()
		orig, err := readChunkedBody(b)
		if err != nil {
			t.Fatalf("fast path passed on a body net/http refuses (%v): %q", err, b)
		}
		copied, err := readChunkedBody(out.Bytes())
		if err != nil {
			t.Fatalf("fast path wrote a body net/http cannot read (%v): %q -> %q", err, b, out.Bytes())
		}
		if !bytes.Equal(orig, copied) || int64(len(orig)) != n {
			t.Fatalf("body %q became %q (%d bytes counted)", orig, copied, n)
		}
	})
}

// readChunkedBody decodes a chunked body and its trailer section with
// net/http, as a client would.
func readChunkedBody(b []byte) ([]byte, error) {
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), bytes.NewReader(b))), nil)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(resp.Body)
}
