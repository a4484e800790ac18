// Package identity owns who the users are and what they may do outside
// the file tree: signing in through the configured providers (with
// provisioning, group refresh, rate limiting and auditing), the periodic
// directory sync, app passwords, API tokens, and the administration of
// users, groups and team spaces. The HTTP handlers in package server stay
// thin on top of it.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// Directory is the part of an LDAP provider the sync and the admin API
// use; *ldap.Provider implements it.
type Directory interface {
	Name() string
	ListUsers(ctx context.Context) ([]ldap.DirectoryUser, error)
	Ping(ctx context.Context) error
}

var _ Directory = (*ldap.Provider)(nil)

// Service signs users in and administers identities.
type Service struct {
	DB   *metadata.DB
	Auth auth.Authenticator
	// Directory is the configured LDAP/AD provider, or nil.
	Directory Directory
	Limiter   *Limiter
	Logger    *slog.Logger

	syncMu   sync.Mutex
	lastSync *SyncResult
}

// New returns a Service; dir may be nil. Its Limiter keeps account
// failure counts in db, shared with the other app nodes.
func New(db *metadata.DB, a auth.Authenticator, dir Directory, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	l := NewLimiter()
	if db != nil {
		l.Accounts = db
	}
	l.Logger = logger
	return &Service{DB: db, Auth: a, Directory: dir, Limiter: l, Logger: logger}
}

// RateLimitedError is returned when too many attempts failed recently.
type RateLimitedError struct{ Wait time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many failed sign-in attempts; try again in %s", e.Wait.Round(time.Second))
}

// RetryAfter is how long the client should wait.
func (e *RateLimitedError) RetryAfter() time.Duration { return e.Wait }

// Prefixes make secrets recognisable (for people, and for secret
// scanners) and let Login tell an app password from a directory password
// without a database lookup.
const (
	AppPasswordPrefix = "vxa_"
	TokenPrefix       = "vxt_"
)

// LoginRequest is one sign-in attempt.
type LoginRequest struct {
	Username, Password string
	IP, UserAgent      string
	// AllowAppPassword accepts app passwords (HTTP Basic from clients);
	// the browser login takes only the account password.
	AllowAppPassword bool
	// Method is recorded in the audit log: "password" or "basic".
	Method string
}

// Login verifies credentials and returns the Velox user, provisioning a
// directory user on first login and refreshing their groups every time.
// Errors are the auth sentinels (wrapped) or *RateLimitedError.
func (s *Service) Login(ctx context.Context, req LoginRequest) (*metadata.User, error) {
	if wait := s.Limiter.Wait(ctx, req.Username, req.IP); wait > 0 {
		s.audit(ctx, metadata.AuditEvent{Actor: req.Username, Action: "login", IP: req.IP, Outcome: "rate_limited",
			Details: details("method", req.Method)})
		return nil, &RateLimitedError{Wait: wait}
	}
	if req.AllowAppPassword && strings.HasPrefix(req.Password, AppPasswordPrefix) {
		return s.appPasswordLogin(ctx, req)
	}
	id, err := s.Auth.Authenticate(ctx, req.Username, req.Password)
	var u *metadata.User
	if err == nil {
		u, err = s.provision(ctx, id)
	}
	if err != nil {
		outcome := "failure"
		if errors.Is(err, auth.ErrUnavailable) {
			// Not the user's fault: no backoff for an outage.
			outcome = "unavailable"
		} else {
			s.Limiter.Fail(ctx, req.Username, req.IP)
		}
		provider := ""
		if id != nil {
			provider = id.Provider
		}
		s.audit(ctx, metadata.AuditEvent{Actor: req.Username, Action: "login", IP: req.IP, Provider: provider, Outcome: outcome,
			Details: details("method", req.Method, "reason", reason(err))})
		return nil, err
	}
	s.Limiter.Succeed(ctx, req.Username)
	s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "login", IP: req.IP, Provider: id.Provider, Outcome: "success",
		Details: details("method", req.Method)})
	return u, nil
}

// reason classifies a login failure for the audit log without leaking
// internals.
func reason(err error) string {
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrUnknownUser):
		return "invalid_credentials"
	case errors.Is(err, auth.ErrDisabled):
		return "disabled"
	case errors.Is(err, auth.ErrLocked):
		return "locked"
	case errors.Is(err, auth.ErrUnavailable):
		return "provider_unavailable"
	}
	return "error"
}

