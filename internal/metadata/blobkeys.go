package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/veloxhq/velox/internal/storage/encrypt"
)

// The blob_keys table backs encrypt.KeyStore.
var _ encrypt.KeyStore = (*DB)(nil)

func formatParts(parts []int64) string {
	s := make([]string, len(parts))
	for i, n := range parts {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, ",")
}

func parseParts(s string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	var parts []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("metadata: blob key parts: %w", err)
		}
		parts = append(parts, n)
	}
	return parts, nil
}

const blobKeyCols = `blob_id, key_id, wrapped_key, size, parts, created_at`

func scanBlobKey(sc interface{ Scan(...any) error }) (string, encrypt.BlobKey, error) {
	var id, parts string
	var created int64
	var k encrypt.BlobKey
	if err := sc.Scan(&id, &k.KeyID, &k.Wrapped, &k.Size, &parts, &created); err != nil {
		return "", k, err
	}
	k.Created = fromMicros(created)
	var err error
	k.Parts, err = parseParts(parts)
	return id, k, err
}

// GetBlobKey returns the wrapped data key of blob id.
func (q q) GetBlobKey(ctx context.Context, id string) (encrypt.BlobKey, error) {
	_, k, err := scanBlobKey(q.row(ctx, `SELECT `+blobKeyCols+` FROM blob_keys WHERE blob_id = ?`, id))
	if err != nil {
		if err = q.scanErr(err); errors.Is(err, ErrNotFound) {
			return k, fmt.Errorf("metadata: %s: %w", id, encrypt.ErrNoKey)
		}
		return k, err
	}
	return k, nil
}

// PutBlobKey stores or replaces the data key of blob id.
func (db *DB) PutBlobKey(ctx context.Context, id string, k encrypt.BlobKey) error {
	_, err := db.exec(ctx, `INSERT INTO blob_keys (`+blobKeyCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (blob_id) DO UPDATE SET key_id = excluded.key_id, wrapped_key = excluded.wrapped_key,
		size = excluded.size, parts = excluded.parts, created_at = excluded.created_at`,
		id, k.KeyID, k.Wrapped, k.Size, formatParts(k.Parts), micros(db.Now()))
	return err
}

// CreateBlobKey stores the data key of blob id unless it has one.
func (db *DB) CreateBlobKey(ctx context.Context, id string, k encrypt.BlobKey) error {
	_, err := db.exec(ctx, `INSERT INTO blob_keys (`+blobKeyCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		id, k.KeyID, k.Wrapped, k.Size, formatParts(k.Parts), micros(db.Now()))
	if errors.Is(err, ErrConflict) {
		return encrypt.ErrKeyExists
	}
	return err
}

// SetBlobKeySize records the plaintext size of blob id.
func (q q) SetBlobKeySize(ctx context.Context, id string, size int64) error {
	_, err := q.exec(ctx, `UPDATE blob_keys SET size = ? WHERE blob_id = ?`, size, id)
	return err
}

// DeleteBlobKey removes the data key of blob id.
func (q q) DeleteBlobKey(ctx context.Context, id string) error {
	_, err := q.exec(ctx, `DELETE FROM blob_keys WHERE blob_id = ?`, id)
	return err
}

// ListBlobKeys returns up to limit rows after the given blob ID.
func (q q) ListBlobKeys(ctx context.Context, after string, limit int) ([]string, []encrypt.BlobKey, error) {
	rows, err := q.query(ctx, `SELECT `+blobKeyCols+` FROM blob_keys WHERE blob_id > ? ORDER BY blob_id LIMIT ?`, after, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ids []string
	var keys []encrypt.BlobKey
	for rows.Next() {
		id, k, err := scanBlobKey(rows)
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		keys = append(keys, k)
	}
	return ids, keys, rows.Err()
}

// RewrapBlobKey replaces the wrapping of id if it still is oldWrapped.
func (q q) RewrapBlobKey(ctx context.Context, id string, oldWrapped []byte, keyID string, wrapped []byte) (bool, error) {
	res, err := q.exec(ctx, `UPDATE blob_keys SET key_id = ?, wrapped_key = ? WHERE blob_id = ? AND wrapped_key = ?`,
		keyID, wrapped, id, oldWrapped)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MasterKeySamples returns one row per master key ID in use.
func (q q) MasterKeySamples(ctx context.Context) ([]encrypt.Sample, error) {
	rows, err := q.query(ctx, `SELECT `+blobKeyCols+` FROM blob_keys
		WHERE blob_id IN (SELECT MIN(blob_id) FROM blob_keys GROUP BY key_id)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []encrypt.Sample
	for rows.Next() {
		id, k, err := scanBlobKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, encrypt.Sample{BlobID: id, BlobKey: k})
	}
	return out, rows.Err()
}
