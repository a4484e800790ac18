package metadata

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds everything that differs between SQLite and PostgreSQL.
// Queries are written with '?' placeholders and rebound for PostgreSQL.
type dialect struct {
	name   string
	open   func(dsn string) (*sql.DB, error)
	rebind func(string) string
}

func dialectFor(driver string) (dialect, error) {
	switch driver {
	case "sqlite", "sqlite3", "":
		return dialect{name: "sqlite", open: openSQLite, rebind: func(s string) string { return s }}, nil
	case "postgres", "postgresql", "pgx":
		return dialect{name: "postgres", open: openPostgres, rebind: rebindDollar}, nil
	}
	return dialect{}, fmt.Errorf("metadata: unknown database driver %q (want sqlite or postgres)", driver)
}

func openSQLite(dsn string) (*sql.DB, error) {
	memory := dsn == ":memory:"
	if memory {
		// A named shared in-memory database, so that every connection of
		// the pool sees the same data.
		dsn = "file:" + NewID() + "?mode=memory&cache=shared"
	} else if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// WAL lets readers run while a writer commits. foreign_keys is off by
	// default in SQLite and must be enabled per connection. busy_timeout
	// makes a writer wait for the lock instead of failing at once, and
	// _txlock=immediate takes the write lock at BEGIN, which avoids the
	// deadlock two deferred transactions get when both upgrade to writers.
	dsn += sep + "_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	if !memory {
		dsn += "&_pragma=journal_mode(WAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	if memory {
		// A shared-cache memory database vanishes when its last connection
		// closes; keep one open.
		db.SetConnMaxIdleTime(0)
		db.SetMaxIdleConns(4)
	}
	return db, nil
}

func openPostgres(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	return db, nil
}

// rebindDollar turns '?' placeholders into $1, $2, ... Queries in this
// package never contain '?' inside string literals.
func rebindDollar(s string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// retryable reports whether a transaction failed only because it collided
// with a concurrent one (PostgreSQL serialization failure or deadlock) and
// should simply be run again.
func (d dialect) retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// translate maps unique-constraint violations to ErrConflict.
func (d dialect) translate(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "40001" || errors.As(err, &pe) && pe.Code == "40P01" {
		return err // keep it recognisable for the retry loop
	}
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}
