package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestForwardedHeaders(t *testing.T) {
	up := echoUpstream(t, "app")
	spoof := map[string]string{
		"X-Forwarded-For":   "203.0.113.9",
		"Forwarded":         "for=203.0.113.9",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "evil.example",
		"X-Request-ID":      "from-client-1",
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)

	t.Run("untrusted client", func(t *testing.T) {
		var logBuf syncBuffer
		tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), slog.New(slog.NewJSONHandler(&logBuf, nil)))
		code, _, hdr := tp.get(t, "/x", spoof)
		host := tp.Addrs().HTTPS
		for h, want := range map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"Forwarded":         `for=127.0.0.1;host="` + host + `";proto=https`,
			"X-Forwarded-Proto": "https",
			"X-Forwarded-Host":  host,
		} {
			if got := hdr.Get("X-Got-" + h); code != 200 || got != want {
				t.Errorf("%s: upstream got %q, want %q (status %d)", h, got, want, code)
			}
		}
		id := hdr.Get("X-Request-Id")
		if !hex32.MatchString(id) || hdr.Get("X-Got-X-Request-Id") != id {
			t.Errorf("request ID: client got %q, upstream got %q; want the same new 32-hex ID", id, hdr.Get("X-Got-X-Request-Id"))
		}
		// The access log line carries the same facts.
		var line map[string]any
		waitFor(t, "the access log line", func() bool { return strings.Contains(logBuf.String(), id) })
		if err := json.Unmarshal([]byte(strings.TrimSpace(logBuf.String())), &line); err != nil {
			t.Fatalf("access log %q: %v", logBuf.String(), err)
		}
		for k, want := range map[string]any{
			"msg": "request", "method": "GET", "path": "/x", "route": "/", "upstream": "app",
			"target": hostOf(up.URL), "status": 200.0, "request_id": id, "client_ip": "127.0.0.1",
		} {
			if line[k] != want {
				t.Errorf("access log %s = %v, want %v", k, line[k], want)
			}
		}
		for _, k := range []string{"bytes_in", "bytes_out", "duration_ms", "host"} {
			if _, ok := line[k]; !ok {
				t.Errorf("access log lacks %s: %v", k, line)
			}
		}
	})

	t.Run("trusted proxy", func(t *testing.T) {
		var logBuf syncBuffer
		tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
trusted_proxies: [127.0.0.0/8, "::1"]
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), slog.New(slog.NewJSONHandler(&logBuf, nil)))
		code, _, hdr := tp.get(t, "/x", spoof)
		host := tp.Addrs().HTTPS
		for h, want := range map[string]string{
			"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
			"Forwarded":         `for=203.0.113.9, for=127.0.0.1;host="` + host + `";proto=https`,
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "evil.example",
			"X-Request-Id":      "from-client-1",
		} {
			if got := hdr.Get("X-Got-" + h); code != 200 || got != want {
				t.Errorf("%s: upstream got %q, want %q (status %d)", h, got, want, code)
			}
		}
		if got := hdr.Get("X-Request-Id"); got != "from-client-1" {
			t.Errorf("response X-Request-ID: got %q, want the trusted one", got)
		}
		waitFor(t, "the access log line", func() bool { return strings.Contains(logBuf.String(), "from-client-1") })
		if !strings.Contains(logBuf.String(), `"client_ip":"203.0.113.9"`) {
			t.Errorf("access log should name the original client: %s", logBuf.String())
		}
	})
}

// forEachProtocol runs test over HTTP/2 (net/http's server) and over
// HTTP/1.1 (the fast path for GET and HEAD, fast.go).
func forEachProtocol(t *testing.T, test func(t *testing.T, client func(*testProxy) *http.Client)) {
	t.Run("HTTP/2", func(t *testing.T) { test(t, func(tp *testProxy) *http.Client { return tp.client }) })
	t.Run("HTTP/1.1", func(t *testing.T) { test(t, (*testProxy).http1Client) })
}

// http1Client speaks HTTP/1.1 only, for tests about HTTP/1 behaviour.
func (tp *testProxy) http1Client() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:       &tls.Config{RootCAs: tp.pki.pool, ServerName: "localhost"},
			TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
			ExpectContinueTimeout: time.Minute,
		},
	}
}

func TestOversizedHeaders(t *testing.T) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
limits: {max_header_bytes: 8192}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	// Go's server allows 4 KiB of slack over MaxHeaderBytes.
	for _, tc := range []struct {
		size int
		want int
	}{{2000, 200}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest(http.MethodGet, tp.url("/"), nil)
		req.Header.Set("X-Big", strings.Repeat("a", tc.size))
		resp, err := tp.http1Client().Do(req)
		if err != nil {
			t.Fatalf("%d-byte header: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d-byte header: got %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}

func TestSlowClientsAreCutOff(t *testing.T) {
	var bodyErrs atomic.Int64
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			bodyErrs.Add(1)
		}
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
limits: {read_header_timeout: 500ms, body_min_rate: 1000, body_grace: 500ms}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)

	// trickle sends first, then one more piece every 100ms until the
	// connection breaks or a minute passes; it reports whether the server
	// cut the client off, and the response the server sent, if any.
	trickle := func(first, piece string) (cut bool, status int) {
		c := tp.rawTLS(t)
		if _, err := io.WriteString(c, first); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		writerDone := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					writerDone <- nil
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := io.WriteString(c, piece); err != nil {
					writerDone <- err
					return
				}
			}
		}()
		// While the slow client hangs on, others are served.
		if code, _, _ := tp.get(t, "/other", nil); code != 200 {
			t.Errorf("request beside a slow client: got %d", code)
		}
		c.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			status = resp.StatusCode
			_, err = io.Copy(io.Discard, resp.Body)
			if err == nil {
				_, err = c.Read(make([]byte, 1))
			}
		}
		close(stop)
		<-writerDone
		var ne interface{ Timeout() bool }
		return err != nil && !(errors.As(err, &ne) && ne.Timeout()), status
	}

	if cut, _ := trickle("GET / HTTP/1.1\r\nHost: localhost\r\n", "X-Slow: 1\r\n"); !cut {
		t.Error("a client sending headers slowly was not cut off")
	}
	cut, status := trickle("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n", "x")
	if !cut || status != http.StatusRequestTimeout {
		t.Errorf("a client sending its body at 10 B/s: cut off %v with status %d, want cut off with 408", cut, status)
	}
	// A reasonably fast upload is not affected.
	resp, err := tp.client.Post(tp.url("/upload"), "application/octet-stream", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("normal upload: got %d", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) { forEachProtocol(t, testRateLimit) }

func testRateLimit(t *testing.T, client func(*testProxy) *http.Client) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
limits: {rate_per_ip: 0.001, burst_per_ip: 3}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	tp.client = client(tp)
	var codes []int
	for range 5 {
		code, _, hdr := tp.get(t, "/", nil)
		codes = append(codes, code)
		if code == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" {
		t.Errorf("got statuses %v, want 3×200 then 429s", codes)
	}
	if m := scrape(t, tp); !strings.Contains(m, `velox_proxy_limited_total{limit="rate"} 2`) {
		t.Errorf("metrics: %s", grepLines(m, "limited"))
	}
}

