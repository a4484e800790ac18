package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

func dialLeaf(t *testing.T, addr, serverName string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: serverName})
	if err != nil {
		t.Fatalf("dial with SNI %q: %v", serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestSNIPicksCertificate(t *testing.T) {
	pki := newTestPKI(t)
	up := echoUpstream(t, "app")
	aCert, aKey := pki.issue(t, "a", []string{"a.test"}, "")
	bCert, bKey := pki.issue(t, "b", []string{"b.test", "*.b.test"}, "")
	tp := startProxy(t, pki, fmt.Sprintf(`
listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %q, key: %q}
    - {cert: %q, key: %q}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, aCert, aKey, bCert, bKey, up.URL), nil)

	for _, tc := range []struct{ sni, wantName string }{
		{"a.test", "a.test"},
		{"b.test", "b.test"},
		{"x.b.test", "b.test"}, // wildcard
		{"A.TEST", "a.test"},   // case-insensitive
	} {
		leaf := dialLeaf(t, tp.Addrs().HTTPS, tc.sni, pki.pool)
		if leaf.DNSNames[0] != tc.wantName {
			t.Errorf("SNI %q: got certificate for %v, want %s", tc.sni, leaf.DNSNames, tc.wantName)
		}
	}
	// An unknown name gets the first certificate (and fails verification).
	c, err := tls.Dial("tcp", tp.Addrs().HTTPS, &tls.Config{InsecureSkipVerify: true, ServerName: "other.test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0].DNSNames[0]; got != "a.test" {
		t.Errorf("unknown SNI: got %s, want the first certificate a.test", got)
	}
	c.Close()
}

func TestTLSVersionsAndHTTP2(t *testing.T) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)

	resp, err := tp.client.Get(tp.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("got %s over TLS %x, want HTTP/2 over TLS 1.3", resp.Proto, resp.TLS.Version)
	}

	// A client that negotiated h2 and sends HTTP/1.1 gets no answer, as
	// when net/http does the TLS handshake itself.
	c, err := tls.Dial("tcp", tp.Addrs().HTTPS, &tls.Config{RootCAs: tp.pki.pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if len(got) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("an HTTP/1.1 request on an h2 connection got %q (err %v), want the connection closed unanswered", got, err)
	}

	for _, tc := range []struct {
		name   string
		max    uint16
		suite  uint16
		wantOK bool
	}{
		{"TLS 1.1", tls.VersionTLS11, 0, false},
		{"TLS 1.2 AEAD", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"TLS 1.2 CBC", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
	} {
		cfg := &tls.Config{RootCAs: tp.pki.pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tc.max}
		if tc.suite != 0 {
			cfg.CipherSuites = []uint16{tc.suite}
		}
		c, err := tls.Dial("tcp", tp.Addrs().HTTPS, cfg)
		if (err == nil) != tc.wantOK {
			t.Errorf("%s: handshake error %v, want success %v", tc.name, err, tc.wantOK)
		}
		if c != nil {
			c.Close()
		}
	}
}

func TestHTTPRedirectsToHTTPS(t *testing.T) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
hsts: {max_age: 8760h, include_subdomains: true}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, up.URL), nil)
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + tp.Addrs().HTTP
	_, port, _ := strings.Cut(tp.Addrs().HTTPS, ":")

	req, _ := http.NewRequest(http.MethodPost, base+"/s/abc?dl=1", strings.NewReader("x"))
	req.Host = "files.example.com"
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "https://files.example.com:" + port + "/s/abc?dl=1"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("redirect: got %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS must not be sent over plain HTTP")
	}

	// Health and ACME challenges are answered without a redirect.
	resp, err = plain.Get(base + defaultHealthPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health over HTTP: got %d, want 200", resp.StatusCode)
	}
	resp, err = plain.Get(base + "/.well-known/acme-challenge/token1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Upstream") != "app" ||
		resp.Header.Get("X-Got-X-Forwarded-Proto") != "http" {
		t.Errorf("ACME challenge: got %d from %q (proto %q), want 200 from app over http",
			resp.StatusCode, resp.Header.Get("X-Upstream"), resp.Header.Get("X-Got-X-Forwarded-Proto"))
	}

	_, _, hdr := tp.get(t, "/", nil)
	if got := hdr.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS over HTTPS: got %q", got)
	}
}

func TestCertificateHotReload(t *testing.T) {
	pki := newTestPKI(t)
	up := echoUpstream(t, "app")
	cert, key := pki.issue(t, "site", []string{"localhost"}, "")
	tp := startProxy(t, pki, fmt.Sprintf(`
listen: 127.0.0.1:0
tls:
  reload_interval: 50ms
  certificates: [{cert: %q, key: %q}]
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, cert, key, up.URL), nil)

	first := dialLeaf(t, tp.Addrs().HTTPS, "localhost", pki.pool).SerialNumber
	// A broken write is ignored: the old certificate stays in service.
	writeFile(t, cert, []byte("not a certificate"))
	time.Sleep(300 * time.Millisecond)
	if got := dialLeaf(t, tp.Addrs().HTTPS, "localhost", pki.pool).SerialNumber; got.Cmp(first) != 0 {
		t.Fatalf("after a broken write the certificate changed to serial %v", got)
	}
	pki.issue(t, "site", []string{"localhost"}, "") // same files, new certificate
	waitFor(t, "the renewed certificate", func() bool {
		return dialLeaf(t, tp.Addrs().HTTPS, "localhost", pki.pool).SerialNumber.Cmp(first) != 0
	})
}

func TestOCSPStapling(t *testing.T) {
	pki := newTestPKI(t)
	var hits atomic.Int64
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		resp, err := ocsp.CreateResponse(pki.ca.cert, pki.ca.cert, ocsp.Response{
			Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
		}, pki.ca.key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	defer responder.Close()
	up := echoUpstream(t, "app")
	withOCSP, withOCSPKey := pki.issue(t, "ocsp", []string{"ocsp.test"}, responder.URL)
	plain, plainKey := pki.issue(t, "plain", []string{"plain.test"}, "")
	tp := startProxy(t, pki, fmt.Sprintf(`
listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %q, key: %q}
    - {cert: %q, key: %q}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, withOCSP, withOCSPKey, plain, plainKey, up.URL), nil)

	staple := func(sni string) []byte {
		c, err := tls.Dial("tcp", tp.Addrs().HTTPS, &tls.Config{RootCAs: pki.pool, ServerName: sni})
		if err != nil {
			t.Fatalf("dial %s: %v", sni, err)
		}
		defer c.Close()
		return c.ConnectionState().OCSPResponse
	}
	waitFor(t, "an OCSP staple", func() bool { return len(staple("ocsp.test")) > 0 })
	resp, err := ocsp.ParseResponse(staple("ocsp.test"), pki.ca.cert)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("staple: %v, status %v; want a good response", err, resp)
	}
	// A certificate without an OCSP server is served without a staple.
	if s := staple("plain.test"); len(s) != 0 {
		t.Errorf("certificate without OCSP server got a %d-byte staple", len(s))
	}
	if hits.Load() == 0 {
		t.Error("responder was never asked")
	}
}
