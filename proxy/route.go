package proxy

import (
	"net"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
)

// route is one compiled entry of the routing table.
type route struct {
	RouteSpec
	name string // "host/path", for logs and metrics
	pool *pool
	rp   *httputil.ReverseProxy
	m    *routeMetrics
}

// routeTable finds the route for a request. Routes naming the request's
// host are tried before host-less ones, and within each group the longest
// matching prefix wins.
type routeTable struct {
	byHost map[string][]*route
	any    []*route
}

func newRouteTable(routes []*route) *routeTable {
	t := &routeTable{byHost: map[string][]*route{}}
	for _, r := range routes {
		if r.Host == "" {
			t.any = append(t.any, r)
		} else {
			h := strings.ToLower(r.Host)
			t.byHost[h] = append(t.byHost[h], r)
		}
	}
	byLen := func(a, b *route) int { return len(b.Path) - len(a.Path) }
	slices.SortStableFunc(t.any, byLen)
	for _, rs := range t.byHost {
		slices.SortStableFunc(rs, byLen)
	}
	return t
}

// match returns the route for host (as in the Host header, port allowed)
// and the decoded URL path, or nil.
func (t *routeTable) match(host, path string) *route {
	if rs := t.byHost[normalizeHost(host)]; rs != nil {
		if r := matchPrefix(rs, path); r != nil {
			return r
		}
	}
	return matchPrefix(t.any, path)
}

func matchPrefix(rs []*route, path string) *route {
	for _, r := range rs {
		if prefixMatches(r.Path, path) {
			return r
		}
	}
	return nil
}

// prefixMatches reports whether path is under prefix. A prefix without a
// trailing slash matches only whole segments, so "/api" matches "/api" and
// "/api/x" but not "/apix".
func prefixMatches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// replacePrefix swaps the matched prefix of path for repl, joining the rest
// with exactly one slash.
func replacePrefix(path, prefix, repl string) string {
	rest := path[len(prefix):]
	if rest == "" {
		return repl
	}
	return strings.TrimSuffix(repl, "/") + "/" + strings.TrimPrefix(rest, "/")
}

// rewriteURL applies the route's strip_prefix or rewrite to u in place,
// keeping the client's escaping of the rest of the path.
func (r *route) rewriteURL(u *url.URL) {
	repl := r.Rewrite
	if r.StripPrefix {
		repl = "/"
	}
	if repl == "" || !strings.HasPrefix(u.Path, r.Path) {
		return
	}
	escaped := u.EscapedPath()
	u.Path = replacePrefix(u.Path, r.Path, repl)
	u.RawPath = ""
	if strings.HasPrefix(escaped, r.Path) {
		// url.URL uses RawPath only when it is a valid encoding of Path.
		u.RawPath = replacePrefix(escaped, r.Path, repl)
	}
}

// hasDotSegment reports whether path contains "." or ".." segments, which
// could make the upstream resolve a path outside the matched prefix.
func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
