package dav

import (
	"net/url"
	"strings"
	"testing"
)

func TestSplitDAVPath(t *testing.T) {
	tests := []struct {
		in    string
		root  string
		names string // joined with "|"
		bad   bool
	}{
		{in: "/remote.php/webdav", root: "/remote.php/webdav"},
		{in: "/remote.php/webdav/", root: "/remote.php/webdav"},
		{in: "/remote.php/webdav//a//b/", root: "/remote.php/webdav", names: "a|b"},
		{in: "/remote.php/dav/files/alice", root: "/remote.php/dav/files/alice"},
		{in: "/remote.php/dav/files/%61lice/x%20y", root: "/remote.php/dav/files/%61lice", names: "x y"},
		// NFD input is normalized to NFC.
		{in: "/remote.php/webdav/e%CC%81", root: "/remote.php/webdav", names: "\u00e9"},
		{in: "/remote.php/dav/files/bob/x", bad: true},
		{in: "/remote.php/dav/files/", bad: true},
		{in: "/remote.php/webdavx", bad: true},
		{in: "/remote.php/webdav/a/../b", bad: true},
		{in: "/remote.php/webdav/%2E%2e", bad: true},
		{in: "/remote.php/webdav/a%2Fb", bad: true},
		{in: "/remote.php/webdav/a%5Cb", bad: true},
		{in: "/remote.php/webdav/a%00", bad: true},
		{in: "/remote.php/webdav/%zz", bad: true},
	}
	for _, tt := range tests {
		root, names, err := splitDAVPath(tt.in, "alice")
		if tt.bad {
			if err == nil {
				t.Errorf("%s: got %s %q, want an error", tt.in, root, names)
			}
			continue
		}
		if err != nil || root != tt.root || strings.Join(names, "|") != tt.names {
			t.Errorf("%s: got %s %q %v, want %s %q", tt.in, root, names, err, tt.root, tt.names)
		}
	}
}

// FuzzSplitDAVPath checks that whatever the URL path, the parsed names are
// plain names (no "..", ".", separators or NUL) inside alice's tree, and
// that the href built from them parses back to the same names.
func FuzzSplitDAVPath(f *testing.F) {
	for _, s := range []string{"/remote.php/webdav/a/b", "/remote.php/dav/files/alice/%2e%2e/x", "/remote.php/dav/files/%61lice/a%2fb",
		"/remote.php/webdav/..\\x", "/remote.php/webdav/%00", "/remote.php/webdav/e%CC%81t%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		root, names, err := splitDAVPath(in, "alice")
		if err != nil {
			return
		}
		if root != prefixWebDAV {
			user, uerr := url.PathUnescape(strings.TrimPrefix(root, prefixFiles))
			if !strings.HasPrefix(root, prefixFiles) || uerr != nil || user != "alice" {
				t.Fatalf("%q: root %q is not alice's", in, root)
			}
		}
		for _, n := range names {
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
				t.Fatalf("%q: bad name %q", in, n)
			}
		}
		tg := &target{root: root, names: names}
		root2, names2, err := splitDAVPath(tg.href(names, false), "alice")
		if err != nil || root2 != root || strings.Join(names2, "/") != strings.Join(names, "/") {
			t.Fatalf("%q: href %q parses to %q %q %v", in, tg.href(names, false), root2, names2, err)
		}
	})
}
