package metadata

import (
	"context"
	"database/sql"
	"time"
)

// Space kinds.
const (
	SpacePersonal = "personal"
	SpaceTeam     = "team"
)

// Space is a tree of files with its own root: a user's personal space or
// a team space.
type Space struct {
	ID         string
	Kind       string
	Name       string
	OwnerID    string
	RootID     string
	QuotaBytes *int64
	CreatedAt  time.Time
}

const spaceCols = `id, kind, name, owner_id, root_id, quota_bytes, created_at`

func scanSpace(sc interface{ Scan(...any) error }) (*Space, error) {
	var s Space
	var owner sql.NullString
	var quota sql.NullInt64
	var created int64
	if err := sc.Scan(&s.ID, &s.Kind, &s.Name, &owner, &s.RootID, &quota, &created); err != nil {
		return nil, err
	}
	s.OwnerID = owner.String
	if quota.Valid {
		s.QuotaBytes = &quota.Int64
	}
	s.CreatedAt = fromMicros(created)
	return &s, nil
}

// CreateSpace inserts a space and its root folder.
func (q q) CreateSpace(ctx context.Context, s *Space) (*Space, error) {
	if s.ID == "" {
		s.ID = NewID()
	}
	now := q.now()
	s.CreatedAt = now.UTC()
	root := &Node{ID: NewID(), SpaceID: s.ID, Kind: KindFolder, MTime: now}
	s.RootID = root.ID
	var quota any
	if s.QuotaBytes != nil {
		quota = *s.QuotaBytes
	}
	if _, err := q.exec(ctx, `INSERT INTO spaces (`+spaceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Kind, s.Name, nullString(s.OwnerID), s.RootID, quota, micros(now)); err != nil {
		return nil, err
	}
	if err := q.InsertNode(ctx, root); err != nil {
		return nil, err
	}
	return s, nil
}

// SpaceByID returns a space or ErrNotFound.
func (q q) SpaceByID(ctx context.Context, id string) (*Space, error) {
	s, err := scanSpace(q.row(ctx, `SELECT `+spaceCols+` FROM spaces WHERE id = ?`, id))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return s, nil
}

// PersonalSpace returns the personal space of a user.
func (q q) PersonalSpace(ctx context.Context, userID string) (*Space, error) {
	s, err := scanSpace(q.row(ctx, `SELECT `+spaceCols+` FROM spaces WHERE owner_id = ? AND kind = ?`, userID, SpacePersonal))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return s, nil
}

// SpacesOwnedBy lists the spaces a user owns.
func (q q) SpacesOwnedBy(ctx context.Context, userID string) ([]*Space, error) {
	rows, err := q.query(ctx, `SELECT `+spaceCols+` FROM spaces WHERE owner_id = ? ORDER BY kind, name`, userID)
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
