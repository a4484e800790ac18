package proxy

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func testTable(specs ...RouteSpec) *routeTable {
	var rs []*route
	for _, s := range specs {
		rs = append(rs, &route{RouteSpec: s, name: s.Host + s.Path})
	}
	return newRouteTable(rs)
}

func TestRouteMatch(t *testing.T) {
	tab := testTable(
		RouteSpec{Path: "/"},
		RouteSpec{Path: "/api/"},
		RouteSpec{Path: "/api/v2/"},
		RouteSpec{Path: "/remote.php"},
		RouteSpec{Path: "/v1/"},
		RouteSpec{Host: "dl.example.com", Path: "/"},
		RouteSpec{Host: "dl.example.com", Path: "/api/"},
	)
	for _, tc := range []struct{ host, path, want string }{
		{"files.example.com", "/", "/"},
		{"files.example.com", "/index.html", "/"},
		{"files.example.com", "/api/", "/api/"},
		{"files.example.com", "/api/files", "/api/"},
		{"files.example.com", "/api/v2/x", "/api/v2/"},
		{"files.example.com", "/api", "/"}, // "/api/" needs the slash
		{"files.example.com", "/apix", "/"},
		{"files.example.com", "/remote.php", "/remote.php"},
		{"files.example.com", "/remote.php/dav/files/u", "/remote.php"},
		{"files.example.com", "/remote.phpx", "/"}, // whole segments only without a trailing slash
		{"files.example.com", "/v1/AUTH_test/c/o", "/v1/"},
		{"dl.example.com", "/v1/AUTH_test/c/o", "dl.example.com/"}, // the host's own routes come first
		{"DL.Example.COM:443", "/api/x", "dl.example.com/api/"},
		{"dl.example.com.", "/api/x", "dl.example.com/api/"},
	} {
		r := tab.match(tc.host, tc.path)
		if r == nil || r.name != tc.want {
			got := "<nil>"
			if r != nil {
				got = r.name
			}
			t.Errorf("match(%q, %q) = %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	if r := testTable(RouteSpec{Path: "/api/"}).match("h", "/other"); r != nil {
		t.Errorf("no route for /other: got %s", r.name)
	}
}

func TestRewriteURL(t *testing.T) {
	for _, tc := range []struct {
		prefix, rewrite string
		strip           bool
		in, want        string
	}{
		{"/api/", "", true, "/api/files", "/files"},
		{"/api/", "", true, "/api/", "/"},
		{"/api", "", true, "/api", "/"},
		{"/api", "", true, "/api/x/y", "/x/y"},
		{"/api/", "/v2/", false, "/api/files", "/v2/files"},
		{"/api/", "/v2", false, "/api/files", "/v2/files"},
		{"/old", "/new", false, "/old", "/new"},
		{"/old", "/new/", false, "/old/a", "/new/a"},
		{"/dav/", "/remote.php/dav/", false, "/dav/files/a%2Fb", "/remote.php/dav/files/a%2Fb"}, // escaping kept
		{"/x/", "", false, "/x/y", "/x/y"},                                                      // no rewrite
	} {
		r := &route{RouteSpec: RouteSpec{Path: tc.prefix, Rewrite: tc.rewrite, StripPrefix: tc.strip}}
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		r.rewriteURL(u)
		if got := u.EscapedPath(); got != tc.want {
			t.Errorf("prefix %q rewrite %q strip %v: %q -> %q, want %q", tc.prefix, tc.rewrite, tc.strip, tc.in, got, tc.want)
		}
	}
}

// FuzzRouteMatch checks the matcher against a brute-force definition and
// that rewriting keeps paths absolute and keeps the unmatched rest.
func FuzzRouteMatch(f *testing.F) {
	for _, s := range []string{"/", "/api/x", "/api", "/remote.php/dav", "/v1/AUTH_a/c/o", "//", "/a/../b", "/%2F", "/ü/"} {
		f.Add(s, "/api/", "/v2/")
	}
	f.Fuzz(func(t *testing.T, path, prefix, repl string) {
		if checkRoutePath(prefix) != nil || checkRoutePath(repl) != nil || !strings.HasPrefix(path, "/") {
			return
		}
		prefixes := []string{"/", "/api/", "/api", "/v1/", prefix}
		var specs []RouteSpec
		seen := map[string]bool{}
		for _, p := range prefixes {
			if !seen[p] {
				seen[p] = true
				specs = append(specs, RouteSpec{Path: p})
			}
		}
		r := testTable(specs...).match("h", path)
		best := ""
		for p := range seen {
			if prefixMatches(p, path) && len(p) > len(best) {
				best = p
			}
		}
		if r == nil || r.Path != best {
			t.Fatalf("match(%q) = %v, want %q", path, r, best)
		}
		if !prefixMatches(prefix, path) {
			return
		}
		out := replacePrefix(path, prefix, repl)
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("replacePrefix(%q, %q, %q) = %q: not absolute", path, prefix, repl, out)
		}
		rest := strings.TrimPrefix(path[len(prefix):], "/")
		if !strings.HasSuffix(out, rest) {
			t.Fatalf("replacePrefix(%q, %q, %q) = %q: lost the rest %q", path, prefix, repl, out, rest)
		}
		if rest != "" && strings.Contains(out[:len(out)-len(rest)], "//") {
			t.Fatalf("replacePrefix(%q, %q, %q) = %q: double slash at the join", path, prefix, repl, out)
		}
	})
}

func TestRoutingEndToEnd(t *testing.T) {
	app, api, swift, dl := echoUpstream(t, "app"), echoUpstream(t, "api"), echoUpstream(t, "swift"), echoUpstream(t, "dl")
	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  app: {targets: [%s]}
  api: {targets: [%s]}
  swift: {targets: [%s]}
  dl: {targets: [%s]}
routes:
  - {path: /, upstream: app}
  - {path: /api/, upstream: api, strip_prefix: true}
  - {path: /remote.php/, upstream: app, rewrite: /dav/, host_header: upstream}
  - {path: /v1/, upstream: swift, host_header: swift.internal}
  - {host: dl.localhost, path: /, upstream: dl}
`, app.URL, api.URL, swift.URL, dl.URL), nil)

	for _, tc := range []struct {
		host, path                  string
		wantUp, wantPath, wantQuery string
		wantHost                    string
	}{
		{"localhost", "/index.html?x=1", "app", "/index.html", "x=1", "localhost"},
		{"localhost", "/api/files/1", "api", "/files/1", "", "localhost"},
		{"localhost", "/remote.php/webdav/a%20b", "app", "/dav/webdav/a b", "", hostOf(app.URL)},
		{"localhost", "/v1/AUTH_test/c/o?temp_url_sig=abc", "swift", "/v1/AUTH_test/c/o", "temp_url_sig=abc", "swift.internal"},
		{"dl.localhost", "/v1/x", "dl", "/v1/x", "", "dl.localhost"},
	} {
		code, _, hdr := tp.get(t, tc.path, map[string]string{"Host": tc.host})
		if code != 200 || hdr.Get("X-Upstream") != tc.wantUp || hdr.Get("X-Got-Path") != tc.wantPath ||
			hdr.Get("X-Got-Query") != tc.wantQuery || hdr.Get("X-Got-Host") != tc.wantHost {
			t.Errorf("%s%s: got %d from %q path %q query %q host %q; want 200 from %q path %q query %q host %q",
				tc.host, tc.path, code, hdr.Get("X-Upstream"), hdr.Get("X-Got-Path"), hdr.Get("X-Got-Query"), hdr.Get("X-Got-Host"),
				tc.wantUp, tc.wantPath, tc.wantQuery, tc.wantHost)
		}
	}
	if code, _, _ := tp.get(t, "/a/../api/x", nil); code != 400 {
		t.Errorf("dot segments: got %d, want 400", code)
	}
	if code, body, _ := tp.get(t, defaultHealthPath, nil); code != 200 || body != "ok\n" {
		t.Errorf("health: got %d %q", code, body)
	}
}
