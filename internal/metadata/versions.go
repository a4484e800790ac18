package metadata

import (
	"context"
	"time"
)

// Version is one upload of a file's contents.
type Version struct {
	ID        string
	NodeID    string
	BlobID    string
	Size      int64
	SHA256    string
	MTime     time.Time
	CreatedAt time.Time
	CreatedBy string
}

// Blob is an immutable stored object.
type Blob struct {
	ID        string
	Size      int64
	SHA256    string
	CreatedAt time.Time
}

// InsertBlob records a blob whose contents are fully stored.
func (q q) InsertBlob(ctx context.Context, b *Blob) error {
	b.CreatedAt = q.now().UTC()
	_, err := q.exec(ctx, `INSERT INTO blobs (id, size, sha256, created_at) VALUES (?, ?, ?, ?)`,
		b.ID, b.Size, b.SHA256, micros(b.CreatedAt))
	return err
}

// BlobExists reports whether a blob row exists.
func (q q) BlobExists(ctx context.Context, id string) (bool, error) {
	var n int
	err := q.row(ctx, `SELECT COUNT(*) FROM blobs WHERE id = ?`, id).Scan(&n)
	return n > 0, q.d.translate(err)
}

// InsertVersion records a version.
func (q q) InsertVersion(ctx context.Context, v *Version) error {
	if v.ID == "" {
		v.ID = NewID()
	}
	v.CreatedAt = q.now().UTC()
	_, err := q.exec(ctx, `INSERT INTO versions (id, node_id, blob_id, size, sha256, mtime, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, v.ID, v.NodeID, v.BlobID, v.Size, v.SHA256, micros(v.MTime), micros(v.CreatedAt), v.CreatedBy)
	return err
}

const versionCols = `id, node_id, blob_id, size, sha256, mtime, created_at, created_by`

func scanVersion(sc interface{ Scan(...any) error }) (*Version, error) {
	var v Version
	var mtime, created int64
	if err := sc.Scan(&v.ID, &v.NodeID, &v.BlobID, &v.Size, &v.SHA256, &mtime, &created, &v.CreatedBy); err != nil {
		return nil, err
	}
	v.MTime, v.CreatedAt = fromMicros(mtime), fromMicros(created)
	return &v, nil
}

// Versions lists a file's versions, newest first.
func (q q) Versions(ctx context.Context, nodeID string) ([]*Version, error) {
	rows, err := q.query(ctx, `SELECT `+versionCols+` FROM versions WHERE node_id = ? ORDER BY created_at DESC, id DESC`, nodeID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VersionByID returns a version of a node, or ErrNotFound.
func (q q) VersionByID(ctx context.Context, nodeID, id string) (*Version, error) {
	v, err := scanVersion(q.row(ctx, `SELECT `+versionCols+` FROM versions WHERE id = ? AND node_id = ?`, id, nodeID))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return v, nil
}

// dropUnreferencedBlobs deletes the rows of the given blobs that no version
// references and returns their IDs.
func (q q) dropUnreferencedBlobs(ctx context.Context, ids []string) ([]string, error) {
	var gone []string
	for _, id := range ids {
		var n int
		if err := q.row(ctx, `SELECT COUNT(*) FROM versions WHERE blob_id = ?`, id).Scan(&n); err != nil {
			return nil, q.d.translate(err)
		}
		if n > 0 {
			continue
		}
		if _, err := q.exec(ctx, `DELETE FROM blobs WHERE id = ?`, id); err != nil {
			return nil, err
		}
		gone = append(gone, id)
	}
	return gone, nil
}

// BlobReferenced reports whether any blob row has the given ID; the
// garbage collector keeps such blobs.
func (q q) BlobReferenced(ctx context.Context, id string) (bool, error) {
	return q.BlobExists(ctx, id)
}
