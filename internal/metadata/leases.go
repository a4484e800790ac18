package metadata

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AcquireLease takes or renews the lease called name for holder until
// now+ttl. It reports whether holder has the lease: false if another holder
// has an unexpired one.
func (q q) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := q.now()
	var got string
	err := q.row(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at < ? OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, micros(now.Add(ttl)), micros(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the WHERE kept someone else's lease
	}
	if err != nil {
		return false, q.d.translate(err)
	}
	return got == holder, nil
}

// ReleaseLease gives up a lease held by holder.
func (q q) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := q.exec(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return err
}

// KnownBlobs returns which of ids have a blob row.
func (q q) KnownBlobs(ctx context.Context, ids []string) (map[string]bool, error) {
	known := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return known, nil
	}
	query := `SELECT id FROM blobs WHERE id IN (?` + repeat(",?", len(ids)-1) + `)`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		known[id] = true
	}
	return known, rows.Err()
}

func repeat(s string, n int) string {
	out := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		out = append(out, s...)
	}
	return string(out)
}
