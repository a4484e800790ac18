package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestFastPathConnectionHandling(t *testing.T) {
	var written atomic.Int64
	abandoned := make(chan error, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	srv := &http.Server{
		// The target closes idle connections quickly, so the proxy must cope
		// with reusing one that just went away.
		IdleTimeout: 100 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/huge":
				w.Header().Set("Content-Length", fmt.Sprint(1<<30))
				buf := make([]byte, 64<<10)
				for {
					n, err := w.Write(buf)
					written.Add(int64(n))
					if err != nil {
						abandoned <- err
						return
					}
				}
			case "/stall":
				time.Sleep(2 * time.Second)
			default:
				io.WriteString(w, "small")
			}
		}),
	}
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  app: {targets: ["http://%s"], passive: {max_failures: 1000}}
routes:
  - {path: /, upstream: app}
  - {path: /stall, upstream: app, header_timeout: 200ms}
`, l.Addr()), nil)

	// Keep-alive: sequential requests share one upstream connection.
	for i := range 20 {
		if code, body, _ := tp.get(t, "/x", nil); code != 200 || body != "small" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if n := cl.n.Load(); n != 1 {
		t.Errorf("20 sequential GETs used %d upstream connections, want 1", n)
	}
	// Connections the target closed while idle are replaced without errors.
	for i := range 3 {
		time.Sleep(300 * time.Millisecond)
		if code, _, _ := tp.get(t, "/x", nil); code != 200 {
			t.Errorf("GET after the target closed the idle connection (%d): %d", i, code)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, tp.url("/x"), nil)
	resp, err := tp.client.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Errorf("HEAD: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	if code, _, _ := tp.get(t, "/stall", nil); code != http.StatusGatewayTimeout {
		t.Errorf("stalled target: got %d, want 504", code)
	}

	// An abandoned download closes the upstream connection instead of
	// reading the rest of the gigabyte.
	resp, err = tp.client.Get(tp.url("/huge"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-abandoned:
	case <-time.After(30 * time.Second):
		t.Fatal("upstream kept sending after the client left")
	}
	if n := written.Load(); n > 512<<20 {
		t.Errorf("upstream wrote %d MiB of an abandoned 1 GiB download", n>>20)
	}
	if code, body, _ := tp.get(t, "/x", nil); code != 200 || !strings.Contains(body, "small") {
		t.Errorf("after an abandoned download: %d %q", code, body)
	}
}
