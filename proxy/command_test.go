package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCommandDevCertAndCheck(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	noenv := func(string) string { return "" }
	err := Command(context.Background(), []string{"dev-cert", "--out", dir, "--hosts", "files.test,127.0.0.1"}, noenv, &out, &errOut)
	if err != nil {
		t.Fatalf("dev-cert: %v\n%s", err, errOut.String())
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"files.test", "127.0.0.1"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("dev certificate for %s: %v", name, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode: %v, %v; want 0600", fi.Mode(), err)
	}

	cfg := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
tls: {certificates: [{cert: %q, key: %q}]}
upstreams: {app: {targets: ["http://127.0.0.1:9"]}}
routes: [{path: /, upstream: app}]
`, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))), 0o600)
	out.Reset()
	env := func(k string) string {
		if k == "VELOX_PROXY_CONFIG" {
			return cfg
		}
		return ""
	}
	if err := Command(context.Background(), []string{"check"}, env, &out, &errOut); err != nil || !strings.Contains(out.String(), ": ok (1 routes, 1 pools)") {
		t.Errorf("check: %v, output %q", err, out.String())
	}
	os.WriteFile(cfg, []byte("listen: :443\nroutes: [{path: /, upstream: nope}]\n"), 0o600)
	err = Command(context.Background(), []string{"check", "--config", cfg}, noenv, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `routes[0]: upstream: unknown pool "nope"`) {
		t.Errorf("check of a bad config: %v", err)
	}
	if err := Command(context.Background(), []string{"frobnicate"}, noenv, &out, &errOut); err == nil {
		t.Error("unknown subcommand accepted")
	}
}

func TestMetricsPerRouteAndUpstream(t *testing.T) {
	up := echoUpstream(t, "app")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}, {path: /api/, upstream: app}]
`, up.URL), nil)
	for range 3 {
		tp.get(t, "/api/x", nil)
	}
	tp.get(t, "/../x", nil)
	target := hostOf(up.URL)
	var m string
	waitFor(t, "the metrics", func() bool {
		m = scrape(t, tp)
		return strings.Contains(m, `velox_proxy_requests_total{code="200",route="/api/",upstream="app"} 3`)
	})
	for _, want := range []string{
		`velox_proxy_request_duration_seconds_count{route="/api/",upstream="app"} 3`,
		`velox_proxy_upstream_responses_total{code="200",pool="app",target="` + target + `"} 3`,
		`velox_proxy_upstream_healthy{pool="app",target="` + target + `"} 1`,
		`velox_proxy_upstream_in_flight{pool="app",target="` + target + `"} 0`,
		`velox_proxy_requests_in_flight{route="/api/",upstream="app"} 0`,
		`velox_proxy_request_errors_total{reason="bad_path",route="",upstream=""} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + tp.Addrs().Admin + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("admin /healthz: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}
