package metadata

import (
	"context"
	"time"
)

// Session is a signed-in browser. Its ID is stored only as a hash-like
// random value referenced by the signed cookie; deleting the row signs the
// browser out at once.
type Session struct {
	ID         string
	UserID     string
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	RemoteAddr string
	UserAgent  string
}

// CreateSession records a session.
func (q q) CreateSession(ctx context.Context, s *Session) error {
	_, err := q.exec(ctx, `INSERT INTO sessions (id, user_id, csrf_token, created_at, last_seen_at, expires_at, remote_addr, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.ID, s.UserID, s.CSRFToken, micros(s.CreatedAt), micros(s.LastSeenAt),
		micros(s.ExpiresAt), s.RemoteAddr, s.UserAgent)
	return err
}

// SessionByID returns a session or ErrNotFound.
func (q q) SessionByID(ctx context.Context, id string) (*Session, error) {
	var s Session
	var created, seen, expires int64
	err := q.row(ctx, `SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at, remote_addr, user_agent
		FROM sessions WHERE id = ?`, id).Scan(&s.ID, &s.UserID, &s.CSRFToken, &created, &seen, &expires, &s.RemoteAddr, &s.UserAgent)
	if err != nil {
		return nil, q.scanErr(err)
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return &s, nil
}

// TouchSession records activity on a session.
func (q q) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, micros(at), id)
	return err
}

// DeleteSession signs one session out.
func (q q) DeleteSession(ctx context.Context, id string) error {
	_, err := q.exec(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	return err
}

// DeleteUserSessions signs a user out everywhere.
func (q q) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := q.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return err
}

// DeleteExpiredSessions removes sessions past their expiry.
func (q q) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := q.exec(ctx, `DELETE FROM sessions WHERE expires_at < ?`, micros(now))
	return err
}
