package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	os.WriteFile(key, []byte("x"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	tlsBlock := fmt.Sprintf("tls:\n  certificates: [{cert: %s, key: %s}]\n", cert, key)
	base := "listen: :443\n" + tlsBlock + "upstreams:\n  app: {targets: [\"http://velox:8080\"]}\n"

	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"minimal is fine", base + "routes: [{path: /, upstream: app}]\n", ""},
		{"unknown top-level key", "listen: :443\nlisten_tls: :8443\n", `line 2: unknown key "listen_tls"`},
		{"unknown nested key", base + "routes:\n  - path: /\n    upstream: app\n    strip: true\n", `line 9: unknown key "strip"`},
		{"unknown key in pool", "upstreams:\n  app:\n    targets: []\n    healthcheck: {}\n", `line 4: unknown key "healthcheck"`},
		{"wrong type", "listen: [1]\n", "line 1: cannot unmarshal !!seq into string"},
		{"empty", "", "empty config"},
		{"no listen", tlsBlock + "upstreams: {app: {targets: [\"http://a:1\"]}}\nroutes: [{path: /, upstream: app}]\n", "listen: required"},
		{"bad listen", strings.Replace(base, ":443", "443", 1) + "routes: [{path: /, upstream: app}]\n", `listen: bad address "443"`},
		{"missing cert file", strings.Replace(base, cert, missing, 1) + "routes: [{path: /, upstream: app}]\n",
			"tls.certificates[0]: " + missing + ": file not found"},
		{"unknown pool", base + "routes: [{path: /v1/, upstream: swift}]\n", `routes[0]: upstream: unknown pool "swift"`},
		{"duplicate route", base + "routes: [{path: /api/, upstream: app}, {path: /api/, upstream: app}]\n",
			`routes[1]: duplicate route (host "", path "/api/") already defined at routes[0]`},
		{"same path on another host is fine", base + "routes: [{path: /, upstream: app}, {host: dl.example.com, path: /, upstream: app}]\n", ""},
		{"relative path", base + "routes: [{path: api/, upstream: app}]\n", `routes[0]: path: "api/" must start with /`},
		{"dot segment", base + "routes: [{path: /a/../b/, upstream: app}]\n", `routes[0]: path: "/a/../b/" must not contain . or .. segments`},
		{"strip and rewrite", base + "routes: [{path: /a/, upstream: app, strip_prefix: true, rewrite: /b/}]\n",
			"routes[0]: strip_prefix and rewrite are mutually exclusive"},
		{"bad target scheme", strings.Replace(base, "http://velox:8080", "ftp://velox:8080", 1) + "routes: [{path: /, upstream: app}]\n",
			`upstreams.app: targets[0]: bad URL "ftp://velox:8080": want http(s)://host:port`},
		{"target with path", strings.Replace(base, "http://velox:8080", "http://velox:8080/app", 1) + "routes: [{path: /, upstream: app}]\n",
			`upstreams.app: targets[0]: bad URL "http://velox:8080/app": only scheme, host and port are allowed`},
		{"no targets", "listen: :443\n" + tlsBlock + "upstreams: {app: {targets: []}}\nroutes: [{path: /, upstream: app}]\n",
			"upstreams.app: targets: at least one target is required"},
		{"bad balance", strings.Replace(base, "]}", "], balance: random}", 1) + "routes: [{path: /, upstream: app}]\n",
			`upstreams.app: balance: must be least_outstanding or round_robin, not "random"`},
		{"passive status not 5xx", strings.Replace(base, "]}", "], passive: {statuses: [503, 404]}}", 1) + "routes: [{path: /, upstream: app}]\n",
			"upstreams.app: passive.statuses[1]: 404 is not a 5xx status"},
		{"bad trusted proxy", base + "trusted_proxies: [10.0.0.0/33]\nroutes: [{path: /, upstream: app}]\n", `trusted_proxies[0]: bad CIDR "10.0.0.0/33"`},
		{"no routes", base, "routes: at least one route is required"},
		{"several problems at once", base + "routes: [{path: /, upstream: a1}, {path: x, upstream: app}]\n",
			"routes[0]: upstream: unknown pool \"a1\"\nroutes[1]: path: \"x\" must start with /"},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s:\n got: %s\nwant: %s", tc.name, got, tc.want)
		}
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(path, []byte("listen: :443\nbogus: 1\n"), 0o600)
	_, err := LoadConfig(path)
	if want := path + `: line 2: unknown key "bogus"`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// The sample configs must stay valid; their certificate files do not exist
// here, which must be the only complaint.
func TestSampleConfigs(t *testing.T) {
	for _, name := range []string{"proxy.compose.yaml", "proxy.multinode.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseConfig(data)
		if err == nil {
			continue
		}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if !strings.HasSuffix(line, ": file not found") {
				t.Errorf("%s: %s", name, line)
			}
		}
	}
}
