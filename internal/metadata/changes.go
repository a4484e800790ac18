package metadata

import (
	"context"
	"time"
)

// Change operations recorded in the journal.
const (
	OpCreate  = "create"
	OpModify  = "modify"
	OpMove    = "move"
	OpDelete  = "delete"
	OpRestore = "restore"
	OpPurge   = "purge"
)

// Change is one entry of the append-only change journal. A sync cursor is
// a Seq.
type Change struct {
	Seq       int64
	SpaceID   string
	NodeID    string
	Op        string
	CreatedAt time.Time
}

// AppendChange adds an entry to the journal and returns its sequence number.
func (q q) AppendChange(ctx context.Context, spaceID, nodeID, op string) (int64, error) {
	var seq int64
	err := q.row(ctx, `INSERT INTO changes (space_id, node_id, op, created_at) VALUES (?, ?, ?, ?) RETURNING seq`,
		spaceID, nodeID, op, micros(q.now())).Scan(&seq)
	return seq, q.d.translate(err)
}

// ChangesSince returns up to limit changes of a space after seq, oldest
// first.
func (q q) ChangesSince(ctx context.Context, spaceID string, seq int64, limit int) ([]*Change, error) {
	rows, err := q.query(ctx, `SELECT seq, space_id, node_id, op, created_at FROM changes
		WHERE space_id = ? AND seq > ? ORDER BY seq LIMIT ?`, spaceID, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Change
	for rows.Next() {
		var c Change
		var at int64
		if err := rows.Scan(&c.Seq, &c.SpaceID, &c.NodeID, &c.Op, &at); err != nil {
			return nil, err
		}
		c.CreatedAt = fromMicros(at)
		out = append(out, &c)
	}
	return out, rows.Err()
}

// LatestChange returns the newest sequence number of a space, or 0.
func (q q) LatestChange(ctx context.Context, spaceID string) (int64, error) {
	var seq int64
	err := q.row(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes WHERE space_id = ?`, spaceID).Scan(&seq)
	return seq, q.d.translate(err)
}
