package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gsessions "github.com/gorilla/sessions"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/identity"
	"github.com/veloxhq/velox/internal/metadata"
)

const cookieName = "velox_session"

// sessions keeps browser sessions: the signed, encrypted cookie carries
// only a session ID; the row in the database is the truth, so deleting it
// signs the browser out at once (logout, password change, disabled user).
type sessions struct {
	db     *metadata.DB
	store  *gsessions.CookieStore
	opts   Options
	mu     sync.Mutex
	lastDB map[string]time.Time // when last_seen_at was last written, per session
}

func newSessions(db *metadata.DB, opts Options) *sessions {
	keys := opts.SessionKeys
	if len(keys) == 0 {
		// Tests and embedded use without a key file: a fresh key per
		// process, which only means sessions do not survive a restart.
		keys = [][]byte{randomBytes(32), randomBytes(32)}
	}
	st := gsessions.NewCookieStore(keys...)
	st.MaxAge(int(opts.SessionMaxAge / time.Second))
	return &sessions{db: db, store: st, opts: opts, lastDB: map[string]time.Time{}}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// secure decides the cookie's Secure flag for this request.
func (s *Server) secure(r *http.Request) bool {
	switch s.Opts.CookieSecure {
	case "always":
		return true
	case "never":
		return false
	}
	return r.TLS != nil || (s.trustedPeer(r) && r.Header.Get("X-Forwarded-Proto") == "https")
}

// startSession creates a session for u and sets its cookie. A fresh ID
// every time prevents session fixation.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *files.User) (*metadata.Session, error) {
	now := s.DB.Now()
	// The cookie carries a random token; the database keeps only its
	// hash, so neither a database reader nor the session list API can
	// forge a cookie from what they see.
	token := randomToken()
	sess := &metadata.Session{ID: sessionHash(token), UserID: u.ID, CSRFToken: randomToken(), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(s.Opts.SessionMaxAge), RemoteAddr: s.clientIP(r), UserAgent: truncate(r.UserAgent(), 200)}
	if old := s.sessionFromCookie(r); old != nil {
		s.DB.DeleteSession(r.Context(), old.ID)
	}
	if err := s.DB.CreateSession(r.Context(), sess); err != nil {
		return nil, err
	}
	cs := gsessions.NewSession(s.sessions.store, cookieName)
	cs.Values["sid"] = token
	cs.Options = s.cookieOptions(r, int(s.Opts.SessionMaxAge/time.Second))
	if err := s.sessions.store.Save(r, w, cs); err != nil {
		return nil, err
	}
	return sess, nil
}

func (s *Server) cookieOptions(r *http.Request, maxAge int) *gsessions.Options {
	return &gsessions.Options{Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode}
}

// sessionFromCookie returns the live session named by the request's
// cookie, or nil.
func (s *Server) sessionFromCookie(r *http.Request) *metadata.Session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	cs := gsessions.NewSession(s.sessions.store, cookieName)
	if err := decodeCookie(s.sessions.store, c.Value, &cs.Values); err != nil {
		return nil
	}
	token, _ := cs.Values["sid"].(string)
	if token == "" {
		return nil
	}
	sid := sessionHash(token)
	sess, err := s.DB.SessionByID(r.Context(), sid)
	if err != nil {
		return nil
	}
	now := s.DB.Now()
	if now.After(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) > s.Opts.SessionIdle {
		s.DB.DeleteSession(r.Context(), sid)
		return nil
	}
	// Write last-seen at most once a minute per session, not per request.
	s.sessions.mu.Lock()
	last := s.sessions.lastDB[sid]
	if now.Sub(last) > time.Minute {
		s.sessions.lastDB[sid] = now
		s.sessions.mu.Unlock()
		s.DB.TouchSession(r.Context(), sid, now)
	} else {
		s.sessions.mu.Unlock()
	}
	return sess
}

func decodeCookie(st *gsessions.CookieStore, value string, dst *map[any]any) error {
	for _, codec := range st.Codecs {
		if err := codec.Decode(cookieName, value, dst); err == nil {
			return nil
		}
	}
	return errors.New("invalid session cookie")
}

