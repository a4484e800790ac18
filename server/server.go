// Package server is Velox's HTTP front: the REST API under /api/v1, the
// WebDAV and sync-client endpoints, the browser UI, health checks and
// metrics. Handlers parse the request, call the files service (which does
// all authorization), and write the response; they hold no file logic.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/identity"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
)

// Options tune the server.
type Options struct {
	// MaxUploadBytes caps one upload; 0 means no limit.
	MaxUploadBytes int64
	// CookieSecure is "auto", "always" or "never".
	CookieSecure string
	// TrustedProxies are the networks whose X-Forwarded-* headers are
	// believed.
	TrustedProxies []netip.Prefix
	// SessionIdle and SessionMaxAge bound browser sessions.
	SessionIdle   time.Duration
	SessionMaxAge time.Duration
	// SessionKeys are the cookie hash key and (optional) block key.
	SessionKeys [][]byte
}

// Server serves Velox over HTTP. Set the fields, call Init, then use it as
// an http.Handler.
type Server struct {
	Files *files.Service
	DB    *metadata.DB
	Blobs storage.Store
	Auth  auth.Authenticator
	// Identity, if set, signs users in (provisioning, group refresh, rate
	// limits, audit, app passwords, API tokens) and serves /me and /admin.
	Identity *identity.Service
	Logger   *slog.Logger
	// DAV, if set, serves WebDAV and the sync-client endpoints.
	DAV http.Handler
	// Web, if set, serves the browser UI at /.
	Web  http.Handler
	Opts Options

	// Stopping is closed when the server begins to shut down, so that
	// long-polls return at once instead of holding the shutdown up.
	Stopping <-chan struct{}

	router   *mux.Router
	sessions *sessions
	basic    *basicCache
	metrics  *metrics
	registry *prometheus.Registry
	names    *userNames
}

// Init builds the router. It must be called once before serving.
func (s *Server) Init() {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Stopping == nil {
		s.Stopping = make(chan struct{})
	}
	if s.Opts.SessionIdle == 0 {
		s.Opts.SessionIdle = 24 * time.Hour
	}
	if s.Opts.SessionMaxAge == 0 {
		s.Opts.SessionMaxAge = 30 * 24 * time.Hour
	}
	s.registry = prometheus.NewRegistry()
	s.metrics = newMetrics(s.registry)
	s.sessions = newSessions(s.DB, s.Opts)
	s.basic = newBasicCache()
	s.names = &userNames{db: s.DB}
	if s.Identity == nil {
		s.Identity = identity.New(s.DB, s.Auth, nil, s.Logger)
	}

	r := mux.NewRouter()
	// Everything the router does not know goes to the browser UI, except
	// under /api/. (The UI is not a PathPrefix("/") route because such a
	// route would also swallow wrong-method API requests that must get 405.)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Web != nil && !strings.HasPrefix(r.URL.Path, "/api/") {
			s.Web.ServeHTTP(w, r)
			return
		}
		s.error(w, r, &files.Error{Code: files.CodeNotFound, Message: "No such endpoint."})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "This endpoint does not support "+r.Method+".")
	})
	r.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metricsHandler()).Methods(http.MethodGet)

	s.registerAPI(prefixed{r, "/api/v1"})

	if s.DAV != nil {
		dav := s.withUser(s.DAV)
		r.PathPrefix("/remote.php/").Handler(dav)
		r.PathPrefix("/ocs/").Handler(dav)
		r.Handle("/status.php", dav)
	}
	s.router = r
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(s.router).ServeHTTP(w, r)
}

// Router returns the router, for tests that walk the routes.
func (s *Server) Router() *mux.Router { return s.router }

type ctxKey int

const (
	userKey ctxKey = iota
	sessionKey
	requestIDKey
	scopesKey
)

// UserFrom returns the authenticated user of a request, or nil.
func UserFrom(r *http.Request) *files.User {
	u, _ := r.Context().Value(userKey).(*files.User)
	return u
}

func withValue(r *http.Request, k ctxKey, v any) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), k, v))
}
