package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// killable is an upstream that can die and come back on the same address.
type killable struct {
	t    *testing.T
	name string
	addr string
	hits atomic.Int64
	mu   sync.Mutex
	srv  *http.Server
}

func newKillable(t *testing.T, name string) *killable {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &killable{t: t, name: name, addr: l.Addr().String()}
	k.serve(l)
	t.Cleanup(k.kill)
	return k
}

func (k *killable) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		k.hits.Add(1)
		w.Header().Set("X-Upstream", k.name)
		io.WriteString(w, "hello from "+k.name)
	})}
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
	go srv.Serve(l)
}

// kill closes the listener and every connection, like a crashed process.
func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.srv.Close()
}

func (k *killable) restart() {
	var l net.Listener
	waitFor(k.t, "the old port to be free", func() bool {
		var err error
		l, err = net.Listen("tcp", k.addr)
		return err == nil
	})
	k.serve(l)
}

func TestFailoverEjectionAndRecovery(t *testing.T) {
	ups := []*killable{newKillable(t, "a"), newKillable(t, "b"), newKillable(t, "c")}
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  app:
    targets: [http://%s, http://%s, http://%s]
    retries: 2
    health_check: {path: /health, interval: 100ms, timeout: 2s, healthy_threshold: 2, unhealthy_threshold: 1}
    passive: {max_failures: 1, cooldown: 300ms}
routes: [{path: /, upstream: app}]
`, ups[0].addr, ups[1].addr, ups[2].addr), nil)

	var total, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Half the clients speak HTTP/2 (served by net/http), half HTTP/1.1
	// (served by the fast path, fast.go): both must fail over.
	h1 := tp.http1Client()
	for i := range 4 {
		client := tp.client
		if i%2 == 1 {
			client = h1
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(tp.url("/file"))
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from")) {
						err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
					}
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				total.Add(1)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
		if n := failures.Load(); n > 0 {
			t.Errorf("%d of %d requests failed; first: %v", n, total.Load(), firstErr.Load())
		}
	}()

	waitFor(t, "load on every target", func() bool {
		return ups[0].hits.Load() > 20 && ups[1].hits.Load() > 20 && ups[2].hits.Load() > 20
	})
	ups[1].kill()
	waitFor(t, "the dead target to be taken out", func() bool {
		up, known := tp.targetUp(ups[1].addr)
		return known && !up
	})
	after := total.Load()
	waitFor(t, "more requests while b is down", func() bool { return total.Load() > after+200 })

	ups[1].restart()
	hits := ups[1].hits.Load()
	waitFor(t, "b to take requests again", func() bool { return ups[1].hits.Load() > hits+20 })
	if up, _ := tp.targetUp(ups[1].addr); !up {
		t.Error("b serves again but is not reported up")
	}
	if tp.fast.served.Load() < 100 {
		t.Errorf("the HTTP/1.1 clients' requests did not take the fast path (%d did)", tp.fast.served.Load())
	}
}

func TestRetriesOnlyWhenSafe(t *testing.T) { forEachProtocol(t, testRetriesOnlyWhenSafe) }

func testRetriesOnlyWhenSafe(t *testing.T, client func(*testProxy) *http.Client) {
	var badBodies, goodPosts atomic.Int64
	// bad reads the request and then drops the connection without answering.
	bad := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			badBodies.Add(1)
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})
	good := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			goodPosts.Add(1)
			if string(b) != "payload" {
				t.Errorf("good target got body %q", b)
			}
		}
	})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  flaky:
    targets: [%s, %s]
    balance: round_robin
    passive: {max_failures: 1000}
  refused:
    targets: [http://%s, %s]
    balance: round_robin
    passive: {max_failures: 1000}
routes:
  - {path: /flaky/, upstream: flaky}
  - {path: /refused/, upstream: refused}
`, bad.URL, good.URL, closed, good.URL), nil)
	tp.client = client(tp)

	post := func(path string) int {
		resp, err := tp.client.Post(tp.url(path), "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 4 {
		if code, _, _ := tp.get(t, "/flaky/x", nil); code != 200 {
			t.Errorf("GET %d on flaky pool: got %d, want 200 (retried)", i, code)
		}
	}
	var ok, failed int64
	for range 4 {
		switch code := post("/flaky/x"); code {
		case 200:
			ok++
		case 502:
			failed++
		default:
			t.Errorf("POST on flaky pool: got %d", code)
		}
	}
	// A body that reached a target is never sent again.
	if failed == 0 || failed != badBodies.Load() || ok != goodPosts.Load() {
		t.Errorf("POSTs: %d ok, %d failed; bad target read %d bodies, good got %d: want every body sent once",
			ok, failed, badBodies.Load(), goodPosts.Load())
	}
	// A refused connection consumed nothing, so even a POST moves on.
	for i := range 4 {
		if code := post("/refused/x"); code != 200 {
			t.Errorf("POST %d with one refusing target: got %d, want 200", i, code)
		}
	}
}

