package metadata

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Failed sign-ins per account, shared by all app nodes. The policy (how
// many failures are free, how long to wait) belongs to the caller, package
// identity's Limiter; these methods only count and store. Usernames
// compare case-insensitively.

func loginKey(username string) string { return strings.ToLower(username) }

// RecordLoginFailure counts a failed sign-in for username at now and
// returns the new count; a previous failure before forgetBefore is
// forgotten first, so the count starts over at 1. Attempts then wait until
// now+wait(count), or not at all if that is not positive.
//
// The increment and the wait are written in one transaction whose upsert
// locks the row, so failures recorded at once by several app nodes all
// count and the stored wait is that of the highest count. On PostgreSQL the
// transaction runs at READ COMMITTED: the row lock already orders the
// writers, and SERIALIZABLE would only make them fail and retry, which is
// what a burst of guesses at one account would cause.
func (db *DB) RecordLoginFailure(ctx context.Context, username string, now, forgetBefore time.Time, wait func(count int) time.Duration) (int, error) {
	var opts *sql.TxOptions
	if db.dialect.name == "postgres" {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	key := loginKey(username)
	var count int
	err := db.tryTx(ctx, opts, func(tx *Tx) error {
		err := tx.row(ctx, `INSERT INTO login_failures (username, failures, last_at, wait_until) VALUES (?, 1, ?, 0)
			ON CONFLICT (username) DO UPDATE SET
				failures = CASE WHEN login_failures.last_at < ? THEN 1 ELSE login_failures.failures + 1 END,
				last_at = excluded.last_at
			RETURNING failures`, key, micros(now), micros(forgetBefore)).Scan(&count)
		if err != nil {
			return tx.d.translate(err)
		}
		var until int64
		if d := wait(count); d > 0 {
			until = micros(now.Add(d))
		}
		_, err = tx.exec(ctx, `UPDATE login_failures SET wait_until = ? WHERE username = ?`, until, key)
		return err
	})
	if err != nil {
		return 0, err
	}
	return count, nil
}

// LoginWaitUntil returns until when sign-in attempts for username must
// wait; the zero time means they need not.
func (q q) LoginWaitUntil(ctx context.Context, username string) (time.Time, error) {
	var until int64
	err := q.row(ctx, `SELECT wait_until FROM login_failures WHERE username = ?`, loginKey(username)).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) || err == nil && until == 0 {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, q.d.translate(err)
	}
	return fromMicros(until), nil
}

// ClearLoginFailures forgets username's failed sign-ins.
func (q q) ClearLoginFailures(ctx context.Context, username string) error {
	_, err := q.exec(ctx, `DELETE FROM login_failures WHERE username = ?`, loginKey(username))
	return err
}

// DeleteLoginFailuresBefore forgets the accounts whose last failed sign-in
// was before t.
func (q q) DeleteLoginFailuresBefore(ctx context.Context, t time.Time) error {
	_, err := q.exec(ctx, `DELETE FROM login_failures WHERE last_at < ?`, micros(t))
	return err
}
