package metadata

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// AppPassword is a named secret a user made for a sync client or script.
// Only the SHA-256 of the secret is stored.
type AppPassword struct {
	ID         string
	UserID     string
	Name       string
	SecretHash string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero if never used
}

// CreateAppPassword inserts p, filling in its ID and time.
func (q q) CreateAppPassword(ctx context.Context, p *AppPassword) error {
	if p.ID == "" {
		p.ID = NewID()
	}
	now := q.now()
	p.CreatedAt = now.UTC()
	_, err := q.exec(ctx, `INSERT INTO app_passwords (id, user_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		p.ID, p.UserID, p.Name, p.SecretHash, micros(now))
	return err
}

const appPasswordCols = `id, user_id, name, secret_hash, created_at, last_used_at`

func scanAppPassword(sc interface{ Scan(...any) error }) (*AppPassword, error) {
	var p AppPassword
	var created int64
	var used sql.NullInt64
	if err := sc.Scan(&p.ID, &p.UserID, &p.Name, &p.SecretHash, &created, &used); err != nil {
		return nil, err
	}
	p.CreatedAt, p.LastUsedAt = fromMicros(created), nullTime(used)
	return &p, nil
}

// AppPasswordByHash returns the app password with that secret hash, or
// ErrNotFound.
func (q q) AppPasswordByHash(ctx context.Context, hash string) (*AppPassword, error) {
	p, err := scanAppPassword(q.row(ctx, `SELECT `+appPasswordCols+` FROM app_passwords WHERE secret_hash = ?`, hash))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return p, nil
}

// AppPasswords lists a user's app passwords, newest first.
func (q q) AppPasswords(ctx context.Context, userID string) ([]*AppPassword, error) {
	rows, err := q.query(ctx, `SELECT `+appPasswordCols+` FROM app_passwords WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*AppPassword
	for rows.Next() {
		p, err := scanAppPassword(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteAppPassword revokes one of a user's app passwords.
func (q q) DeleteAppPassword(ctx context.Context, userID, id string) error {
	res, err := q.exec(ctx, `DELETE FROM app_passwords WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchAppPassword records a use.
func (q q) TouchAppPassword(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE app_passwords SET last_used_at = ? WHERE id = ?`, micros(at), id)
	return err
}

// APIToken is a scoped bearer token for automation, acting as UserID.
type APIToken struct {
	ID         string
	UserID     string
	Name       string
	Scopes     []string
	SecretHash string
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time
}

const apiTokenCols = `id, user_id, name, scopes, secret_hash, created_by, created_at, expires_at, last_used_at`

func scanAPIToken(sc interface{ Scan(...any) error }) (*APIToken, error) {
	var t APIToken
	var scopes string
	var created int64
	var expires, used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.UserID, &t.Name, &scopes, &t.SecretHash, &t.CreatedBy, &created, &expires, &used); err != nil {
		return nil, err
	}
	t.Scopes = strings.Fields(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromMicros(created), nullTime(expires), nullTime(used)
	return &t, nil
}

// CreateAPIToken inserts t, filling in its ID and time.
func (q q) CreateAPIToken(ctx context.Context, t *APIToken) error {
	if t.ID == "" {
		t.ID = NewID()
	}
	now := q.now()
	t.CreatedAt = now.UTC()
	var expires any
	if !t.ExpiresAt.IsZero() {
		expires = micros(t.ExpiresAt)
	}
	_, err := q.exec(ctx, `INSERT INTO api_tokens (id, user_id, name, scopes, secret_hash, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, t.UserID, t.Name, strings.Join(t.Scopes, " "), t.SecretHash, t.CreatedBy, micros(now), expires)
	return err
}

// APITokenByHash returns a token or ErrNotFound.
func (q q) APITokenByHash(ctx context.Context, hash string) (*APIToken, error) {
	t, err := scanAPIToken(q.row(ctx, `SELECT `+apiTokenCols+` FROM api_tokens WHERE secret_hash = ?`, hash))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return t, nil
}

// APITokens lists all tokens, newest first.
func (q q) APITokens(ctx context.Context) ([]*APIToken, error) {
	rows, err := q.query(ctx, `SELECT `+apiTokenCols+` FROM api_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteAPIToken revokes a token.
func (q q) DeleteAPIToken(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchAPIToken records a use.
func (q q) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, micros(at), id)
	return err
}

// UserSessions lists a user's sessions, most recently used first.
func (q q) UserSessions(ctx context.Context, userID string) ([]*Session, error) {
	rows, err := q.query(ctx, `SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at, remote_addr, user_agent
		FROM sessions WHERE user_id = ? ORDER BY last_seen_at DESC, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		var s Session
		var created, seen, expires int64
		if err := rows.Scan(&s.ID, &s.UserID, &s.CSRFToken, &created, &seen, &expires, &s.RemoteAddr, &s.UserAgent); err != nil {
			return nil, err
		}
		s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
		out = append(out, &s)
	}
	return out, rows.Err()
}

// DeleteUserSession signs out one session of a user; ErrNotFound if the
// user has no such session.
func (q q) DeleteUserSession(ctx context.Context, userID, id string) error {
	res, err := q.exec(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteOtherSessions signs a user out everywhere except session keep.
func (q q) DeleteOtherSessions(ctx context.Context, userID, keep string) error {
	_, err := q.exec(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keep)
	return err
}
