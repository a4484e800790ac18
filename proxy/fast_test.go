package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// dumpUpstream answers with everything it received: method, target, Host
// and every header, sorted, one per line.
func dumpUpstream(t *testing.T) *httpServer {
	return echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vs := range r.Header {
			lines = append(lines, k+": "+strings.Join(vs, " | "))
		}
		slices.Sort(lines)
		w.Header().Set("X-Upstream-Header", "kept")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s host=%s\n%s\n", r.Method, r.RequestURI, r.Host, strings.Join(lines, "\n"))
	})
}

// generatedID matches request IDs the proxy makes up, which differ between
// two proxies.
var generatedID = regexp.MustCompile(`\b[0-9a-f]{32}\b`)

// rawExchange sends raw on a new HTTP/1.1 TLS connection and returns the
// response as a comparable text: status, headers (sorted; Date dropped,
// generated IDs masked) and body.
func rawExchange(t *testing.T, tp *testProxy, raw string) string {
	t.Helper()
	c := tp.rawTLS(t)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	method := strings.SplitN(raw, " ", 2)[0]
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return "no response: " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "broken body: " + err.Error()
	}
	var hdr []string
	for k, vs := range resp.Header {
		if k == "Date" {
			// The value differs by the second; its presence must not.
			_, err := http.ParseTime(vs[0])
			hdr = append(hdr, fmt.Sprintf("Date: %d valid=%v", len(vs), err == nil))
			continue
		}
		hdr = append(hdr, k+": "+strings.Join(vs, " | "))
	}
	slices.Sort(hdr)
	out := fmt.Sprintf("%s close=%v len=%d\n%s\n\n%s", resp.Status, resp.Close, resp.ContentLength, strings.Join(hdr, "\n"), body)
	return generatedID.ReplaceAllString(out, "<generated-id>")
}