// provision finds or creates the user an identity belongs to and copies
// the directory's view of them (names, groups).
func (s *Service) provision(ctx context.Context, id *auth.Identity) (*metadata.User, error) {
	var u *metadata.User
	reenabled := false
	err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		var err error
		u, err = tx.UserByName(ctx, id.Username)
		if errors.Is(err, metadata.ErrNotFound) {
			u = &metadata.User{Username: id.Username, DisplayName: id.DisplayName, Email: id.Email, Provider: id.Provider}
			err = tx.CreateUser(ctx, u)
		}
		if err != nil {
			return err
		}
		if u.Provider != id.Provider {
			// Each username belongs to one provider; a directory entry
			// must not take over a local account of the same name.
			return fmt.Errorf("identity: %q belongs to provider %q, not %q: %w", u.Username, u.Provider, id.Provider, auth.ErrInvalidCredentials)
		}
		if u.Disabled {
			// The directory has just authenticated this user, so an
			// account its sync disabled is enabled again.
			if u.DisabledBy != metadata.DisabledByDirectory || id.Provider == local.Name {
				return auth.ErrDisabled
			}
			if err := tx.SetDisabled(ctx, u.ID, false, ""); err != nil {
				return err
			}
			u.Disabled, u.DisabledBy, reenabled = false, "", true
		}
		if id.Provider == local.Name {
			return nil // local groups are managed in Velox
		}
		if err := tx.SetProfile(ctx, u.ID, id.DisplayName, id.Email); err != nil {
			return err
		}
		return tx.SetUserGroups(ctx, u.ID, id.Provider, id.Groups)
	})
	if err != nil {
		return nil, err
	}
	if reenabled {
		s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "user.enable", Target: u.Username, Provider: u.Provider,
			Outcome: "success", Details: details("reason", "signed in through the directory again")})
	}
	return u, nil
}

func (s *Service) appPasswordLogin(ctx context.Context, req LoginRequest) (*metadata.User, error) {
	fail := func(err error) (*metadata.User, error) {
		s.Limiter.Fail(ctx, req.Username, req.IP)
		s.audit(ctx, metadata.AuditEvent{Actor: req.Username, Action: "login", IP: req.IP, Outcome: "failure",
			Details: details("method", "app_password", "reason", reason(err))})
		return nil, err
	}
	p, err := s.DB.AppPasswordByHash(ctx, hashSecret(req.Password))
	if errors.Is(err, metadata.ErrNotFound) {
		return fail(auth.ErrInvalidCredentials)
	}
	if err != nil {
		return nil, err
	}
	u, err := s.DB.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(u.Username, req.Username) && !(u.Email != "" && strings.EqualFold(u.Email, req.Username)) {
		return fail(auth.ErrInvalidCredentials)
	}
	if u.Disabled {
		return fail(auth.ErrDisabled)
	}
	s.Limiter.Succeed(ctx, req.Username)
	if err := s.DB.TouchAppPassword(ctx, p.ID, s.DB.Now()); err != nil {
		s.Logger.Warn("record app password use", "err", err)
	}
	s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "login", IP: req.IP, Provider: u.Provider, Outcome: "success",
		Details: details("method", "app_password", "app_password", p.Name)})
	return u, nil
}

// newSecret returns prefix + 32 random bytes and the hash to store.
func newSecret(prefix string) (secret, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

// hashSecret is SHA-256: the secrets are 256-bit random, so a slow
// password hash would add cost and no safety.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateAppPassword makes a named app password for u and returns the
// secret, which is shown once and never stored.
func (s *Service) CreateAppPassword(ctx context.Context, u *metadata.User, name, ip string) (*metadata.AppPassword, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, "", invalid("Give the app password a name of 1 to 100 characters.")
	}
	secret, hash := newSecret(AppPasswordPrefix)
	p := &metadata.AppPassword{UserID: u.ID, Name: name, SecretHash: hash}
	if err := s.DB.CreateAppPassword(ctx, p); err != nil {
		return nil, "", err
	}
	s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "app_password.create", Target: name, IP: ip, Outcome: "success"})
	return p, secret, nil
}

// RevokeAppPassword deletes one of u's app passwords.
func (s *Service) RevokeAppPassword(ctx context.Context, u *metadata.User, id, ip string) error {
	if err := s.DB.DeleteAppPassword(ctx, u.ID, id); err != nil {
		return notFound(err, "No such app password.")
	}
	// Cached Basic logins with the revoked password end now.
	s.DB.TouchUser(ctx, u.ID)
	s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "app_password.revoke", Target: id, IP: ip, Outcome: "success"})
	return nil
}

// Scopes an API token may carry.
var Scopes = []string{"files:read", "files:write", "admin:read", "admin:write"}

