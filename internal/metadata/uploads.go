package metadata

import (
	"context"
	"time"
)

// UploadSession is a resumable upload in progress.
type UploadSession struct {
	ID        string
	UserID    string
	SpaceID   string
	ParentID  string
	Name      string
	NodeID    string // set when the upload is a new version of this file
	Size      int64
	ChunkSize int64
	SHA256    string
	Conflict  string
	IfMatch   string
	MTime     time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	// HashedUpto is how many leading bytes HashState covers.
	HashedUpto int64
	HashState  []byte
}

const uploadCols = `id, user_id, space_id, parent_id, name, node_id, size, chunk_size, sha256, conflict, if_match, mtime,
	created_at, expires_at, hashed_upto, hash_state`

// CreateUploadSession records a new session.
func (q q) CreateUploadSession(ctx context.Context, u *UploadSession) error {
	var mtime int64
	if !u.MTime.IsZero() {
		mtime = micros(u.MTime)
	}
	_, err := q.exec(ctx, `INSERT INTO upload_sessions (`+uploadCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.UserID, u.SpaceID, u.ParentID, u.Name, u.NodeID, u.Size, u.ChunkSize, u.SHA256, u.Conflict, u.IfMatch, mtime,
		micros(u.CreatedAt), micros(u.ExpiresAt), u.HashedUpto, u.HashState)
	return err
}

func scanUpload(sc interface{ Scan(...any) error }) (*UploadSession, error) {
	var u UploadSession
	var mtime, created, expires int64
	if err := sc.Scan(&u.ID, &u.UserID, &u.SpaceID, &u.ParentID, &u.Name, &u.NodeID, &u.Size, &u.ChunkSize, &u.SHA256,
		&u.Conflict, &u.IfMatch, &mtime, &created, &expires, &u.HashedUpto, &u.HashState); err != nil {
		return nil, err
	}
	if mtime != 0 {
		u.MTime = fromMicros(mtime)
	}
	u.CreatedAt, u.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &u, nil
}

// UploadSessionByID returns a session or ErrNotFound.
func (q q) UploadSessionByID(ctx context.Context, id string) (*UploadSession, error) {
	u, err := scanUpload(q.row(ctx, `SELECT `+uploadCols+` FROM upload_sessions WHERE id = ?`, id))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return u, nil
}

// UploadSessions lists a user's sessions, newest first.
func (q q) UploadSessions(ctx context.Context, userID string) ([]*UploadSession, error) {
	return q.uploadList(ctx, `SELECT `+uploadCols+` FROM upload_sessions WHERE user_id = ? ORDER BY created_at DESC`, userID)
}

// ExpiredUploadSessions lists up to limit sessions that expired before now.
func (q q) ExpiredUploadSessions(ctx context.Context, now time.Time, limit int) ([]*UploadSession, error) {
	return q.uploadList(ctx, `SELECT `+uploadCols+` FROM upload_sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?`, micros(now), limit)
}

func (q q) uploadList(ctx context.Context, query string, args ...any) ([]*UploadSession, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*UploadSession
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// RecordChunk notes that a chunk is stored (again, after a retry).
func (q q) RecordChunk(ctx context.Context, sessionID string, idx int, size int64) error {
	_, err := q.exec(ctx, `INSERT INTO upload_chunks (session_id, idx, size) VALUES (?, ?, ?)
		ON CONFLICT (session_id, idx) DO UPDATE SET size = excluded.size`, sessionID, idx, size)
	return err
}

// Chunks returns the sizes of a session's stored chunks by index.
func (q q) Chunks(ctx context.Context, sessionID string) (map[int]int64, error) {
	rows, err := q.query(ctx, `SELECT idx, size FROM upload_chunks WHERE session_id = ?`, sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var i int
		var n int64
		if err := rows.Scan(&i, &n); err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, rows.Err()
}

// ChunkCount returns how many chunks of a session are stored.
func (q q) ChunkCount(ctx context.Context, sessionID string) (int, error) {
	var n int
	err := q.row(ctx, `SELECT COUNT(*) FROM upload_chunks WHERE session_id = ?`, sessionID).Scan(&n)
	return n, err
}

// AdvanceHash stores a hash state covering upto bytes, if the stored state
// still covers exactly from bytes (another chunk may have advanced it).
func (q q) AdvanceHash(ctx context.Context, sessionID string, from, upto int64, state []byte) (bool, error) {
	res, err := q.exec(ctx, `UPDATE upload_sessions SET hashed_upto = ?, hash_state = ? WHERE id = ? AND hashed_upto = ?`,
		upto, state, sessionID, from)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// DeleteUploadSession removes a session and its chunk records.
func (q q) DeleteUploadSession(ctx context.Context, id string) error {
	if _, err := q.exec(ctx, `DELETE FROM upload_chunks WHERE session_id = ?`, id); err != nil {
		return err
	}
	_, err := q.exec(ctx, `DELETE FROM upload_sessions WHERE id = ?`, id)
	return err
}