// TestFastPathMatchesNetHTTP sends the same raw requests to a proxy with
// the HTTP/1.1 fast path and to one without it: the upstream must receive
// the same request and the client the same response, whichever path served
// it; requests outside the fast path's subset must reach net/http.
func TestFastPathMatchesNetHTTP(t *testing.T) {
	up := dumpUpstream(t)
	const config = `
listen: 127.0.0.1:0
http1_fast_path: %v
hsts: {max_age: 1h}
%s
upstreams:
  app: {targets: [%s]}
  extra: {targets: [%s], headers: {X-Pool: from-config}}
routes:
  - {path: /, upstream: app}
  - {path: /strip/, upstream: app, strip_prefix: true}
  - {path: /rw/, upstream: app, rewrite: /new/}
  - {path: /up/, upstream: app, host_header: upstream}
  - {path: /lit/, upstream: app, host_header: files.internal}
  - {path: /hdr/, upstream: extra}
`
	const h = "Host: localhost\r\n"
	cases := []struct {
		name, raw string
		fast      bool
	}{
		{"plain", "GET /file?q=1&r=%20 HTTP/1.1\r\n" + h + "User-Agent: t\r\nX-Custom: a\r\nx-custom: b\r\nAccept: */*\r\n\r\n", true},
		{"spoofed forwarding", "GET /f HTTP/1.1\r\n" + h + "X-Forwarded-For: 198.51.100.7\r\nForwarded: for=198.51.100.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\nX-Request-ID: from-client\r\n\r\n", true},
		{"hop-by-hop", "GET /f HTTP/1.1\r\n" + h + "Connection: keep-alive\r\nKeep-Alive: 300\r\nProxy-Connection: x\r\nProxy-Authorization: Basic eDp5\r\n\r\n", true},
		{"connection close", "GET /f HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n", true},
		{"head", "HEAD /f HTTP/1.1\r\n" + h + "\r\n", true},
		{"host with port", "GET /f HTTP/1.1\r\nHost: localhost:8443\r\n\r\n", true},
		{"strip prefix", "GET /strip/a%2Fb/c?x=1 HTTP/1.1\r\n" + h + "\r\n", true},
		{"rewrite", "GET /rw/x/y HTTP/1.1\r\n" + h + "\r\n", true},
		{"upstream host", "GET /up/x HTTP/1.1\r\n" + h + "\r\n", true},
		{"literal host", "GET /lit/x HTTP/1.1\r\n" + h + "\r\n", true},
		{"pool headers", "GET /hdr/x HTTP/1.1\r\n" + h + "X-Pool: from-client\r\n\r\n", true},
		{"whitespace around values", "GET /f HTTP/1.1\r\n" + h + "X-Pad:   padded \t\r\n\r\n", true},
		{"http/1.0", "GET /f HTTP/1.0\r\n" + h + "\r\n", false},
		{"bare LF", "GET /f HTTP/1.1\n" + h[:len(h)-2] + "\n\n", false},
		{"folded header", "GET /f HTTP/1.1\r\n" + h + "X-Fold: a\r\n b\r\n\r\n", false},
		{"authority-like target", "GET //other/f HTTP/1.1\r\n" + h + "\r\n", true},
		{"dot segment", "GET /a/../../etc HTTP/1.1\r\n" + h + "\r\n", false},
		{"absolute form", "GET https://localhost/f HTTP/1.1\r\n" + h + "\r\n", false},
		{"missing host", "GET /f HTTP/1.1\r\nX-A: 1\r\n\r\n", false},
		{"two hosts", "GET /f HTTP/1.1\r\n" + h + "Host: other\r\n\r\n", false},
		{"body on GET", "GET /f HTTP/1.1\r\n" + h + "Content-Length: 5\r\n\r\nhello", false},
		{"chunked GET", "GET /f HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"smuggling attempt", "GET /f HTTP/1.1\r\n" + h + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"expect", "GET /f HTTP/1.1\r\n" + h + "Expect: 100-continue\r\n\r\n", false},
		{"upgrade", "GET /f HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"POST", "POST /f HTTP/1.1\r\n" + h + "Content-Length: 2\r\n\r\nhi", false},
		{"health path", "GET /.velox-proxy/healthz HTTP/1.1\r\n" + h + "\r\n", false},
		{"bad escape", "GET /f%zz HTTP/1.1\r\n" + h + "\r\n", false},
		{"control byte in value", "GET /f HTTP/1.1\r\n" + h + "X-A: a\x01b\r\n\r\n", false},
		{"space before colon", "GET /f HTTP/1.1\r\n" + h + "X-A : b\r\n\r\n", false},
		{"head over 4 KiB", "GET /f HTTP/1.1\r\n" + h + "X-Big: " + strings.Repeat("b", 5000) + "\r\n\r\n", false},
		{"head over max_header_bytes", "GET /f HTTP/1.1\r\n" + h + "X-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", false},
	}
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			trust := ""
			if trusted {
				trust = "trusted_proxies: [127.0.0.1/32]"
			}
			fast := startProxy(t, nil, fmt.Sprintf(config, true, trust, up.URL, up.URL), nil)
			slow := startProxy(t, nil, fmt.Sprintf(config, false, trust, up.URL, up.URL), nil)
			if slow.fast != nil || fast.fast == nil {
				t.Fatal("http1_fast_path does not select the request loop")
			}
			for _, tc := range cases {
				before := fast.fast.served.Load()
				got := rawExchange(t, fast, tc.raw)
				want := rawExchange(t, slow, tc.raw)
				if got != want {
					t.Errorf("%s: fast path answers\n%s\n---- net/http answers\n%s", tc.name, got, want)
				}
				if tc.fast && !strings.HasPrefix(got, "200 OK") {
					t.Errorf("%s: got %s", tc.name, got)
				}
				if served := fast.fast.served.Load() > before; served != tc.fast {
					t.Errorf("%s: served by the fast path: %v, want %v", tc.name, served, tc.fast)
				}
			}
			// What the comparison rests on: the upstream saw the proxy's
			// forwarding headers, not the client's, and no hop-by-hop ones.
			got := rawExchange(t, fast, cases[1].raw)
			for _, want := range []string{"X-Upstream-Header: kept", "Strict-Transport-Security: max-age=3600"} {
				if !strings.Contains(got, want) {
					t.Errorf("response lacks %q:\n%s", want, got)
				}
			}
			if !trusted && (strings.Contains(got, "198.51.100.7") || strings.Contains(got, "evil") ||
				strings.Contains(got, "from-client") || !strings.Contains(got, "X-Forwarded-Proto: https")) {
				t.Errorf("an untrusted client's forwarding headers reached the upstream:\n%s", got)
			}
			if trusted && (!strings.Contains(got, "X-Forwarded-For: 198.51.100.7, 127.0.0.1") || !strings.Contains(got, "X-Request-Id: from-client")) {
				t.Errorf("a trusted proxy's X-Forwarded-For was not extended:\n%s", got)
			}
			if got := rawExchange(t, fast, cases[2].raw); strings.Contains(got, "Proxy-Authorization") || strings.Contains(got, "Keep-Alive") {
				t.Errorf("hop-by-hop headers were forwarded:\n%s", got)
			}
		})
	}
}

