package metadata

import (
	"context"
	"database/sql"
	"errors"
)

// TeamSpaces lists all team spaces by name.
func (q q) TeamSpaces(ctx context.Context) ([]*Space, error) {
	rows, err := q.query(ctx, `SELECT `+spaceCols+` FROM spaces WHERE kind = ? ORDER BY name, id`, SpaceTeam)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Space
	for rows.Next() {
		s, err := scanSpace(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RenameSpace renames a space.
func (q q) RenameSpace(ctx context.Context, id, name string) error {
	return q.updateSpace(ctx, id, `name = ?`, name)
}

// SetSpaceQuota sets a space's quota; nil means the default.
func (q q) SetSpaceQuota(ctx context.Context, id string, quota *int64) error {
	var v any
	if quota != nil {
		v = *quota
	}
	return q.updateSpace(ctx, id, `quota_bytes = ?`, v)
}

func (q q) updateSpace(ctx context.Context, id, set string, v any) error {
	res, err := q.exec(ctx, `UPDATE spaces SET `+set+` WHERE id = ?`, v, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SpaceUsage returns the bytes of live files in a space: its root
// folder's size, which every write keeps up to date.
func (q q) SpaceUsage(ctx context.Context, spaceID string) (int64, error) {
	var n int64
	err := q.row(ctx, `SELECT n.size FROM spaces s JOIN nodes n ON n.id = s.root_id WHERE s.id = ?`, spaceID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return n, q.d.translate(err)
}

// SetUserQuota overrides the personal-space quota of a user; nil means
// the configured default.
func (q q) SetUserQuota(ctx context.Context, userID string, quota *int64) error {
	var v any
	if quota != nil {
		v = *quota
	}
	return q.updateUser(ctx, userID, `quota_bytes = ?`, v)
}

// SetProfile updates the names a directory reports for a user.
func (q q) SetProfile(ctx context.Context, userID, displayName, email string) error {
	_, err := q.exec(ctx, `UPDATE users SET display_name = ?, email = ?, updated_at = ?
		WHERE id = ? AND (display_name <> ? OR email <> ?)`, displayName, email, micros(q.now()), userID, displayName, email)
	return err
}

// TouchUser bumps a user's updated_at, which invalidates cached HTTP
// Basic logins of that user.
func (q q) TouchUser(ctx context.Context, userID string) error {
	res, err := q.exec(ctx, `UPDATE users SET updated_at = ? WHERE id = ?`, micros(q.now()), userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UsersByProvider lists the users of one provider.
func (q q) UsersByProvider(ctx context.Context, provider string) ([]*User, error) {
	rows, err := q.query(ctx, `SELECT `+userCols+` FROM users WHERE provider = ? ORDER BY username`, provider)
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

// DeleteEmptySpace deletes a space that holds nothing but its root folder
// (no live or trashed items), with its links and journal. It returns
// ErrConflict if anything else is in it and ErrNotFound if there is no
// such space. Run it in a transaction.
func (q q) DeleteEmptySpace(ctx context.Context, id string) error {
	sp, err := q.SpaceByID(ctx, id)
	if err != nil {
		return err
	}
	var n int
	if err := q.row(ctx, `SELECT COUNT(*) FROM nodes WHERE space_id = ? AND id <> ?`, id, sp.RootID).Scan(&n); err != nil {
		return q.d.translate(err)
	}
	if n > 0 {
		return ErrConflict
	}
	for _, stmt := range []struct {
		sql string
		arg string
	}{
		{`DELETE FROM group_links WHERE space_id = ?`, id},
		{`DELETE FROM changes WHERE space_id = ?`, id},
		{`DELETE FROM dead_props WHERE node_id = ?`, sp.RootID},
		{`DELETE FROM nodes WHERE id = ?`, sp.RootID},
		{`DELETE FROM spaces WHERE id = ?`, id},
	} {
		if _, err := q.exec(ctx, stmt.sql, stmt.arg); err != nil {
			return err
		}
	}
	return nil
}
