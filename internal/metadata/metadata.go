// Package metadata keeps everything about files except their contents: users,
// spaces, the file tree, versions, blobs, the change journal and sessions. It
// runs the same schema and queries on SQLite (the embedded default) and
// PostgreSQL; the few dialect differences live in dialect.go.
package metadata

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrNotFound is returned when a row does not exist.
	ErrNotFound = errors.New("metadata: not found")
	// ErrConflict is returned when a write would break a uniqueness rule,
	// such as two live files with the same name in one folder.
	ErrConflict = errors.New("metadata: conflict")
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// DB is the metadata store.
type DB struct {
	sql     *sql.DB
	dialect dialect
	// Now is the clock; tests replace it.
	Now func() time.Time
	q
}

// Open connects to the database and applies pending migrations. driver is
// "sqlite" (dsn is a file path, or ":memory:") or "postgres" (dsn is a
// PostgreSQL connection string).
func Open(ctx context.Context, driver, dsn string) (*DB, error) {
	d, err := dialectFor(driver)
	if err != nil {
		return nil, err
	}
	sqldb, err := d.open(dsn)
	if err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w", driver, err)
	}
	db := &DB{sql: sqldb, dialect: d, Now: time.Now}
	db.q = q{ex: sqldb, d: d, now: db.now}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("metadata: connect to %s: %w", driver, err)
	}
	if err := db.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) now() time.Time { return db.Now() }

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

// Ping checks the database is reachable; /readyz uses it.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// SQL returns the underlying database handle, for tests and tools that
// need a query this package does not offer.
func (db *DB) SQL() *sql.DB { return db.sql }

// Driver returns "sqlite" or "postgres".
func (db *DB) Driver() string { return db.dialect.name }

// Tx is a transaction; its methods are those of DB.
type Tx struct {
	q
}

// WithTx runs fn in a transaction, committing if fn returns nil.
//
// Transactions are serializable on both engines (SQLite has one writer at
// a time; PostgreSQL runs at SERIALIZABLE), so read-check-write sequences
// such as "the ETag still matches, replace the content" cannot interleave.
// A transaction PostgreSQL aborts for a serialization conflict is run again,
// so fn must only touch the database.
func (db *DB) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	var opts *sql.TxOptions
	if db.dialect.name == "postgres" {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	for attempt := 0; ; attempt++ {
		err := db.tryTx(ctx, opts, fn)
		if err == nil || !db.dialect.retryable(err) || attempt >= 20 {
			return err
		}
		// Back off a little, with jitter, so the retries do not collide again.
		time.Sleep(time.Duration(1+mrand.IntN(5*(attempt+1))) * time.Millisecond)
	}
}

func (db *DB) tryTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *Tx) error) error {
	t, err := db.sql.BeginTx(ctx, opts)
	if err != nil {
		return db.dialect.translate(fmt.Errorf("metadata: begin: %w", err))
	}
	tx := &Tx{q: q{ex: t, d: db.dialect, now: db.now}}
	if err := fn(tx); err != nil {
		t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return db.dialect.translate(fmt.Errorf("metadata: commit: %w", err))
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.sql.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("metadata: migrations table: %w", err)
	}
	dir := "migrations/" + db.dialect.name
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("metadata: migration %s: name must start with a number", name)
		}
		body, err := migrations.ReadFile(dir + "/" + name)
		if err != nil {
			return err
		}
		err = db.WithTx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.row(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			// Both engines run DDL inside a transaction, so a migration
			// applies wholly or not at all.
			for _, stmt := range splitSQL(string(body)) {
				if _, err := tx.ex.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("metadata: migration %s: %w", name, err)
				}
			}
			_, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, db.Now().UnixMicro())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// splitSQL splits a migration into statements at semicolons that end a
// line; migrations contain no semicolons inside literals.
func splitSQL(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if stmt := strings.TrimSpace(cur.String()); stmt != ";" {
				out = append(out, stmt)
			}
			cur.Reset()
		}
	}
	if stmt := strings.TrimSpace(cur.String()); stmt != "" {
		out = append(out, stmt)
	}
	return out
}

// q runs queries on a *sql.DB or a *sql.Tx.
type q struct {
	ex interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	d   dialect
	now func() time.Time
}

func (q q) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := q.ex.ExecContext(ctx, q.d.rebind(query), args...)
	if err != nil {
		return nil, q.d.translate(err)
	}
	return res, nil
}

func (q q) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := q.ex.QueryContext(ctx, q.d.rebind(query), args...)
	if err != nil {
		return nil, q.d.translate(err)
	}
	return rows, nil
}

func (q q) row(ctx context.Context, query string, args ...any) *sql.Row {
	return q.ex.QueryRowContext(ctx, q.d.rebind(query), args...)
}

// scanErr maps sql.ErrNoRows to ErrNotFound.
func (q q) scanErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return q.d.translate(err)
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random 128-bit identifier as 26 lower-case characters.
// Random IDs spread writes evenly (no hot spot on distributed SQL engines)
// and are safe to use as storage keys.
func NewID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return idEncoding.EncodeToString(b)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