// rawUpstream answers each request with the canned response for its path
// and closes the connection after those marked so.
type cannedResponse struct {
	raw   string
	close bool
}

func rawUpstream(t *testing.T, canned map[string]cannedResponse) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					r, ok := canned[req.URL.Path]
					if !ok {
						r = cannedResponse{raw: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"}
					}
					if _, err := io.WriteString(c, r.raw); err != nil || r.close {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}

// TestFastPathResponseFraming checks how the fast path passes on every
// framing an upstream may use, and that it refuses malformed responses.
func TestFastPathResponseFraming(t *testing.T) {
	addr := rawUpstream(t, map[string]cannedResponse{
		"/chunked":   {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"},
		"/close":     {raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the upstream closes", close: true},
		"/http10":    {raw: "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", close: true},
		"/hints":     {raw: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"/conn-hdr":  {raw: "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTrailer: X-Never\r\nContent-Length: 2\r\n\r\nok"},
		"/no-body":   {raw: "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"},
		"/both":      {raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		"/bare-lf":   {raw: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		"/big-head":  {raw: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", 20<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
		"/bad-chunk": {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", close: true},
		"/truncated": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", close: true},
		"/no-reason": {raw: "HTTP/1.1 299\r\nContent-Length: 2\r\n\r\nok"},
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [http://%s], retries: 0, passive: {max_failures: 1000}}}
routes: [{path: /, upstream: app}]
`, addr), nil)
	client := tp.http1Client()
	var reused []bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
	get := func(path string) (*http.Response, string, error) {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", tp.url(path), nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	for _, tc := range []struct {
		path, body string
		status     int
		check      func(*http.Response) string
	}{
		{"/chunked", "hello world", 200, func(r *http.Response) string {
			if r.Trailer.Get("X-Sum") != "42" {
				return fmt.Sprintf("trailer X-Sum = %q", r.Trailer.Get("X-Sum"))
			}
			return ""
		}},
		{"/close", "until the upstream closes", 200, func(r *http.Response) string {
			if r.ContentLength != -1 || r.Close {
				return "a close-delimited body should reach the client chunked, on a connection that stays open"
			}
			return ""
		}},
		{"/http10", "abc", 200, nil},
		{"/hints", "ok", 200, nil},
		{"/conn-hdr", "ok", 200, func(r *http.Response) string {
			if r.Header.Get("X-Secret") != "" || r.Header.Get("Keep-Alive") != "" || r.Header.Get("Trailer") != "" {
				return fmt.Sprintf("hop-by-hop response headers passed on: %v", r.Header)
			}
			return ""
		}},
		{"/no-body", "", 204, func(r *http.Response) string {
			if r.Header.Get("X-A") != "1" {
				return "header lost"
			}
			return ""
		}},
		{"/no-reason", "ok", 299, nil},
		{"/both", "502 Bad Gateway\n", 502, nil},
		{"/bare-lf", "502 Bad Gateway\n", 502, nil},
		{"/big-head", "502 Bad Gateway\n", 502, nil},
	} {
		before := tp.fast.served.Load()
		resp, body, err := get(tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.check != nil {
			if msg := tc.check(resp); msg != "" {
				t.Errorf("%s: %s", tc.path, msg)
			}
		}
		if tp.fast.served.Load() != before+1 {
			t.Errorf("%s: not served by the fast path", tc.path)
		}
	}
	if slices.Contains(reused[1:], false) {
		t.Errorf("the client connection was not kept alive across responses: reused = %v", reused)
	}
	// A body that breaks off must not look complete to the client.
	for _, path := range []string{"/truncated", "/bad-chunk"} {
		if _, body, err := get(path); err == nil {
			t.Errorf("%s: the client read a complete response %q from a broken upstream body", path, body)
		}
	}
}

// TestFastPathHandsOverConnections sends, on one connection, requests the
// fast path serves and one it hands to net/http, pipelined too: every
// answer must come back in order.
func TestFastPathHandsOverConnections(t *testing.T) {
	up := echoUpstream(t, "a")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	c := tp.rawTLS(t)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	read := func(method, want string) {
		t.Helper()
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading the answer for %s: %v", want, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("got %d %q (%v), want %q", resp.StatusCode, b, err, want)
		}
	}
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: localhost\r\n\r\nGET /two HTTP/1.1\r\nHost: localhost\r\n\r\n")
	read("GET", "a /one")
	read("GET", "a /two")
	if n := tp.fast.served.Load(); n != 2 {
		t.Errorf("fast path served %d requests, want 2", n)
	}
	io.WriteString(c, "POST /three HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nbodyGET /four HTTP/1.1\r\nHost: localhost\r\n\r\n")
	read("POST", "a /three")
	read("GET", "a /four")
	io.WriteString(c, "GET /five HTTP/1.1\r\nHost: localhost\r\n\r\n")
	read("GET", "a /five")
	if n := tp.fast.served.Load(); n != 2 {
		t.Errorf("after the hand-over the fast path served %d requests, want still 2", n)
	}
}

// TestFastPathShutdown: an idle keep-alive connection is closed at once, a
// request in flight on the fast path completes.
func TestFastPathShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	idle := tp.rawTLS(t)
	io.WriteString(idle, "GET /short HTTP/1.1\r\nHost: localhost\r\n\r\n")
	idleBr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleBr, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v", err)
	} else {
		io.ReadAll(resp.Body)
	}
	busy := tp.rawTLS(t)
	io.WriteString(busy, "GET /long HTTP/1.1\r\nHost: localhost\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- tp.Shutdown(ctx)
	}()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idleBr.ReadByte(); err == nil {
		t.Error("the idle connection got bytes instead of being closed")
	} else if isTimeout(err) {
		t.Error("the idle connection was not closed by Shutdown")
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done /long" || !resp.Close {
		t.Errorf("in-flight request got %q (close=%v), want its answer and Connection: close", b, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestFastPathAccessLog: a request served by the fast path is logged like
// any other.
func TestFastPathAccessLog(t *testing.T) {
	up := echoUpstream(t, "a")
	var logBuf syncBuffer
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /files/, upstream: app}]
`, up.URL), logDefault(&logBuf, "json"))
	c := tp.rawTLS(t)
	io.WriteString(c, "GET /files/a?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if tp.fast.served.Load() != 1 {
		t.Fatal("not served by the fast path")
	}
	waitFor(t, "the access log line", func() bool { return strings.Contains(logBuf.String(), `"path":"/files/a"`) })
	line := logBuf.String()
	for _, want := range []string{`"method":"GET"`, `"host":"localhost"`, `"proto":"HTTP/1.1"`, `"route":"/files/"`,
		`"upstream":"app"`, `"target":"` + hostOf(up.URL) + `"`, `"status":200`, `"bytes_out":10`, `"client_ip":"127.0.0.1"`,
		`"request_id":"` + resp.Header.Get("X-Request-Id") + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line lacks %s: %s", want, line)
		}
	}
}
