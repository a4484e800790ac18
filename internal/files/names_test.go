package files

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"report.pdf", "report.pdf", true},
		{"Cafe\u0301", "Caf\u00e9", true}, // NFD in, NFC out
		{" leading space", " leading space", true},
		{"日本語.txt", "日本語.txt", true},
		{strings.Repeat("é", 127), strings.Repeat("é", 127), true}, // 254 bytes
		{strings.Repeat("é", 128), "", false},                      // 256 bytes
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{"...", "...", true}, // an odd name, but not a path element
		{"a/b", "", false},
		{`a\b`, "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"\xff", "", false},
	} {
		got, err := CleanName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"/", nil, true},
		{"//a///b/", []string{"a", "b"}, true},
		{"/a/../b", nil, false},
		{"./a", nil, false},
		{`a\..\b`, nil, false},
	} {
		got, err := SplitPath(tc.in)
		if (err == nil) != tc.ok || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("SplitPath(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzSplitPath checks that whatever a client sends, an accepted path is a
// list of clean names: no empty, "." or ".." element, no separator, valid
// NFC UTF-8 within the length limit, and cleaning is idempotent.
func FuzzSplitPath(f *testing.F) {
	for _, seed := range []string{"", "/", "a/b", "../x", "%2e%2e/x", `..\x`, "a\x00b", "Cafe\u0301/x", "\xff/a", "/./", strings.Repeat("x", 300)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		names, err := SplitPath(p)
		if err != nil {
			if ErrorCode(err) != CodeInvalidName {
				t.Fatalf("SplitPath(%q) error %v has code %q", p, err, ErrorCode(err))
			}
			return
		}
		for _, n := range names {
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") ||
				!utf8.ValidString(n) || len(n) > MaxNameBytes || !norm.NFC.IsNormalString(n) {
				t.Fatalf("SplitPath(%q) accepted bad name %q", p, n)
			}
			again, err := CleanName(n)
			if err != nil || again != n {
				t.Fatalf("CleanName not idempotent on %q: %q, %v", n, again, err)
			}
		}
	})
}
