package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/identity"
	"github.com/veloxhq/velox/internal/metadata"
)

// sessionHash is the database ID of the session whose cookie carries token.
func sessionHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// scopeAllows reports whether an API token with scopes may make request
// r: admin routes need admin:read (safe methods) or admin:write, file
// routes files:read or files:write; a token can never manage the
// account's own credentials or sessions.
func scopeAllows(scopes []string, r *http.Request) bool {
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/v1/me/") {
		return false
	}
	area := "files"
	if strings.HasPrefix(p, "/api/v1/admin/") {
		area = "admin"
	}
	want := area + ":write"
	if safeMethod(r.Method) || r.Method == "PROPFIND" {
		want = area + ":read"
	}
	for _, s := range scopes {
		if s == want || (s == area+":write" && want == area+":read") {
			return true
		}
	}
	return false
}

func (s *Server) registerMeAPI(authed authedRouter) {
	authed.HandleFunc("/me/password", s.handleChangePassword).Methods(http.MethodPost)
	authed.HandleFunc("/me/sessions", s.handleMySessions).Methods(http.MethodGet)
	authed.HandleFunc("/me/sessions/{id}", s.handleRevokeMySession).Methods(http.MethodDelete)
	authed.HandleFunc("/me/app-passwords", s.handleAppPasswords).Methods(http.MethodGet)
	authed.HandleFunc("/me/app-passwords", s.handleCreateAppPassword).Methods(http.MethodPost)
	authed.HandleFunc("/me/app-passwords/{id}", s.handleRevokeAppPassword).Methods(http.MethodDelete)
}

func currentSession(r *http.Request) *metadata.Session {
	sess, _ := r.Context().Value(sessionKey).(*metadata.Session)
	return sess
}

func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OldPassword string `json:"old_password"`
		NewPassword string `json:"new_password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	keep := ""
	if sess := currentSession(r); sess != nil {
		keep = sess.ID
	}
	if err := s.Identity.ChangePassword(r.Context(), UserFrom(r), req.OldPassword, req.NewPassword, keep, s.clientIP(r)); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

func (s *Server) handleMySessions(w http.ResponseWriter, r *http.Request) {
	list, err := s.DB.UserSessions(r.Context(), UserFrom(r).ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	cur := currentSession(r)
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionJSON{ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt,
			IP: x.RemoteAddr, UserAgent: x.UserAgent, Current: cur != nil && cur.ID == x.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) handleRevokeMySession(w http.ResponseWriter, r *http.Request) {
	if err := s.DB.DeleteUserSession(r.Context(), UserFrom(r).ID, mux.Vars(r)["id"]); err != nil {
		if err == metadata.ErrNotFound {
			err = &files.Error{Code: files.CodeNotFound, Message: "No such session."}
		}
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type appPasswordJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	// Password is only in the response that creates it.
	Password string `json:"password,omitempty"`
}

func appPasswordOut(p *metadata.AppPassword) appPasswordJSON {
	j := appPasswordJSON{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt}
	if !p.LastUsedAt.IsZero() {
		t := p.LastUsedAt
		j.LastUsedAt = &t
	}
	return j
}

func (s *Server) handleAppPasswords(w http.ResponseWriter, r *http.Request) {
	list, err := s.DB.AppPasswords(r.Context(), UserFrom(r).ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]appPasswordJSON, 0, len(list))
	for _, p := range list {
		out = append(out, appPasswordOut(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"app_passwords": out})
}

func (s *Server) handleCreateAppPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	p, secret, err := s.Identity.CreateAppPassword(r.Context(), UserFrom(r), req.Name, s.clientIP(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	j := appPasswordOut(p)
	j.Password = secret
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) handleRevokeAppPassword(w http.ResponseWriter, r *http.Request) {
	if err := s.Identity.RevokeAppPassword(r.Context(), UserFrom(r), mux.Vars(r)["id"], s.clientIP(r)); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// actor is the admin making a request, for the audit log.
func (s *Server) actor(r *http.Request) identity.Actor {
	return identity.Actor{User: UserFrom(r), IP: s.clientIP(r)}
}
