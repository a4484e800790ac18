// Package proxy is the TLS-terminating reverse proxy that faces users in a
// Velox deployment and routes requests to pools of app and Swift nodes.
package proxy

import (
	"context"
	"errors"
	"io"
)

// Command runs "velox proxy" with the given arguments.
func Command(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("proxy: not implemented yet")
}
