package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// slowUpstream sends one chunk, then waits for release before the second.
func slowUpstream(t *testing.T, name string, chunk int, release <-chan struct{}) *httpServer {
	return newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		if r.URL.Path != "/big" {
			io.WriteString(w, name)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(2*chunk))
		w.Write([]byte(strings.Repeat("a", chunk)))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte(strings.Repeat("b", chunk)))
	}))
}

func TestReloadKeepsInFlightTransfers(t *testing.T) {
	const chunk = 1 << 20
	release := make(chan struct{})
	a := slowUpstream(t, "a", chunk, release)
	b := echoUpstream(t, "b")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {old: {targets: [%s]}}
routes: [{path: /, upstream: old}]
`, a.URL), nil)

	resp, err := tp.client.Get(tp.url("/big"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, chunk)); err != nil {
		t.Fatalf("first half: %v", err)
	}

	next, err := ParseConfig([]byte(fmt.Sprintf(`
listen: 127.0.0.1:0
tls: {certificates: [{cert: %q, key: %q}]}
upstreams: {new: {targets: [%s]}}
routes:
  - {path: /, upstream: new}
  - {path: /added/, upstream: new, strip_prefix: true}
`, tp.cfg.TLS.Certificates[0].Cert, tp.cfg.TLS.Certificates[0].Key, b.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Reload(next); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/x": "/x", "/added/y": "/y"} {
		if code, _, hdr := tp.get(t, path, nil); code != 200 || hdr.Get("X-Upstream") != "b" || hdr.Get("X-Got-Path") != want {
			t.Errorf("after reload, %s: got %d from %q path %q, want 200 from b path %s",
				path, code, hdr.Get("X-Upstream"), hdr.Get("X-Got-Path"), want)
		}
	}
	if _, known := tp.targetUp(hostOf(a.URL)); known {
		t.Error("removed target still takes requests")
	}
	// The transfer that started before the reload completes.
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != chunk || strings.Trim(string(rest), "b") != "" {
		t.Fatalf("second half after reload: %d bytes, %v", len(rest), err)
	}
	waitFor(t, "the removed target to drain", func() bool {
		for _, tg := range tp.allTargets() {
			if tg.url.Host == hostOf(a.URL) {
				return false
			}
		}
		return true
	})
}

// A response with a Content-Length whose upstream pauses must not leave
// its bytes so far in the proxy's buffers.
func TestPausedUpstreamBytesAreFlushed(t *testing.T) {
	forEachProtocol(t, testPausedUpstreamBytesAreFlushed)
}

func testPausedUpstreamBytesAreFlushed(t *testing.T, client func(*testProxy) *http.Client) {
	const chunk = 1000 // smaller than any buffer on the way
	release := make(chan struct{})
	defer close(release)
	a := slowUpstream(t, "a", chunk, release)
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, a.URL), nil)
	resp, err := client(tp).Get(tp.url("/big"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(resp.Body, make([]byte, chunk))
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first bytes of a paused download stayed in the proxy")
	}
}
