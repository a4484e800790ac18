package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA with helpers to issue certificates into files.
type testPKI struct {
	ca   *devCA
	pool *x509.CertPool
	dir  string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := newDevCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &testPKI{ca: ca, pool: pool, dir: t.TempDir()}
}

// issue writes a certificate for hosts and returns the cert and key paths.
func (p *testPKI) issue(t testing.TB, name string, hosts []string, ocspURL string) (certFile, keyFile string) {
	t.Helper()
	chain, key, err := p.ca.issue(hosts, ocspURL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writeFile(t, certFile, chain)
	writeFile(t, keyFile, key)
	return certFile, keyFile
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	// Write and rename, as certificate tools do, so a poll never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// testLogger discards logs unless VELOX_TEST_PROXY_LOG is set: background
// goroutines may log after a test ended, which t.Log does not allow.
func testLogger() *slog.Logger {
	if os.Getenv("VELOX_TEST_PROXY_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testProxy is a proxy started in-process on loopback.
type testProxy struct {
	*Proxy
	pki    *testPKI
	cfg    *Config
	client *http.Client
}

// startProxy parses yamlText (after fmt.Sprintf-style args), adds a
// certificate for localhost/127.0.0.1 unless the config names one, and
// starts the proxy on ephemeral ports.
func startProxy(t *testing.T, pki *testPKI, yamlText string, access *slog.Logger) *testProxy {
	t.Helper()
	if pki == nil {
		pki = newTestPKI(t)
	}
	if !strings.Contains(yamlText, "tls:") {
		cert, key := pki.issue(t, "default", []string{"localhost", "127.0.0.1"}, "")
		yamlText += fmt.Sprintf("tls:\n  certificates:\n    - {cert: %q, key: %q}\n", cert, key)
	}
	cfg, err := ParseConfig([]byte(yamlText))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yamlText)
	}
	p, err := New(cfg, testLogger(), access)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return &testProxy{Proxy: p, pki: pki, cfg: cfg, client: pki.client("localhost")}
}

// client returns an HTTPS client (HTTP/2 preferred) that trusts the CA and
// sends serverName as SNI.
func (p *testPKI) client(serverName string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.pool, ServerName: serverName},
		ForceAttemptHTTP2: true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (tp *testProxy) url(path string) string { return "https://" + tp.Addrs().HTTPS + path }

// get fetches path and returns status, body and headers.
func (tp *testProxy) get(t *testing.T, path string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tp.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := tp.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// echoUpstream answers with its name and what it received, as headers and
// a small body.
func echoUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Got-Path", r.URL.Path)
		w.Header().Set("X-Got-Raw-Path", r.URL.EscapedPath())
		w.Header().Set("X-Got-Query", r.URL.RawQuery)
		w.Header().Set("X-Got-Host", r.Host)
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Request-Id"} {
			w.Header().Set("X-Got-"+h, r.Header.Get(h))
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls cond until it holds or the (generous) deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// targetState returns whether the target with host addr is up, and whether
// it is known at all.
func (tp *testProxy) targetUp(addr string) (up, known bool) {
	for _, tg := range tp.allTargets() {
		if tg.url.Host == addr && !tg.draining.Load() {
			return tg.up(), true
		}
	}
	return false, false
}

// rawTLS dials the proxy with TLS and HTTP/1.1 only, for hand-written
// requests.
func (tp *testProxy) rawTLS(t *testing.T) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", tp.Addrs().HTTPS,
		&tls.Config{RootCAs: tp.pki.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func hostOf(u string) string { return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://") }