// CreateToken makes a scoped API token acting as the user named
// username (the creating admin if empty) and returns its secret, shown
// once.
func (s *Service) CreateToken(ctx context.Context, admin *metadata.User, name, username string, scopes []string, ttl time.Duration, ip string) (*metadata.APIToken, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, "", invalid("Give the token a name of 1 to 100 characters.")
	}
	if len(scopes) == 0 {
		return nil, "", invalid("Give the token at least one scope: " + strings.Join(Scopes, ", ") + ".")
	}
	for _, sc := range scopes {
		if !contains(Scopes, sc) {
			return nil, "", invalid(fmt.Sprintf("Unknown scope %q; use %s.", sc, strings.Join(Scopes, ", ")))
		}
	}
	as := admin
	if username != "" && username != admin.Username {
		u, err := s.DB.UserByName(ctx, username)
		if err != nil {
			return nil, "", notFound(err, "No such user.")
		}
		as = u
	}
	if !as.IsAdmin && (contains(scopes, "admin:read") || contains(scopes, "admin:write")) {
		return nil, "", invalid("Admin scopes need a token acting as an administrator.")
	}
	secret, hash := newSecret(TokenPrefix)
	t := &metadata.APIToken{UserID: as.ID, Name: name, Scopes: scopes, SecretHash: hash, CreatedBy: admin.ID}
	if ttl > 0 {
		t.ExpiresAt = s.DB.Now().Add(ttl)
	}
	if err := s.DB.CreateAPIToken(ctx, t); err != nil {
		return nil, "", err
	}
	s.audit(ctx, metadata.AuditEvent{Actor: admin.Username, Action: "token.create", Target: name, IP: ip, Outcome: "success",
		Details: details("as", as.Username, "scopes", strings.Join(scopes, " "))})
	return t, secret, nil
}

// RevokeToken deletes an API token.
func (s *Service) RevokeToken(ctx context.Context, admin *metadata.User, id, ip string) error {
	if err := s.DB.DeleteAPIToken(ctx, id); err != nil {
		return notFound(err, "No such token.")
	}
	s.audit(ctx, metadata.AuditEvent{Actor: admin.Username, Action: "token.revoke", Target: id, IP: ip, Outcome: "success"})
	return nil
}

// TokenUser returns the user and scopes of a bearer token, or
// auth.ErrInvalidCredentials.
func (s *Service) TokenUser(ctx context.Context, secret string) (*metadata.User, []string, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return nil, nil, auth.ErrInvalidCredentials
	}
	t, err := s.DB.APITokenByHash(ctx, hashSecret(secret))
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil, auth.ErrInvalidCredentials
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.DB.Now()
	if !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt) {
		return nil, nil, auth.ErrInvalidCredentials
	}
	u, err := s.DB.UserByID(ctx, t.UserID)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, auth.ErrDisabled
	}
	// At most one write a minute per token.
	if now.Sub(t.LastUsedAt) > time.Minute {
		s.DB.TouchAPIToken(ctx, t.ID, now)
	}
	return u, t.Scopes, nil
}

// ChangePassword sets a local user's password after checking the old
// one, and signs out every other session (keep is the current one).
func (s *Service) ChangePassword(ctx context.Context, u *metadata.User, old, new, keepSession, ip string) error {
	if u.Provider != local.Name {
		return &files.Error{Code: files.CodeForbidden, Message: "Your password is managed by your organisation's directory; change it there."}
	}
	if wait := s.Limiter.Wait(ctx, u.Username, ip); wait > 0 {
		return &RateLimitedError{Wait: wait}
	}
	if !local.VerifyPassword(u.PasswordHash, old) {
		s.Limiter.Fail(ctx, u.Username, ip)
		s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "password.change", IP: ip, Outcome: "failure"})
		return &files.Error{Code: files.CodeInvalidRequest, Message: "The current password is wrong."}
	}
	if err := checkNewPassword(new); err != nil {
		return err
	}
	hash, err := local.HashPassword(new)
	if err != nil {
		return err
	}
	err = s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		if err := tx.SetPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		return tx.DeleteOtherSessions(ctx, u.ID, keepSession)
	})
	if err != nil {
		return err
	}
	s.audit(ctx, metadata.AuditEvent{Actor: u.Username, Action: "password.change", IP: ip, Outcome: "success"})
	return nil
}

func checkNewPassword(p string) error {
	if len(p) < 10 || len(p) > 1024 {
		return invalid("Choose a password of at least 10 characters.")
	}
	return nil
}

func invalid(msg string) error { return &files.Error{Code: files.CodeInvalidRequest, Message: msg} }

func notFound(err error, msg string) error {
	if errors.Is(err, metadata.ErrNotFound) {
		return &files.Error{Code: files.CodeNotFound, Message: msg}
	}
	return err
}

// audit records an event; a failure to record is logged, not returned,
// so an audit problem never blocks a login.
func (s *Service) audit(ctx context.Context, e metadata.AuditEvent) {
	if err := s.DB.InsertAudit(context.WithoutCancel(ctx), &e); err != nil {
		s.Logger.Error("audit log write failed", "action", e.Action, "actor", e.Actor, "err", err)
	}
}

// Audit records an event from outside the package (logouts).
func (s *Service) Audit(ctx context.Context, e metadata.AuditEvent) { s.audit(ctx, e) }

// details encodes key/value pairs as a JSON object.
func details(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