func TestUpstreamSaturation(t *testing.T) { forEachProtocol(t, testUpstreamSaturation) }

func testUpstreamSaturation(t *testing.T, client func(*testProxy) *http.Client) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s], max_requests_per_target: 1}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	tp.client = client(tp)
	done := make(chan int)
	go func() {
		resp, err := tp.client.Get(tp.url("/slow"))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	code, _, hdr := tp.get(t, "/second", nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("second request while saturated: got %d (Retry-After %q), want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("first request: got %d, want 200", code)
	}
	if code, _, _ := tp.get(t, "/third", nil); code != 200 {
		t.Errorf("after the first finished: got %d, want 200", code)
	}
}

func TestNoHealthyUpstream(t *testing.T) { forEachProtocol(t, testNoHealthyUpstream) }

func testNoHealthyUpstream(t *testing.T, client func(*testProxy) *http.Client) {
	up := echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  app:
    targets: [%s]
    health_check: {path: /health, interval: 50ms, unhealthy_threshold: 1}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	tp.client = client(tp)
	waitFor(t, "the target to fail its health check", func() bool { up, _ := tp.targetUp(hostOf(up.URL)); return !up })
	if code, _, _ := tp.get(t, "/", nil); code != http.StatusServiceUnavailable {
		t.Errorf("no healthy target: got %d, want 503", code)
	}
	resp, err := http.Get("http://" + tp.Addrs().Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz: got %d, want 503", resp.StatusCode)
	}
	body := scrape(t, tp)
	if !strings.Contains(body, `velox_proxy_upstream_healthy{pool="app",target="`+hostOf(up.URL)+`"} 0`) {
		t.Errorf("metrics do not show the target down:\n%s", grepLines(body, "upstream_healthy"))
	}
}

func scrape(t *testing.T, tp *testProxy) string {
	t.Helper()
	resp, err := http.Get("http://" + tp.Addrs().Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func echoUpstreamFunc(t *testing.T, h http.HandlerFunc) *httpServer {
	t.Helper()
	return newHTTPServer(t, h)
}

// httpServer is a minimal httptest.Server stand-in whose Close does not
// wait for hijacked or blocked handlers.
type httpServer struct {
	URL string
	srv *http.Server
}

func newHTTPServer(t *testing.T, h http.Handler) *httpServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &httpServer{URL: "http://" + l.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}}
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// A target that cannot be reached at all is ejected after
// passive.max_failures failed exchanges, without any health check, while
// every client request is retried on a live target; its failures are
// counted once each in the metrics.
func TestPassiveEjectionOnErrors(t *testing.T) { forEachProtocol(t, testPassiveEjectionOnErrors) }

func testPassiveEjectionOnErrors(t *testing.T, client func(*testProxy) *http.Client) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // connections are refused from now on
	a, b := echoUpstream(t, "a"), echoUpstream(t, "b")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  app:
    targets: [http://%s, %s, %s]
    balance: round_robin
    retries: 1
    passive: {max_failures: 2, cooldown: 1h}
routes: [{path: /, upstream: app}]
`, dead, a.URL, b.URL), nil)
	tp.client = client(tp)

	for i := range 30 {
		if code, body, _ := tp.get(t, "/obj", nil); code != 200 {
			t.Fatalf("request %d: %d %q; want every request retried on a live target", i, code, body)
		}
	}
	if up, _ := tp.targetUp(dead); up {
		t.Error("the unreachable target is still reported up")
	}
	m := scrape(t, tp)
	if want := `velox_proxy_upstream_errors_total{pool="app",target="` + dead + `"} 2`; !strings.Contains(m, want) {
		t.Errorf("metrics lack %q:\n%s", want, grepLines(m, "upstream_errors"))
	}
}

// A target that is alive but answers 503 (a Swift proxy node cut off from
// its object servers) is ejected for its answers when the pool lists 503
// in passive.statuses, so that clients reach the healthy targets; but an
// answer never ejects the last target available, so that a pool where all
// answer 503 passes the upstream's own answer on.
func TestPassiveEjectionOnStatus(t *testing.T) { forEachProtocol(t, testPassiveEjectionOnStatus) }

func testPassiveEjectionOnStatus(t *testing.T, client func(*testProxy) *http.Client) {
	var sickHits atomic.Int64
	sickFunc := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		sickHits.Add(1)
		http.Error(w, "object servers unreachable", http.StatusServiceUnavailable)
	}
	sick, lonely := echoUpstreamFunc(t, sickFunc), echoUpstreamFunc(t, sickFunc)
	well := func(name string) *httpServer {
		return echoUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok from "+name) })
	}
	a, b := well("a"), well("b")
	host := func(s *httpServer) string { return strings.TrimPrefix(s.URL, "http://") }
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  swift:
    targets: [%s, %s, %s]
    balance: round_robin
    health_check: {path: /health, interval: 100ms}
    passive: {max_failures: 2, cooldown: 1h, statuses: [502, 503, 504]}
  lonely:
    targets: [%s]
    passive: {max_failures: 1, cooldown: 1h, statuses: [503]}
routes:
  - {path: /, upstream: swift}
  - {path: /lonely/, upstream: lonely}
`, sick.URL, a.URL, b.URL, lonely.URL), nil)
	tp.client = client(tp)

	bad := 0
	for range 60 {
		code, body, _ := tp.get(t, "/obj", nil)
		switch {
		case code == 503 && strings.Contains(body, "object servers unreachable"):
			bad++
		case code != 200 || !strings.HasPrefix(body, "ok from"):
			t.Fatalf("unexpected answer %d %q", code, body)
		}
	}
	// Round robin sends every third request to sick until it is ejected
	// after its second 503 in a row.
	if bad != 2 || sickHits.Load() != 2 {
		t.Errorf("clients saw %d answers of 503 (sick was asked %d times); want 2 before ejection", bad, sickHits.Load())
	}
	if up, _ := tp.targetUp(host(sick)); up {
		t.Error("the target answering 503 is still reported up")
	}
	if up, _ := tp.targetUp(host(a)); !up {
		t.Error("a healthy target was ejected")
	}

	// The lonely pool's only target: never ejected for its answers, so
	// every client gets the upstream's own 503, not the proxy's.
	for range 5 {
		code, body, _ := tp.get(t, "/lonely/x", nil)
		if code != 503 || !strings.Contains(body, "object servers unreachable") {
			t.Fatalf("lonely pool answered %d %q; want the upstream's 503", code, body)
		}
	}
	if up, _ := tp.targetUp(host(lonely)); !up {
		t.Error("the only target of a pool was ejected for its answers")
	}
}