// basicCache remembers successful HTTP Basic logins for a short while.
// Sync clients send credentials with every request, and a password hash
// check per request would cost more than the request itself.
type basicCache struct {
	mu      sync.Mutex
	entries map[[32]byte]basicEntry
}

type basicEntry struct {
	userID  string
	expires time.Time
	at      time.Time
}

func newBasicCache() *basicCache { return &basicCache{entries: map[[32]byte]basicEntry{}} }

const basicCacheTTL = 2 * time.Minute

func basicKey(user, pass string) [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("%d:%s:%s", len(user), user, pass)))
}

// userFromBasic authenticates HTTP Basic credentials.
func (s *Server) userFromBasic(r *http.Request, username, password string) (*files.User, error) {
	key := basicKey(username, password)
	now := time.Now()
	s.basic.mu.Lock()
	e, ok := s.basic.entries[key]
	s.basic.mu.Unlock()
	if ok && now.Before(e.expires) {
		u, err := s.DB.UserByID(r.Context(), e.userID)
		// A password change or any account update since the cache entry
		// was made invalidates it.
		if err == nil && !u.Disabled && u.UpdatedAt.Before(e.at) && subtle.ConstantTimeCompare([]byte(u.Username), []byte(username)) == 1 {
			return u, nil
		}
	}
	u, err := s.login(r, username, password, true)
	if err != nil {
		return nil, err
	}
	s.basic.mu.Lock()
	if len(s.basic.entries) > 10000 {
		clear(s.basic.entries) // crude bound; entries are cheap to rebuild
	}
	s.basic.entries[key] = basicEntry{userID: u.ID, expires: now.Add(basicCacheTTL), at: now}
	s.basic.mu.Unlock()
	return u, nil
}

// login verifies credentials through the identity service (providers,
// app passwords for Basic, rate limits, audit) and returns the Velox user.
func (s *Server) login(r *http.Request, username, password string, basic bool) (*files.User, error) {
	method := "password"
	if basic {
		method = "basic"
	}
	u, err := s.Identity.Login(r.Context(), identity.LoginRequest{Username: username, Password: password,
		IP: s.clientIP(r), UserAgent: r.UserAgent(), AllowAppPassword: basic, Method: method})
	if err != nil {
		return nil, loginError(err)
	}
	return u, nil
}

func loginError(err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrUnknownUser):
		return &files.Error{Code: codeUnauthorized, Message: "Wrong username or password."}
	case errors.Is(err, auth.ErrDisabled):
		return &files.Error{Code: files.CodeForbidden, Message: "This account is disabled. Ask an administrator to enable it."}
	case errors.Is(err, auth.ErrLocked):
		return &files.Error{Code: files.CodeForbidden, Message: "This account is locked in the directory. Ask an administrator to unlock it."}
	case errors.Is(err, auth.ErrUnavailable):
		return &files.Error{Code: files.CodeUnavailable, Message: "The directory service cannot be reached, so directory accounts cannot sign in right now (local accounts still can). Try again shortly.", Err: err}
	}
	return err
}

// authenticate finds the user of a request from HTTP Basic credentials or
// the session cookie. It returns (nil, nil, nil) for anonymous requests.
func (s *Server) authenticate(r *http.Request) (*files.User, *metadata.Session, error) {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		u, scopes, err := s.Identity.TokenUser(r.Context(), strings.TrimSpace(h[7:]))
		if err != nil {
			return nil, nil, loginError(err)
		}
		*r = *withValue(r, scopesKey, scopes)
		return u, nil, nil
	}
	if username, password, ok := r.BasicAuth(); ok {
		u, err := s.userFromBasic(r, username, password)
		return u, nil, err
	}
	sess := s.sessionFromCookie(r)
	if sess == nil {
		return nil, nil, nil
	}
	u, err := s.DB.UserByID(r.Context(), sess.UserID)
	if err != nil || u.Disabled {
		s.DB.DeleteSession(r.Context(), sess.ID)
		return nil, nil, nil
	}
	return u, sess, nil
}

