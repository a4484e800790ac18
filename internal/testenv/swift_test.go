package testenv

import "testing"

func TestConfHasValue(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"swift_hash_path_suffix = changeme\n", true},
		{"[swift-hash]\nswift_hash_path_suffix=x", true},
		{"swift_hash_path_suffix =\n", false},    // set to nothing
		{"#swift_hash_path_suffix = x\n", false}, // commented out
		{"swift_hash_path_prefix = x\n", false},  // a different key
		{"", false},
	} {
		if got := confHasValue(tc.text, "swift_hash_path_suffix"); got != tc.want {
			t.Errorf("confHasValue(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
