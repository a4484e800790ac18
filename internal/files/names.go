package files

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxNameBytes is the longest name accepted, in bytes of UTF-8 after NFC
// normalization: what common file systems hold.
const MaxNameBytes = 255

// CleanName validates a single file or folder name and returns it
// NFC-normalized, so that the same name typed on macOS (NFD) and elsewhere
// (NFC) is one name.
func CleanName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errorf(CodeInvalidName, "The name is not valid UTF-8.")
	}
	name = norm.NFC.String(name)
	switch {
	case name == "":
		return "", errorf(CodeInvalidName, "The name is empty.")
	case name == "." || name == "..":
		return "", errorf(CodeInvalidName, "%q is not allowed as a name.", name)
	case len(name) > MaxNameBytes:
		return "", errorf(CodeInvalidName, "The name is %d bytes long; at most %d are allowed.", len(name), MaxNameBytes)
	case strings.ContainsRune(name, '/'):
		return "", errorf(CodeInvalidName, "The name %q contains '/'.", name)
	case strings.ContainsRune(name, '\\'):
		// Windows clients read '\' as a path separator.
		return "", errorf(CodeInvalidName, "The name %q contains '\\'.", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", errorf(CodeInvalidName, "The name contains a control character (U+%04X).", r)
		}
	}
	return name, nil
}

// SplitPath validates a slash-separated path relative to a space root and
// returns its cleaned names. "", "/" and "//" are the root (no names).
// ".." and "." segments are rejected rather than resolved: a client that
// sends them is confused or hostile.
func SplitPath(p string) ([]string, error) {
	if strings.ContainsRune(p, '\\') {
		return nil, errorf(CodeInvalidName, "The path %q contains '\\'.", p)
	}
	var names []string
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			continue
		}
		name, err := CleanName(seg)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// FoldName returns the case-folded form of a clean name. Two names with the
// same fold cannot live in one folder on Windows or macOS clients.
func FoldName(name string) string {
	// A Caser keeps state, so each call gets its own.
	return cases.Fold().String(name)
}