// withUser adds the authenticated user (if any) to the request context and
// leaves rejecting anonymous requests to next (WebDAV answers 401 with its
// own challenge).
func (s *Server) withUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, sess, err := s.authenticate(r)
		if err != nil {
			if files.ErrorCode(err) == codeUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="Velox", charset="UTF-8"`)
			}
			s.error(w, r, err)
			return
		}
		if scopes, ok := r.Context().Value(scopesKey).([]string); ok && !scopeAllows(scopes, r) {
			writeError(w, http.StatusForbidden, files.CodeForbidden, "This API token's scopes do not allow this request.")
			return
		}
		if u != nil {
			r = withValue(r, userKey, u)
		}
		if sess != nil {
			r = withValue(r, sessionKey, sess)
		}
		next.ServeHTTP(w, r)
	})
}

// requireUser rejects anonymous requests with 401, and state-changing
// requests authenticated by the session cookie without the session's CSRF
// token (header X-CSRF-Token). HTTP Basic requests need no token: browsers
// never send Basic credentials to the API on their own, because the API
// never asks for them with a WWW-Authenticate challenge.
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, sess, err := s.authenticate(r)
		if err != nil {
			s.error(w, r, err)
			return
		}
		if u == nil {
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "Sign in first.")
			return
		}
		if scopes, ok := r.Context().Value(scopesKey).([]string); ok && !scopeAllows(scopes, r) {
			writeError(w, http.StatusForbidden, files.CodeForbidden, "This API token's scopes do not allow this request.")
			return
		}
		if sess != nil && !safeMethod(r.Method) {
			tok := r.Header.Get("X-CSRF-Token")
			if subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRFToken)) != 1 {
				writeError(w, http.StatusForbidden, "csrf_failed", "The request lacks a valid X-CSRF-Token header; reload the page and try again.")
				return
			}
		}
		r = withValue(r, userKey, u)
		if sess != nil {
			r = withValue(r, sessionKey, sess)
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type meResponse struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrf_token,omitempty"`
}

type userJSON struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
	Provider    string `json:"provider"`
	IsAdmin     bool   `json:"is_admin"`
	Disabled    bool   `json:"disabled"`
	// PersonalSpaceID is the user's own space.
	PersonalSpaceID string `json:"personal_space_id,omitempty"`
}

func (s *Server) userJSON(r *http.Request, u *files.User) userJSON {
	j := userJSON{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Email: u.Email, Provider: u.Provider,
		IsAdmin: u.IsAdmin, Disabled: u.Disabled}
	if sp, err := s.DB.PersonalSpace(r.Context(), u.ID); err == nil {
		j.PersonalSpaceID = sp.ID
	}
	return j
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		s.error(w, r, badRequest("Enter a username and a password."))
		return
	}
	u, err := s.login(r, req.Username, req.Password, false)
	if err != nil {
		s.Logger.Info("login failed", "username", req.Username, "remote", s.clientIP(r), "reason", files.ErrorCode(err))
		s.error(w, r, err)
		return
	}
	sess, err := s.startSession(w, r, u)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.Logger.Info("login", "username", u.Username, "remote", s.clientIP(r))
	writeJSON(w, http.StatusOK, meResponse{User: s.userJSON(r, u), CSRFToken: sess.CSRFToken})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if sess, ok := r.Context().Value(sessionKey).(*metadata.Session); ok {
		if err := s.DB.DeleteSession(r.Context(), sess.ID); err != nil {
			s.error(w, r, err)
			return
		}
	}
	s.Identity.Audit(r.Context(), metadata.AuditEvent{Actor: UserFrom(r).Username, Action: "logout", IP: s.clientIP(r), Outcome: "success"})
	cs := gsessions.NewSession(s.sessions.store, cookieName)
	cs.Options = s.cookieOptions(r, -1)
	s.sessions.store.Save(r, w, cs)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	resp := meResponse{User: s.userJSON(r, UserFrom(r))}
	if sess, ok := r.Context().Value(sessionKey).(*metadata.Session); ok {
		resp.CSRFToken = sess.CSRFToken
	}
	writeJSON(w, http.StatusOK, resp)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// userNames caches user ID → username for "modified by" columns.
type userNames struct {
	db *metadata.DB
	mu sync.Mutex
	m  map[string]string
}

func (c *userNames) name(r *http.Request, id string) string {
	if id == "" {
		return ""
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	n, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return n
	}
	u, err := c.db.UserByID(r.Context(), id)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	c.m[id] = u.Username
	c.mu.Unlock()
	return u.Username
}
