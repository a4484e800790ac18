// Package web holds the browser UI, embedded into the binary: one HTML
// page, ES modules, a style sheet and an SVG icon sprite, served with
// content-hashed names, precompressed, and under a strict
// Content-Security-Policy.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy of every UI response: no inline
// script or style, nothing from other origins.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// asset is one static file, ready to serve.
type asset struct {
	name   string // hashed name, e.g. app.3f2a1b4c5d6e.js
	ctype  string
	body   []byte
	gz     []byte // nil when gzip does not make it smaller
	etag   string
	hashed bool // served under its hashed name: cache forever
}

// Handler returns the UI handler. Paths under /static/ are assets; every
// other path is the single page, which routes on the client.
func Handler() http.Handler {
	h, err := newHandler(mustSub(files, "static"))
	if err != nil {
		panic(err) // the embedded files are fixed at build time
	}
	return h
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

type handler struct {
	assets map[string]*asset // by hashed name and, for the page, "index.html"
	page   *asset
}

// importRE finds relative module imports: `from "./x.js"`, `import("./x.js")`
// and `import "./x.js"`.
var importRE = regexp.MustCompile(`((?:from|import)\s*\(?\s*)(["'])\./([A-Za-z0-9_.-]+)(["'])`)

// staticRefRE finds references to assets in the page: "/static/app.js".
var staticRefRE = regexp.MustCompile(`/static/([A-Za-z0-9_.-]+)`)

func newHandler(src fs.FS) (*handler, error) {
	raw := map[string][]byte{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		raw[p] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		if n != "index.html" {
			names = append(names, n)
		}
	}
	sort.Strings(names)

	// A module's hash covers its imports' hashed names, so a change to a
	// module changes the name of every module that imports it. Resolve
	// leaves first; a cycle is a build mistake.
	hashedName := map[string]string{}
	content := map[string][]byte{}
	for len(hashedName) < len(names) {
		progress := false
		for _, n := range names {
			if _, done := hashedName[n]; done {
				continue
			}
			b := raw[n]
			ready := true
			if strings.HasSuffix(n, ".js") {
				for _, m := range importRE.FindAllSubmatch(b, -1) {
					if _, ok := hashedName[string(m[3])]; !ok {
						ready = false
					}
				}
				if ready {
					b = importRE.ReplaceAllFunc(b, func(m []byte) []byte {
						s := importRE.FindSubmatch(m)
						return []byte(string(s[1]) + string(s[2]) + "./" + hashedName[string(s[3])] + string(s[4]))
					})
				}
			}
			if !ready {
				continue
			}
			content[n], hashedName[n] = b, hashName(n, b)
			progress = true
		}
		if !progress {
			return nil, fmt.Errorf("web: import cycle or missing module among static files")
		}
	}

	h := &handler{assets: map[string]*asset{}}
	for _, n := range names {
		a := newAsset(hashedName[n], n, content[n])
		a.hashed = true
		h.assets[a.name] = a
	}
	page := staticRefRE.ReplaceAllFunc(raw["index.html"], func(m []byte) []byte {
		if hn, ok := hashedName[string(m[len("/static/"):])]; ok {
			return []byte("/static/" + hn)
		}
		return m
	})
	h.page = newAsset("index.html", "index.html", page)
	return h, nil
}

// hashName turns app.js into app.<12 hex digits of SHA-256>.js.
func hashName(name string, b []byte) string {
	sum := sha256.Sum256(b)
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:6]) + ext
}

func newAsset(name, orig string, b []byte) *asset {
	ctype := mime.TypeByExtension(path.Ext(orig))
	switch path.Ext(orig) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".svg":
		ctype = "image/svg+xml"
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	sum := sha256.Sum256(b)
	a := &asset{name: name, ctype: ctype, body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if buf.Len() < len(b) {
		a.gz = buf.Bytes()
	}
	return a
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var a *asset
	if name, ok := strings.CutPrefix(r.URL.Path, "/static/"); ok {
		if a = h.assets[name]; a == nil {
			http.NotFound(w, r)
			return
		}
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// The page: every client-side route gets it, always revalidated
		// so that a new release's asset names are picked up at once.
		a = h.page
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	gz := a.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz {
		// Each encoding is its own representation, with its own ETag.
		body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
	}
	hd.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if gz {
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (and
// does not refuse it with q=0).
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") || strings.TrimSpace(enc) == "*" {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
