package main

import (
	"log/slog"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/server"
)

// wireExtras attaches the optional front ends (WebDAV, the browser UI).
func wireExtras(srv *server.Server, svc *files.Service, logger *slog.Logger) {}
