package main

import (
	"context"
	"io"

	"github.com/veloxhq/velox/proxy"
)

func runProxy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return proxy.Command(ctx, args, getenv, stdout, stderr)
}
