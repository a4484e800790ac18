package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestRunRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"nosuch"}, {"swift", "extra"}} {
		err := run(context.Background(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("run(%q) error = %v, want a usage error", args, err)
		}
	}
}