func TestConnectionLimitPerIP(t *testing.T) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
limits: {max_conns_per_ip: 2}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	dial := func() (*tls.Conn, error) {
		c, err := tls.Dial("tcp", tp.Addrs().HTTPS, &tls.Config{RootCAs: tp.pki.pool, ServerName: "localhost"})
		if err == nil {
			// The handshake completes lazily in TLS 1.3; a read proves the
			// server kept the connection.
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				c.SetReadDeadline(time.Time{})
				return c, nil
			}
			c.Close()
			if err == nil {
				err = errors.New("unexpected data")
			}
		}
		return nil, err
	}
	a, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	b, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("third connection from one address was accepted, want it closed")
	}
	a.Close()
	waitFor(t, "a slot after closing a connection", func() bool {
		c, err := dial()
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	b.Close()
}

func TestMaxBodySize(t *testing.T) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes:
  - {path: /, upstream: app}
  - {path: /small/, upstream: app, max_body_bytes: 1000}
`, up.URL), nil)
	for _, tc := range []struct {
		name string
		path string
		body io.Reader
		want int
	}{
		{"declared too large", "/small/x", strings.NewReader(strings.Repeat("x", 2000)), 413},
		{"streamed too large", "/small/x", io.MultiReader(strings.NewReader(strings.Repeat("x", 2000))), 413},
		{"small enough", "/small/x", strings.NewReader(strings.Repeat("x", 1000)), 200},
		{"other route", "/x", strings.NewReader(strings.Repeat("x", 2000)), 200},
	} {
		for _, c := range []*http.Client{tp.client, tp.http1Client()} {
			resp, err := c.Post(tp.url(tc.path), "text/plain", tc.body)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s over %s: got %d, want %d", tc.name, resp.Proto, resp.StatusCode, tc.want)
			}
			if s, ok := tc.body.(*strings.Reader); ok {
				s.Seek(0, io.SeekStart)
			} else {
				tc.body = io.MultiReader(strings.NewReader(strings.Repeat("x", 2000)))
			}
		}
	}
}

// countingReader counts what the client's transport took from the body.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestExpectContinue(t *testing.T) {
	var sawExpect atomic.Value
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		sawExpect.Store(r.Header.Get("Expect"))
		if r.URL.Path == "/reject" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	const size = 4 << 20
	for _, tc := range []struct {
		path     string
		want     int
		wantSent bool
	}{{"/reject", 401, false}, {"/accept", 200, true}} {
		body := &countingReader{r: strings.NewReader(strings.Repeat("z", size))}
		req, _ := http.NewRequest(http.MethodPut, tp.url(tc.path), body)
		req.ContentLength = size
		req.Header.Set("Expect", "100-continue")
		resp, err := tp.http1Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: got %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
		if sent := body.n.Load() > 0; sent != tc.wantSent {
			t.Errorf("%s: client sent %d body bytes; want body sent: %v", tc.path, body.n.Load(), tc.wantSent)
		}
		if tc.wantSent && string(got) != strconv.Itoa(size) {
			t.Errorf("%s: upstream read %s bytes, want %d", tc.path, got, size)
		}
		if sawExpect.Load() != "100-continue" {
			t.Errorf("%s: upstream saw Expect %q", tc.path, sawExpect.Load())
		}
	}
}

func TestStreamingResponsesAreFlushed(t *testing.T) {
	forEachProtocol(t, testStreamingResponsesAreFlushed)
}

func testStreamingResponsesAreFlushed(t *testing.T, client func(*testProxy) *http.Client) {
	release := make(chan struct{})
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: last\n\n")
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	resp, err := client(tp).Get(tp.url("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n') // arrives while the upstream still holds the stream open
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(r)
	if string(rest) != "\ndata: last\n\n" {
		t.Errorf("rest of stream: %q", rest)
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	type result struct {
		body string
		err  error
	}
	done := make(chan result)
	go func() {
		resp, err := tp.client.Get(tp.url("/long"))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-entered
	shut := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- tp.Shutdown(ctx)
	}()
	waitFor(t, "the listener to close", func() bool {
		c, err := tls.Dial("tcp", tp.Addrs().HTTPS, &tls.Config{RootCAs: tp.pki.pool, ServerName: "localhost"})
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if r := <-done; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request during shutdown: %q, %v", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
