package metadata

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// User is an account. Local users have a password hash; directory users
// (issue: identity) are provisioned at first login and have none.
type User struct {
	ID           string
	Username     string
	DisplayName  string
	Email        string
	Provider     string
	PasswordHash string
	IsAdmin      bool
	Disabled     bool
	// DisabledBy says who disabled the account: DisabledByAdmin or
	// DisabledByDirectory; empty while enabled.
	DisabledBy string
	// QuotaBytes overrides the default quota of the user's personal
	// space; nil means the default.
	QuotaBytes *int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const userCols = `id, username, display_name, email, provider, password_hash, is_admin, disabled, disabled_by, quota_bytes, created_at, updated_at`

// Who disabled an account (User.DisabledBy).
const (
	DisabledByAdmin     = "admin"
	DisabledByDirectory = "directory"
)

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	var quota sql.NullInt64
	var created, updated int64
	if err := sc.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.Provider, &u.PasswordHash,
		&u.IsAdmin, &u.Disabled, &u.DisabledBy, &quota, &created, &updated); err != nil {
		return nil, err
	}
	if quota.Valid {
		u.QuotaBytes = &quota.Int64
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// CreateUser inserts u, filling in its ID and times, and creates its
// personal space. It returns ErrConflict if the username is taken.
func (q q) CreateUser(ctx context.Context, u *User) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	if u.Provider == "" {
		u.Provider = "local"
	}
	now := q.now()
	u.CreatedAt, u.UpdatedAt = now.UTC(), now.UTC()
	var quota any
	if u.QuotaBytes != nil {
		quota = *u.QuotaBytes
	}
	if u.Disabled && u.DisabledBy == "" {
		u.DisabledBy = DisabledByAdmin
	}
	_, err := q.exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.DisplayName, u.Email, u.Provider, u.PasswordHash, u.IsAdmin, u.Disabled, u.DisabledBy, quota,
		micros(now), micros(now))
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	_, err = q.CreateSpace(ctx, &Space{Kind: SpacePersonal, Name: u.Username, OwnerID: u.ID})
	return err
}

// UserByID returns a user or ErrNotFound.
func (q q) UserByID(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(q.row(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return u, nil
}

// UserByName returns a user or ErrNotFound.
func (q q) UserByName(ctx context.Context, username string) (*User, error) {
	u, err := scanUser(q.row(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return u, nil
}

// Users lists all users ordered by username.
func (q q) Users(ctx context.Context) ([]*User, error) {
	rows, err := q.query(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsers returns the number of users.
func (q q) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := q.row(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// SetPassword replaces a user's password hash.
func (q q) SetPassword(ctx context.Context, userID, hash string) error {
	return q.updateUser(ctx, userID, `password_hash = ?`, hash)
}

// SetDisabled disables a user, recording who did (DisabledByAdmin or
// DisabledByDirectory), or enables one (by is then ignored).
func (q q) SetDisabled(ctx context.Context, userID string, disabled bool, by string) error {
	if !disabled {
		by = ""
	} else if by != DisabledByAdmin && by != DisabledByDirectory {
		return fmt.Errorf("disable user: unknown actor %q", by)
	}
	res, err := q.exec(ctx, `UPDATE users SET disabled = ?, disabled_by = ?, updated_at = ? WHERE id = ?`,
		disabled, by, micros(q.now()), userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetAdmin grants or revokes admin rights.
func (q q) SetAdmin(ctx context.Context, userID string, admin bool) error {
	return q.updateUser(ctx, userID, `is_admin = ?`, admin)
}

func (q q) updateUser(ctx context.Context, userID, set string, v any) error {
	res, err := q.exec(ctx, `UPDATE users SET `+set+`, updated_at = ? WHERE id = ?`, v, micros(q.now()), userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
