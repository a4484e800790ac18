package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestPageAndAssets(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/login", "/files/abc/some/folder"} {
		w := get(t, h, path)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Header().Get("Content-Type"))
		}
		if got := w.Header().Get("Content-Security-Policy"); got != CSP {
			t.Errorf("GET %s: CSP %q", path, got)
		}
		if w.Header().Get("Cache-Control") != "no-cache" || w.Header().Get("X-Content-Type-Options") != "nosniff" ||
			w.Header().Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: headers %v", path, w.Header())
		}
	}
	page := get(t, h, "/").Body.String()
	m := regexp.MustCompile(`/static/app\.[0-9a-f]{12}\.js`).FindString(page)
	if m == "" {
		t.Fatalf("page does not reference a hashed app.js:\n%s", page)
	}
	if strings.Contains(page, `"/static/app.js"`) || regexp.MustCompile(`<script>|style=`).MatchString(page) {
		t.Errorf("page has an unhashed reference or inline script/style:\n%s", page)
	}

	w := get(t, h, m, "Accept-Encoding", "gzip, deflate")
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		w.Header().Get("Content-Encoding") != "gzip" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET %s: %d %v", m, w.Code, w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(zr)
	// Module imports point at hashed names too.
	if !regexp.MustCompile(`from '\./api\.[0-9a-f]{12}\.js'`).Match(js) {
		t.Errorf("app.js imports are not rewritten to hashed names")
	}
	plain := get(t, h, m)
	if plain.Header().Get("Content-Encoding") != "" || plain.Body.String() != string(js) {
		t.Errorf("identity encoding differs from the gzip one")
	}
	if w := get(t, h, m, "If-None-Match", plain.Header().Get("ETag")); w.Code != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", w.Code)
	}
	if w := get(t, h, "/static/app.js"); w.Code != 404 {
		t.Errorf("unhashed asset name: %d, want 404", w.Code)
	}
	req := httptest.NewRequest("POST", "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}

func TestHashesFollowImports(t *testing.T) {
	build := func(leaf string) map[string]*asset {
		h, err := newHandler(fstest.MapFS{
			"index.html": {Data: []byte(`<script type="module" src="/static/a.js"></script>`)},
			"a.js":       {Data: []byte(`import { x } from './b.js';`)},
			"b.js":       {Data: []byte(leaf)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return h.assets
	}
	names := func(m map[string]*asset) string {
		var s []string
		for n := range m {
			s = append(s, n)
		}
		return strings.Join(s, " ")
	}
	one, two := build("export const x = 1;"), build("export const x = 2;")
	for n := range one {
		if strings.HasPrefix(n, "a.") && strings.Contains(names(two), n) {
			t.Errorf("a.js kept its hashed name %s although its import b.js changed", n)
		}
	}
	if _, err := newHandler(fstest.MapFS{
		"index.html": {Data: []byte("")},
		"a.js":       {Data: []byte(`import './b.js';`)},
		"b.js":       {Data: []byte(`import './a.js';`)},
	}); err == nil {
		t.Error("an import cycle was accepted")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"br", false},
		{"gzip;q=0", false},
		{"*", true},
		{"", false},
	} {
		if got := acceptsGzip(tc.in); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
