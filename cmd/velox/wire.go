package main

import (
	"log/slog"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/server"
	"github.com/veloxhq/velox/server/dav"
	"github.com/veloxhq/velox/web"
)

// wireExtras attaches the optional front ends: WebDAV and the sync-client
// endpoints, and the browser UI.
func wireExtras(srv *server.Server, svc *files.Service, logger *slog.Logger) {
	srv.DAV = dav.New(svc, server.UserFrom, logger)
	srv.Web = web.Handler()
}
